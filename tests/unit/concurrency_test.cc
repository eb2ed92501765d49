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
}

}  // namespace
}  // namespace sessionserver
