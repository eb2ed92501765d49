// The memory store with a backing store (real redis-server), its write-behind queue and journal:
// every change reaches Redis, a session missing here is restored from Redis, queued changes are
// never hidden behind an older Redis copy, and journaled changes survive a crash of the queue.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "storage/backing_store.h"
#include "storage/disk_tier.h"
#include "storage/journal.h"
#include "storage/write_behind.h"
#include "tests/temp_dir.h"
#include "tests/unit/fault_injection_disk_tier.h"
#include "tests/unit/redis_server.h"
#include "tests/unit/store_test_util.h"

namespace sessionserver {
namespace {

constexpr int64_t kFlushTimeoutUs = 20'000'000;

// One "server": a memory store, its queue and (optionally) journal, over a shared Redis.
struct Node {
  std::unique_ptr<DiskTier> rocks;
  std::unique_ptr<FaultInjectionDiskTier> disk;  // over `rocks`
  std::unique_ptr<BackingStore> backing;
  std::unique_ptr<Journal> journal;
  std::unique_ptr<WriteBehind> queue;
  std::unique_ptr<SessionStore> store;
};

class BackedStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis_.Start()); }

  // `journal_dir` empty: no journal. `capacity` small enough to force evictions where wanted.
  Node MakeNode(const std::string& journal_dir = "", size_t capacity = 4 << 20,
                size_t max_pending_bytes = 64 << 20, const std::string& disk_dir = "",
                size_t max_staged_bytes = 0, Clock* clock = nullptr) {
    if (clock == nullptr) clock = &clock_;
    Node n;
    RedisOptions ro;
    ro.port = redis_.port();
    ro.command_timeout_us = 100'000;
    Status s;
    n.backing = NewRedisBackingStore(ro, clock, &s);
    EXPECT_TRUE(s.ok()) << s.ToString();
    WriteBehindOptions wo;
    wo.delay_us = 100'000;
    wo.first_backoff_us = 10'000;
    wo.max_backoff_us = 50'000;
    wo.max_pending_bytes = max_pending_bytes;
    if (!journal_dir.empty()) {
      JournalOptions jo;
      jo.path = journal_dir;
      n.journal = OpenLogJournal(jo, &s);
      EXPECT_TRUE(s.ok()) << s.ToString();
      wo.journal = n.journal.get();
    }
    n.queue = std::make_unique<WriteBehind>(n.backing.get(), clock, wo);
    EXPECT_TRUE(n.queue->Recover().ok());
    MemoryStoreOptions mo;
    if (!disk_dir.empty()) {  // as session_server does it: the journal brings the disk up to date
      RocksDiskTierOptions dop;
      dop.path = disk_dir;
      n.rocks = OpenRocksDiskTier(dop, clock, &s);
      EXPECT_TRUE(s.ok()) << s.ToString();
      n.disk = std::make_unique<FaultInjectionDiskTier>(n.rocks.get());
      if (n.journal) {
        EXPECT_TRUE(ApplyJournalToDiskTier(n.journal.get(), n.disk.get()).ok());
      }
      mo.disk_tier = n.disk.get();
      mo.max_staged_bytes = max_staged_bytes;
    }
    mo.capacity_bytes = capacity;
    mo.segments = 1;
    mo.max_value_bytes = 16 << 10;
    mo.write_behind = n.queue.get();
    mo.backing_store = n.backing.get();
    n.store = MustNewStore(mo, clock);
    return n;
  }

  // Creates sessions s0..s<n-1> and waits until Redis has them. While Redis is unreachable, only
  // sessions a server holds can be served: it cannot tell a new id from one Redis has.
  void CreateSessions(Node* n, int count) {
    for (int i = 0; i < count; ++i) {
      ASSERT_EQ(PutValue(n->store.get(), "s" + std::to_string(i), "created"), Outcome::kOk);
    }
    Status fs = n->queue->Flush(2'000'000);
    const WriteBehindStats st = n->queue->GetStats();
    ASSERT_TRUE(fs.ok()) << fs.ToString() << " pending=" << st.pending << " flushed=" << st.flushed
                         << " retries=" << st.retries << " jerr=" << st.journal_errors;
  }

  std::string RedisField(const std::string& id, const std::string& field) {
    return redis_.Command("HGET ss:v1:" + id + " " + field);
  }
  // `a` writes "v1" to Redis; `b` restores it and writes "v2" there: a's copy is then older.
  void ChangeElsewhere(Node* a, Node* b, const std::string& id) {
    ASSERT_EQ(PutValue(a->store.get(), id, "v1"), Outcome::kOk);
    ASSERT_TRUE(a->queue->Flush(kFlushTimeoutUs).ok());
    ASSERT_EQ(GetValue(b->store.get(), id).data, "v1");
    clock_.AdvanceMicros(1000);
    ASSERT_EQ(PutValue(b->store.get(), id, "v2"), Outcome::kOk);
    ASSERT_TRUE(b->queue->Flush(kFlushTimeoutUs).ok());
  }
  // What a second server with empty tiers reads for `id` from Redis.
  ReadResult ReadElsewhere(const std::string& id) {
    Node other = MakeNode();
    return GetValue(other.store.get(), id);
  }

  RedisServer redis_;
  FakeClock clock_{SystemClock()->NowMicros()};
  TempDir dir_{"ss-backed"};
};

TEST_F(BackedStoreTest, PutsRemovesAndTouchesReachRedisWithTheirLifetimes) {
  Node a = MakeNode();
  ASSERT_EQ(PutValue(a.store.get(), "s1", "cart", 20), Outcome::kOk);
  ASSERT_EQ(PutValue(a.store.get(), "s2", "gone", 20), Outcome::kOk);
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
  const int64_t expiry_ms = std::stoll(redis_.Command("PEXPIRETIME ss:v1:s1"));
  EXPECT_NEAR(expiry_ms, (clock_.NowMicros() + 20 * 60'000'000LL) / 1000, 1000);
  EXPECT_EQ(ReadElsewhere("s1").data, "cart");

  WriteResult w;
  ASSERT_TRUE(a.store->Remove("s2", 0, &w).ok());
  clock_.AdvanceMinutes(5);
  ASSERT_TRUE(a.store->ResetTimeout("s1", &w).ok());
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
  EXPECT_EQ(RedisField("s2", "t"), "1") << "a removal leaves a tombstone";
  EXPECT_EQ(RedisField("s2", "r"), "(nil)");
  EXPECT_EQ(ReadElsewhere("s2").outcome, Outcome::kNotFound);
  EXPECT_NEAR(std::stoll(redis_.Command("PEXPIRETIME ss:v1:s1")), expiry_ms + 5 * 60'000, 1000)
      << "a timeout reset extends the Redis key";
}

TEST_F(BackedStoreTest, ReadsExtendTheRedisLifetimeOfReadMostlySessions) {
  Node a = MakeNode();
  ASSERT_EQ(PutValue(a.store.get(), "s", "cart", 20), Outcome::kOk);
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
  const int64_t before = std::stoll(redis_.Command("PEXPIRETIME ss:v1:s"));
  clock_.AdvanceMinutes(15);
  EXPECT_EQ(GetValue(a.store.get(), "s").outcome, Outcome::kOk);
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
  EXPECT_NEAR(std::stoll(redis_.Command("PEXPIRETIME ss:v1:s")), before + 15 * 60'000, 1000);
}

TEST_F(BackedStoreTest, TouchesKeepReadMostlySessionsAliveForOtherServers) {
  Node a = MakeNode();
  ASSERT_EQ(PutValue(a.store.get(), "s", "cart", /*timeout_minutes=*/1), Outcome::kOk);
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
  clock_.AdvanceSeconds(50);
  EXPECT_EQ(GetValue(a.store.get(), "s").outcome, Outcome::kOk);  // slides the expiry
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
  clock_.AdvanceSeconds(20);  // past the put's expiry, within the slid one
  ReadResult r = ReadElsewhere("s");
  EXPECT_EQ(r.outcome, Outcome::kOk) << "the touch must reach what Redis reads return";
  EXPECT_EQ(r.data, "cart");
}

TEST_F(BackedStoreTest, RecreatedSessionOutranksTheTombstoneOfAFasterClock) {
  FakeClock fast{clock_.NowMicros() + 2'000'000};  // another server's clock, 2 s ahead
  Node a = MakeNode("", 4 << 20, 64 << 20, "", 0, &fast);
  ASSERT_EQ(PutValue(a.store.get(), "s", "v1"), Outcome::kOk);
  WriteResult w;
  ASSERT_TRUE(a.store->Remove("s", 0, &w).ok());
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
  Node b = MakeNode();
  ASSERT_EQ(PutValue(b.store.get(), "s", "new-session"), Outcome::kOk);
  ASSERT_TRUE(b.queue->Flush(kFlushTimeoutUs).ok());
  EXPECT_EQ(b.queue->GetStats().stale, 0u) << "an acknowledged put was refused by Redis";
  EXPECT_EQ(ReadElsewhere("s").data, "new-session");
}

TEST_F(BackedStoreTest, HotSessionCoalescesInTheWindow) {
  Node a = MakeNode();
  for (int i = 0; i < 500; ++i) {
    ASSERT_EQ(PutValue(a.store.get(), "hot", "v" + std::to_string(i)), Outcome::kOk);
    GetValue(a.store.get(), "hot");
  }
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
  EXPECT_LE(a.backing->GetStats().ops_applied, 2u) << "1000 changes, one window";
  EXPECT_EQ(ReadElsewhere("hot").data, "v499");
}

TEST_F(BackedStoreTest, AnotherServerRestoresSessionsAndContinuesTheirVersions) {
  Node a = MakeNode();
  ASSERT_EQ(PutValue(a.store.get(), "s", "from-a"), Outcome::kOk);
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
  Node b = MakeNode();
  ReadResult r = GetValue(b.store.get(), "s");
  ASSERT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.data, "from-a");
  EXPECT_TRUE(r.from_backing_store);
  EXPECT_EQ(b.store->GetStats().backing_loads, 1u);
  // B's change must win over A's copy in Redis (a newer version), and reach Redis.
  ASSERT_EQ(PutValue(b.store.get(), "s", "from-b"), Outcome::kOk);
  ASSERT_TRUE(b.queue->Flush(kFlushTimeoutUs).ok());
  EXPECT_EQ(ReadElsewhere("s").data, "from-b");
  EXPECT_EQ(b.queue->GetStats().stale, 0u);
}

// A session that moved to B and back: A's own copy is older than what B wrote to Redis.
TEST_F(BackedStoreTest, RevalidateReplacesAnOlderLocalCopyAndKeepsANewerOne) {
  Node a = MakeNode("", 4 << 20, 64 << 20, dir_.path() + "/a-disk");
  Node b = MakeNode();
  ASSERT_EQ(PutValue(a.store.get(), "s", "v1"), Outcome::kOk);
  ASSERT_EQ(PutValue(a.store.get(), "gone", "v1"), Outcome::kOk);
  ASSERT_EQ(PutValue(a.store.get(), "mine", "v1"), Outcome::kOk);
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
  ASSERT_EQ(GetValue(b.store.get(), "s").data, "v1");  // B restores it, and changes it
  clock_.AdvanceMicros(1000);
  ASSERT_EQ(PutValue(b.store.get(), "s", "v2-from-b"), Outcome::kOk);
  ASSERT_EQ(GetValue(b.store.get(), "gone").data, "v1");
  WriteResult w;
  ASSERT_TRUE(b.store->Remove("gone", 0, &w).ok());
  ASSERT_TRUE(b.queue->Flush(kFlushTimeoutUs).ok());
  EXPECT_EQ(GetValue(a.store.get(), "s").data, "v1") << "before: A serves its own, older copy";

  ASSERT_TRUE(a.store->Revalidate("s", &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kOk);
  EXPECT_EQ(GetValue(a.store.get(), "s").data, "v2-from-b");
  ASSERT_TRUE(a.store->Revalidate("gone", &w).ok());
  EXPECT_EQ(GetValue(a.store.get(), "gone").outcome, Outcome::kNotFound)
      << "a removal elsewhere, newer than A's copy, stands";
  EXPECT_EQ(a.store->GetStats().superseded, 2u);

  // A's own newer change (not yet in Redis) is kept; a later change of A goes above B's.
  ASSERT_EQ(PutValue(a.store.get(), "mine", "v2-from-a"), Outcome::kOk);
  ASSERT_TRUE(a.store->Revalidate("mine", &w).ok());
  EXPECT_EQ(GetValue(a.store.get(), "mine").data, "v2-from-a");
  ASSERT_EQ(PutValue(a.store.get(), "s", "v3-from-a"), Outcome::kOk);
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
  EXPECT_EQ(a.queue->GetStats().stale, 0u);
  EXPECT_EQ(ReadElsewhere("s").data, "v3-from-a");
  EXPECT_EQ(ReadElsewhere("mine").data, "v2-from-a");
  ASSERT_TRUE(a.store->Revalidate("never-seen", &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kNotFound);
}

// Without any client help: A's touch of its old copy finds another version in Redis, and the
// conflict listener (as session_server wires it) brings A's copy up to date.
TEST_F(BackedStoreTest, AConflictInRedisRevalidatesTheLocalCopy) {
  Node a = MakeNode();
  Node b = MakeNode();
  a.queue->SetConflictListener([&a](const std::string& id) {
    WriteResult ignored;
    a.store->Revalidate(id, &ignored);
  });
  ASSERT_NO_FATAL_FAILURE(ChangeElsewhere(&a, &b, "s"));
  EXPECT_EQ(GetValue(a.store.get(), "s").data, "v1") << "A does not know yet";
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());  // its touch of v1 is refused
  EXPECT_EQ(a.queue->GetStats().conflicts, 1u);
  EXPECT_EQ(GetValue(a.store.get(), "s").data, "v2");
  EXPECT_EQ(a.store->GetStats().superseded, 1u);
  a.queue->SetConflictListener(nullptr);  // before the store goes
}

TEST_F(BackedStoreTest, RevalidateLeavesALockedCopyAndFailsWhenRedisIsUnreadable) {
  Node a = MakeNode();
  Node b = MakeNode();
  ASSERT_NO_FATAL_FAILURE(ChangeElsewhere(&a, &b, "s"));
  ASSERT_EQ(Lock(a.store.get(), "s").outcome, Outcome::kOk);
  EXPECT_TRUE(a.store->IsLocked("s"));
  WriteResult w;
  ASSERT_TRUE(a.store->Revalidate("s", &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kLocked) << "the lock holder's request is left alone";
  redis_.Kill();
  EXPECT_FALSE(a.store->Revalidate("s", &w).ok());
  EXPECT_EQ(a.store->GetStats().superseded, 0u);
}

TEST_F(BackedStoreTest, LocateReportsMemoryDiskAndQueue) {
  Node a = MakeNode("", 256 << 10, 64 << 20, dir_.path() + "/disk");
  Location where;
  ASSERT_TRUE(a.store->Locate("s", &where).ok());
  EXPECT_FALSE(where.in_memory || where.on_disk || where.queued || where.staged);
  ASSERT_EQ(PutValue(a.store.get(), "s", "v"), Outcome::kOk);
  ASSERT_TRUE(a.store->Locate("s", &where).ok());
  EXPECT_TRUE(where.in_memory);
  EXPECT_TRUE(where.queued);
  EXPECT_EQ(where.queued_kind, "put");
  EXPECT_EQ(where.queued_version, where.memory_version);
  ASSERT_TRUE(a.queue->FlushId("s", kFlushTimeoutUs).ok());
  EXPECT_NE(RedisField("s", "v"), "(nil)") << "FlushId wrote it";
  const ReadResult locked = Lock(a.store.get(), "s");
  ASSERT_EQ(locked.outcome, Outcome::kOk);
  ASSERT_TRUE(a.store->Locate("s", &where).ok());
  EXPECT_TRUE(where.locked);
  WriteResult w;
  ASSERT_TRUE(a.store->ReleaseExclusive("s", locked.lock_cookie, &w).ok());
  ASSERT_TRUE(a.queue->FlushId("s", kFlushTimeoutUs).ok());
  ASSERT_TRUE(a.store->Locate("s", &where).ok());
  EXPECT_FALSE(where.queued);
  for (int i = 0; i < 200; ++i) {
    PutValue(a.store.get(), "filler" + std::to_string(i), std::string(8000, 'x'));
  }
  ASSERT_TRUE(a.store->Flush(kFlushTimeoutUs).ok());
  ASSERT_TRUE(a.store->Locate("s", &where).ok());
  EXPECT_FALSE(where.in_memory);
  EXPECT_TRUE(where.on_disk) << "evicted to the disk tier";
}

TEST_F(BackedStoreTest, QueuedRemovalIsNeverHiddenByTheOlderRedisCopy) {
  Node a = MakeNode();
  ASSERT_EQ(PutValue(a.store.get(), "s", "v1"), Outcome::kOk);
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());  // Redis has v1
  redis_.Pause();                                     // the removal stays queued
  WriteResult w;
  ASSERT_TRUE(a.store->Remove("s", 0, &w).ok());
  EXPECT_EQ(GetValue(a.store.get(), "s").outcome, Outcome::kNotFound);
  EXPECT_EQ(a.store->GetStats().backing_loads, 0u) << "the queue answered; Redis was not asked";
  redis_.Resume();
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
  EXPECT_EQ(GetValue(a.store.get(), "s").outcome, Outcome::kNotFound);
  EXPECT_EQ(ReadElsewhere("s").outcome, Outcome::kNotFound);
}

TEST_F(BackedStoreTest, EvictedChangeNotYetInRedisIsServedFromTheQueue) {
  Node a = MakeNode("", /*capacity=*/256 << 10);
  ASSERT_EQ(PutValue(a.store.get(), "s", "old"), Outcome::kOk);
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());             // Redis has "old"
  ASSERT_EQ(PutValue(a.store.get(), "s", "new"), Outcome::kOk);  // queued only
  for (int i = 0; i < 200; ++i)
    PutValue(a.store.get(), "filler" + std::to_string(i), std::string(8000, 'x'));
  ASSERT_GT(a.store->GetStats().evictions, 0u);
  ReadResult r = GetValue(a.store.get(), "s");
  ASSERT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.data, "new") << "not the older copy in Redis";
}

TEST_F(BackedStoreTest, RedisReadFailureOnAMissIsAnErrorNotAbsent) {
  Node a = MakeNode();
  redis_.Kill();
  ReadResult r;
  EXPECT_FALSE(a.store->Get("unknown", &r).ok());
  WriteResult w;
  EXPECT_FALSE(a.store->Put("unknown", "x", 20, 0, false, &w).ok())
      << "a put must not create a version that would replace the real session in Redis";
}

TEST_F(BackedStoreTest, AfterACrashTheDiskTierNeverHidesJournaledChanges) {
  const std::string data = dir_.path() + "/data";
  std::filesystem::create_directories(data);
  {
    Node a = MakeNode(data + "/journal", 256 << 10, 64 << 20, data);
    ASSERT_EQ(PutValue(a.store.get(), "x", "v1"), Outcome::kOk);
    ASSERT_EQ(PutValue(a.store.get(), "y", "v1"), Outcome::kOk);
    for (int i = 0; i < 100; ++i) {
      PutValue(a.store.get(), "filler" + std::to_string(i), std::string(8000, 'f'));
    }
    ASSERT_TRUE(a.store->Flush(kFlushTimeoutUs).ok());
    ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
    ASSERT_TRUE(GetValue(a.store.get(), "x").from_disk_tier);  // disk: x v1, y v1
    ASSERT_TRUE(GetValue(a.store.get(), "y").from_disk_tier);
    redis_.Pause();
    ASSERT_EQ(PutValue(a.store.get(), "x", "v2"), Outcome::kOk);  // journaled only
    a.disk->set_write_fault(FaultInjectionDiskTier::WriteFault::kIOError);
    WriteResult w;
    ASSERT_TRUE(a.store->Remove("y", 0, &w).ok());  // its disk tombstone never gets written
    a.store.reset();  // the crash: no PersistAll, nothing more written
    a.queue.reset();
  }
  redis_.Resume();
  Node b = MakeNode(data + "/journal", 256 << 10, 64 << 20, data);
  EXPECT_EQ(b.queue->GetStats().recovered, 2u);
  ASSERT_TRUE(b.queue->Flush(kFlushTimeoutUs).ok());  // the queue lets go of both changes
  EXPECT_EQ(GetValue(b.store.get(), "x").data, "v2") << "not the disk tier's older copy";
  EXPECT_EQ(GetValue(b.store.get(), "y").outcome, Outcome::kNotFound) << "removal undone";
  EXPECT_EQ(ReadElsewhere("x").data, "v2");
}

TEST_F(BackedStoreTest, SpillDroppedUnderPressureIsReadFromRedisNotHidden) {
  const std::string data = dir_.path() + "/data";
  std::filesystem::create_directories(data);
  Node a = MakeNode("", 256 << 10, 64 << 20, data, /*max_staged_bytes=*/64 << 10);
  ASSERT_EQ(PutValue(a.store.get(), "x", "v1"), Outcome::kOk);
  for (int i = 0; i < 100; ++i) {
    PutValue(a.store.get(), "filler" + std::to_string(i), std::string(8000, 'f'));
  }
  ASSERT_TRUE(a.store->Flush(kFlushTimeoutUs).ok());
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
  ASSERT_TRUE(GetValue(a.store.get(), "x").from_disk_tier);
  ASSERT_EQ(PutValue(a.store.get(), "x", std::string(8000, '2')), Outcome::kOk);  // dirty
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());                              // Redis has it
  a.disk->set_write_fault(FaultInjectionDiskTier::WriteFault::kIOError);  // staging fills up
  for (int i = 0; i < 100; ++i) {
    PutValue(a.store.get(), "g" + std::to_string(i), std::string(8000, 'g'));
  }
  ASSERT_GT(a.store->GetStats().spill_dropped, 0u);
  ReadResult r = GetValue(a.store.get(), "x");
  EXPECT_EQ(r.outcome, Outcome::kOk) << "the session lives on in Redis";
  EXPECT_EQ(r.data, std::string(8000, '2'));
  a.disk->set_write_fault(FaultInjectionDiskTier::WriteFault::kNone);
}

TEST_F(BackedStoreTest, NewSessionsStartDuringARedisOutage) {
  Node a = MakeNode();
  redis_.Kill();
  WriteResult w;
  ASSERT_TRUE(a.store->Put("fresh", "", 20, 0, /*create_uninitialized=*/true, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kOk);
  ReadResult r;
  ASSERT_TRUE(a.store->GetExclusive("fresh", &r).ok());
  EXPECT_TRUE(r.initialize_item);
  ASSERT_TRUE(a.store->Put("fresh", "cart", 20, r.lock_cookie, false, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kOk);
  EXPECT_EQ(a.store->GetStats().blind_creates, 1u);
  ASSERT_TRUE(redis_.Start());
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
  EXPECT_EQ(ReadElsewhere("fresh").data, "cart");
}

TEST_F(BackedStoreTest, JournaledChangesSurviveACrashOfTheQueue) {
  {
    Node a = MakeNode(dir_.path() + "/journal");
    CreateSessions(&a, 100);
    const uint64_t appends_before = a.journal->GetStats().appends;
    redis_.Pause();  // nothing can be written: everything stays queued and journaled
    for (int i = 0; i < 100; ++i) {
      ASSERT_EQ(PutValue(a.store.get(), "s" + std::to_string(i), "v" + std::to_string(i)),
                Outcome::kOk);
    }
    WriteResult w;
    ASSERT_TRUE(a.store->Remove("s0", 0, &w).ok());
    EXPECT_EQ(a.journal->GetStats().appends - appends_before, 101u);
    a.store.reset();
    a.queue.reset();  // the "crash": the queue's contents are gone from memory
  }
  redis_.Resume();
  Node restarted = MakeNode(dir_.path() + "/journal");
  EXPECT_EQ(restarted.queue->GetStats().recovered, 101u);
  ASSERT_TRUE(restarted.queue->Flush(kFlushTimeoutUs).ok());
  EXPECT_EQ(ReadElsewhere("s0").outcome, Outcome::kNotFound);
  for (int i = 1; i < 100; ++i) {
    EXPECT_EQ(ReadElsewhere("s" + std::to_string(i)).data, "v" + std::to_string(i)) << i;
  }
  EXPECT_EQ(restarted.journal->GetStats().erases, 101u) << "written changes leave the journal";
  EXPECT_EQ(restarted.queue->GetStats().pending, 0u);
}

TEST_F(BackedStoreTest, QueueOverBoundKeepsValuesOnlyInTheJournal) {
  Node a = MakeNode(dir_.path() + "/journal", 4 << 20, /*max_pending_bytes=*/64 << 10);
  CreateSessions(&a, 200);
  redis_.Pause();
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(PutValue(a.store.get(), "s" + std::to_string(i), std::string(2000, 'a' + i % 26)),
              Outcome::kOk);
  }
  const WriteBehindStats stats = a.queue->GetStats();
  EXPECT_GT(stats.overflowed, 100u);
  EXPECT_LE(stats.pending_bytes, (64u << 10) + 200 * 100);
  redis_.Resume();
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(ReadElsewhere("s" + std::to_string(i)).data, std::string(2000, 'a' + i % 26)) << i;
  }
}

TEST_F(BackedStoreTest, WithoutAJournalPutsPastTheBoundAreRefusedAndRemovesStillTaken) {
  Node a = MakeNode("", 4 << 20, /*max_pending_bytes=*/16 << 10);
  CreateSessions(&a, 50);
  redis_.Pause();
  int refused = 0;
  for (int i = 1; i < 50; ++i) {
    WriteResult w;
    if (!a.store->Put("s" + std::to_string(i), std::string(2000, 'x'), 20, 0, false, &w).ok()) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 0) << "refused, not acknowledged and dropped";
  EXPECT_LE(a.queue->GetStats().pending_bytes, (16u << 10) + 2100);
  WriteResult w;
  ASSERT_TRUE(a.store->Remove("s0", 0, &w).ok());
  EXPECT_EQ(GetValue(a.store.get(), "s0").outcome, Outcome::kNotFound);
  redis_.Resume();
  ASSERT_TRUE(a.queue->Flush(kFlushTimeoutUs).ok());
  EXPECT_EQ(ReadElsewhere("s0").outcome, Outcome::kNotFound) << "the removal reached Redis";
  EXPECT_EQ(a.queue->GetStats().dropped, 0u);
}

// Writers own their ids and check read-your-writes after every change while a filler evicts
// constantly and the queue flushes every millisecond, so ids keep moving between memory, the
// queue and Redis; a reader checks that no id ever goes back to an older state. Fails on a lost
// update, a stale read or a resurrected removal. (Run under TSan by scripts/test.sh.)
TEST_F(BackedStoreTest, ChangesRaceWithEvictionAndFlushesWithoutGoingBack) {
  RedisOptions ro;
  ro.port = redis_.port();
  Status s;
  auto backing = NewRedisBackingStore(ro, SystemClock(), &s);
  ASSERT_TRUE(s.ok()) << s.ToString();
  WriteBehindOptions wo;
  wo.delay_us = 1000;
  wo.idle_wait_us = 500;
  WriteBehind queue(backing.get(), SystemClock(), wo);
  MemoryStoreOptions mo;
  mo.capacity_bytes = 256 << 10;
  mo.segments = 1;
  mo.max_value_bytes = 16 << 10;
  mo.write_behind = &queue;
  mo.backing_store = backing.get();
  auto store = MustNewStore(mo, SystemClock());
  constexpr int kIdsPerWriter = 10, kRounds = 1000;
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  // Value "<generation>:<counter>"; a removal starts a new generation. Zero-padded so that string
  // order is the order of states.
  auto value = [](int gen, int counter) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%06d:%06d", gen, counter);
    return std::string(buf);
  };
  auto writer = [&](int w) {
    for (int round = 0; round < kRounds; ++round) {
      for (int k = 0; k < kIdsPerWriter; ++k) {
        const std::string id = "w" + std::to_string(w) + "-" + std::to_string(k);
        const int gen = round / 10;
        WriteResult wr;
        ReadResult r;
        if (round % 10 == 9) {
          if (!store->Remove(id, 0, &wr).ok() || !store->Get(id, &r).ok() ||
              r.outcome != Outcome::kNotFound) {
            ++failures;
          }
          continue;
        }
        const std::string v = value(gen, round);
        if (!store->Put(id, v, 20, 0, false, &wr).ok() || !store->Get(id, &r).ok() ||
            r.outcome != Outcome::kOk || r.data != v) {
          ++failures;
        }
      }
    }
  };
  std::atomic<int> filled{0};
  std::thread filler([&] {
    for (int i = 0; !done; ++i) {
      WriteResult wr;
      store->Put("filler" + std::to_string(i % 200), std::string(4000, 'f'), 20, 0, false, &wr);
      filled = i;
    }
  });
  while (filled < 400) std::this_thread::yield();  // memory is full: every put evicts
  std::thread reader([&] {
    std::map<std::string, std::string> seen;
    for (int i = 0; !done; ++i) {
      const std::string id = "w" + std::to_string(i % 2) + "-" + std::to_string(i % kIdsPerWriter);
      ReadResult r;
      if (!store->Get(id, &r).ok() || r.outcome != Outcome::kOk) continue;
      if (r.data < seen[id]) ++failures;  // went back to an older state
      seen[id] = r.data;
    }
  });
  std::thread w0(writer, 0), w1(writer, 1);
  w0.join();
  w1.join();
  done = true;
  filler.join();
  reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(store->GetStats().evictions, 300u);
  EXPECT_GT(store->GetStats().backing_loads + store->GetStats().queue_loads, 100u)
      << "ids really moved below memory and back";
  ASSERT_TRUE(queue.Flush(kFlushTimeoutUs).ok());
}

}  // namespace
}  // namespace sessionserver
