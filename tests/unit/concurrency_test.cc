// Many threads on the same and different sessions. Run under TSan in CI (ss-tsan build).
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/store_test_util.h"

namespace sessionserver {
namespace {

constexpr int kThreads = 8;

void RunThreads(int n, const std::function<void(int)>& body) {
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) threads.emplace_back(body, t);
  for (auto& t : threads) t.join();
}

TEST(ConcurrencyTest, InitializeItemIsSeenByExactlyOneRequest) {
  FakeClock clock;
  auto store = MustNewStore(MemoryStoreOptions(), &clock);
  constexpr int kSessions = 200;
  for (int i = 0; i < kSessions; ++i) {
    WriteResult w;
    ASSERT_TRUE(store->Put("s" + std::to_string(i), "", 20, 0, true, &w).ok());
  }
  std::vector<std::atomic<int>> seen(kSessions);
  std::atomic<int> start{0};
  RunThreads(kThreads, [&](int t) {
    start.fetch_add(1);
    while (start.load() < kThreads) {
    }
    for (int i = 0; i < kSessions; ++i) {
      ReadResult r;
      const std::string id = "s" + std::to_string(i);
      Status s = (t % 2 == 0) ? store->Get(id, &r) : store->GetExclusive(id, &r);
      ASSERT_TRUE(s.ok());
      if (r.initialize_item) seen[i].fetch_add(1);
    }
  });
  for (int i = 0; i < kSessions; ++i) EXPECT_EQ(seen[i].load(), 1) << "session " << i;
}

TEST(ConcurrencyTest, ExclusiveLocksLoseNoUpdate) {
  FakeClock clock;
  auto store = MustNewStore(MemoryStoreOptions(), &clock);
  PutValue(store.get(), "counter", "0");
  constexpr int kIncrementsPerThread = 300;
  RunThreads(kThreads, [&](int) {
    for (int done = 0; done < kIncrementsPerThread;) {
      ReadResult r;
      ASSERT_TRUE(store->GetExclusive("counter", &r).ok());
      if (r.outcome == Outcome::kLocked) {
        std::this_thread::yield();
        continue;
      }
      ASSERT_EQ(r.outcome, Outcome::kOk);
      const int value = std::stoi(r.data);
      WriteResult w;
      ASSERT_TRUE(
          store->Put("counter", std::to_string(value + 1), 20, r.lock_cookie, false, &w).ok());
      ASSERT_EQ(w.outcome, Outcome::kOk) << "the holder's put must succeed";
      ++done;
    }
  });
  EXPECT_EQ(GetValue(store.get(), "counter").data, std::to_string(kThreads * kIncrementsPerThread));
}

// Random operations on a small key space with a tight byte budget, so evictions, expiry,
// replacement and reclamation all race with each other.
TEST(ConcurrencyTest, MixedOperationsStress) {
  FakeClock clock;
  MemoryStoreOptions options;
  options.capacity_bytes = 256 << 10;
  options.segments = 4;
  options.max_value_bytes = 8192;
  auto store = MustNewStore(options, &clock);
  std::atomic<bool> stop{false};
  std::thread reaper([&] {
    while (!stop.load()) {
      store->ReclaimExpired(16);
      clock.AdvanceMicros(500'000);
    }
  });
  RunThreads(kThreads, [&](int t) {
    std::mt19937 rng(t);
    for (int i = 0; i < 4000; ++i) {
      const std::string id = "k" + std::to_string(rng() % (t % 2 ? 8 : 400));
      ReadResult r;
      WriteResult w;
      switch (rng() % 7) {
        case 0:
          ASSERT_TRUE(store->Get(id, &r).ok());
          break;
        case 1:
          ASSERT_TRUE(store->GetExclusive(id, &r).ok());
          if (r.outcome == Outcome::kOk && rng() % 2) {
            ASSERT_TRUE(store->ReleaseExclusive(id, r.lock_cookie, &w).ok());
          }
          break;
        case 2:
        case 3:
          ASSERT_TRUE(
              store->Put(id, std::string(rng() % 8192, 'x'), 1 + rng() % 3, 0, false, &w).ok());
          break;
        case 4:
          ASSERT_TRUE(store->Put(id, "", 1, 0, true, &w).ok());
          break;
        case 5:
          ASSERT_TRUE(store->Remove(id, 0, &w).ok());
          break;
        case 6:
          ASSERT_TRUE(store->ResetTimeout(id, &w).ok());
          break;
      }
      if (r.outcome == Outcome::kOk && !r.data.empty()) {
        ASSERT_EQ(r.data.find_first_not_of('x'), std::string::npos) << "torn value";
      }
    }
  });
  stop.store(true);
  reaper.join();
  StoreStats stats = store->GetStats();
  EXPECT_GT(stats.inserts, 0u);
  EXPECT_GT(stats.evictions + stats.expirations, 0u);
  // Every item created left by exactly one way, or is still there.
  EXPECT_EQ(stats.items, stats.inserts - stats.removals - stats.evictions - stats.expirations);
  // The lock counter agrees with the items' own lock state once expired items are reclaimed
  // (before that, the counter still counts the lock of an expired item; IsLocked does not). A
  // budget this large sweeps every bucket of every segment. The race may have left no lock at
  // all, so the eight hot ids are locked now, by this thread or still by a thread of the race.
  constexpr size_t kEverything = 1 << 20;
  store->ReclaimExpired(kEverything);
  for (int k = 0; k < 8; ++k) {
    const std::string id = "k" + std::to_string(k);
    PutValue(store.get(), id, "x", 1);
    const Outcome locked = Lock(store.get(), id).outcome;
    ASSERT_TRUE(locked == Outcome::kOk || locked == Outcome::kLocked) << OutcomeName(locked);
  }
  uint64_t locked = 0;
  for (int k = 0; k < 400; ++k) locked += store->IsLocked("k" + std::to_string(k));
  EXPECT_GE(locked, 8u);
  EXPECT_EQ(store->GetStats().locks_held, locked);
  // Once every item has expired and been reclaimed, nothing is left charged: no byte leaked.
  clock.AdvanceMinutes(10);
  store->ReclaimExpired(kEverything);
  stats = store->GetStats();
  EXPECT_EQ(stats.items, 0u);
  EXPECT_EQ(stats.bytes, 0u);
  EXPECT_EQ(stats.locks_held, 0u);
  EXPECT_EQ(stats.inserts, stats.removals + stats.evictions + stats.expirations);
}

// Writers each own their ids and overwrite them round after round; prodders lock and release
// random ids meanwhile, so writers meet LOCKED and retry. The writers go on (two rounds at least)
// until they have met kConflicts locks, or kMaxRounds: how soon depends on the scheduler. Every put
// answered kOk is read back (at once by its writer, and the last one of each id at the end), and
// no lock is left behind.
TEST(ConcurrencyTest, EveryAcknowledgedPutIsReadBack) {
  FakeClock clock;
  auto store = MustNewStore(MemoryStoreOptions(), &clock);
  constexpr int kWriters = kThreads / 2, kIdsPerWriter = 4, kMaxRounds = 5000;
  constexpr uint64_t kConflicts = 50;
  std::vector<std::string> acked(kWriters * kIdsPerWriter);  // slot i written by one writer only
  std::atomic<int> prodders_started{0}, writers_done{0};
  std::atomic<uint64_t> conflicts{0}, puts{0};  // of the writers
  RunThreads(kThreads, [&](int t) {
    if (t >= kWriters) {  // a prodder
      prodders_started.fetch_add(1);
      std::mt19937 rng(t);
      while (writers_done.load() < kWriters) {
        const std::string id = "w" + std::to_string(rng() % acked.size());
        ReadResult r;
        ASSERT_TRUE(store->GetExclusive(id, &r).ok());
        if (r.outcome != Outcome::kOk) continue;
        for (int i = 0; i < 10; ++i) std::this_thread::yield();  // holds it for a moment
        WriteResult w;
        ASSERT_TRUE(store->ReleaseExclusive(id, r.lock_cookie, &w).ok());
        ASSERT_EQ(w.outcome, Outcome::kOk) << "nobody else may have taken this lock";
      }
      return;
    }
    struct Done {  // counted however the writer ends (a failed ASSERT returns early)
      std::atomic<int>* n;
      ~Done() { n->fetch_add(1); }
    } done{&writers_done};
    while (prodders_started.load() < kThreads - kWriters) std::this_thread::yield();
    for (int round = 0; round < 2 || (round < kMaxRounds && conflicts.load() < kConflicts);
         ++round) {
      for (int i = 0; i < kIdsPerWriter; ++i) {
        const size_t slot = t * kIdsPerWriter + i;
        const std::string id = "w" + std::to_string(slot);
        const std::string value = "writer" + std::to_string(t) + " round" + std::to_string(round);
        WriteResult w;
        do {
          ASSERT_TRUE(store->Put(id, value, 20, 0, false, &w).ok());
          conflicts.fetch_add(w.outcome == Outcome::kLocked);
        } while (w.outcome == Outcome::kLocked);
        ASSERT_EQ(w.outcome, Outcome::kOk);
        acked[slot] = value;
        puts.fetch_add(1);
        ReadResult r;  // nobody else writes `id`: the next read that is not LOCKED sees `value`
        do {
          ASSERT_TRUE(store->Get(id, &r).ok());
        } while (r.outcome == Outcome::kLocked);
        ASSERT_EQ(r.data, value) << id << ": the acknowledged put is not what is read back";
      }
    }
  });
  EXPECT_GT(conflicts.load(), 0u) << "no put met a lock: the test proved little";
  for (size_t slot = 0; slot < acked.size(); ++slot) {
    const std::string id = "w" + std::to_string(slot);
    ReadResult r = GetValue(store.get(), id);
    EXPECT_EQ(r.outcome, Outcome::kOk) << id;
    EXPECT_EQ(r.data, acked[slot]) << id;
    EXPECT_FALSE(store->IsLocked(id)) << id;
  }
  const StoreStats stats = store->GetStats();
  EXPECT_EQ(stats.items, acked.size());
  EXPECT_EQ(stats.inserts, acked.size());
  EXPECT_EQ(stats.updates, puts.load() - acked.size());
  EXPECT_EQ(stats.locks_held, 0u);
}

}  // namespace
}  // namespace sessionserver
