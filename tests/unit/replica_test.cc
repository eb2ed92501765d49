// Changes replicated between two data centres (SessionStore::ApplyReplica), each site a memory
// store over its own real redis-server: the higher version wins, equal versions are decided by
// the data, a removal is never undone by a late put, touches follow the version they name,
// replicated changes reach the site's Redis and are not replicated back, and two sites that
// exchange concurrent writes converge.
#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <string>

#include "storage/backing_store.h"
#include "storage/write_behind.h"
#include "tests/unit/redis_server.h"
#include "tests/unit/store_test_util.h"

namespace sessionserver {
namespace {

constexpr int64_t kFlushUs = 20'000'000;

// One site: its Redis, a store writing behind to it, and a replication queue whose "other site"
// records what it is sent (the fake is only the transport; ApplyReplica is what is tested).
struct Site {
  RedisServer redis;
  std::unique_ptr<BackingStore> backing;
  std::unique_ptr<WriteBehind> queue;
  std::unique_ptr<WriteBehind> replicator;
  std::unique_ptr<SessionStore> store;
};

// Captures the replication queue's ops instead of sending them.
class CapturingStore : public BackingStore {
 public:
  Status Apply(const std::vector<BackingOp>& ops, std::vector<BackingOutcome>* out) override {
    std::lock_guard<std::mutex> l(mu);
    for (const BackingOp& op : ops) {
      BackingOp copy(op.kind, op.item);
      copy.item.data.assign(op.data());
      sent.push_back(std::move(copy));
    }
    out->assign(ops.size(), BackingOutcome::kApplied);
    return Status::OK();
  }
  Status Get(std::string_view, ItemRecord*, bool*) override { return Status::Unavailable("no"); }
  BackingStoreStats GetStats() const override { return {}; }
  std::mutex mu;
  std::vector<BackingOp> sent;  // read after the queue's Flush
};

class ReplicaTest : public ::testing::Test {
 protected:
  void Open(Site* site, CapturingStore* outbound, Clock* clock) {
    ASSERT_TRUE(site->redis.Start());
    RedisOptions ro;
    ro.port = site->redis.port();
    Status s;
    site->backing = NewRedisBackingStore(ro, clock, &s);
    ASSERT_TRUE(s.ok()) << s.ToString();
    WriteBehindOptions wo;
    wo.delay_us = 0;
    site->queue = std::make_unique<WriteBehind>(site->backing.get(), clock, wo);
    WriteBehindOptions rep;
    rep.delay_us = 0;
    rep.drop_when_full = true;
    site->replicator = std::make_unique<WriteBehind>(outbound, clock, rep);
    MemoryStoreOptions mo;
    mo.capacity_bytes = 4 << 20;
    mo.segments = 1;
    mo.max_value_bytes = 16 << 10;
    mo.write_behind = site->queue.get();
    mo.backing_store = site->backing.get();
    mo.replicator = site->replicator.get();
    site->store = MustNewStore(mo, clock);
  }
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(Open(&a_, &to_b_, &clock_a_));
    ASSERT_NO_FATAL_FAILURE(Open(&b_, &to_a_, &clock_b_));
  }
  // Everything site `from` has queued for the other site, applied there, as RemoteSite does.
  std::vector<ReplicaResult> Ship(Site* from, CapturingStore* outbound, Site* to) {
    EXPECT_TRUE(from->replicator->Flush(kFlushUs).ok());
    std::vector<BackingOp> sent;
    {
      std::lock_guard<std::mutex> l(outbound->mu);
      sent.swap(outbound->sent);
    }
    std::vector<ReplicaResult> results;
    for (const BackingOp& op : sent) {
      const ReplicaKind kind = op.kind == BackingOp::Kind::kPut      ? ReplicaKind::kPut
                               : op.kind == BackingOp::Kind::kRemove ? ReplicaKind::kRemove
                                                                     : ReplicaKind::kTouch;
      ReplicaResult r = ReplicaResult::kIgnored;
      Status s = to->store->ApplyReplica(kind, op.item, &r);
      EXPECT_TRUE(s.ok()) << s.ToString();
      results.push_back(r);
    }
    return results;
  }
  static ItemRecord Put(const std::string& id, const std::string& data, uint64_t version) {
    ItemRecord item;
    item.id = id;
    item.data = data;
    item.timeout_minutes = 20;
    item.version = version;
    item.expires_at_us = SystemClock()->NowMicros() + 20 * 60'000'000LL;
    return item;
  }
  static uint64_t VersionIn(Site* site, const std::string& id) {
    EXPECT_TRUE(site->queue->Flush(kFlushUs).ok());
    return std::stoull(site->redis.Command("HGET ss:v1:" + id + " v"));
  }

  const int64_t start_us_ = SystemClock()->NowMicros();
  FakeClock clock_a_{start_us_};  // the same readings in both sites: equal versions happen
  FakeClock clock_b_{start_us_};
  CapturingStore to_a_, to_b_;  // before the sites: their queues call these until they stop
  Site a_, b_;
};

TEST_F(ReplicaTest, AChangeReachesTheOtherSiteWithItsVersionAndIsNotSentBack) {
  ASSERT_EQ(PutValue(a_.store.get(), "s", "cart:book"), Outcome::kOk);
  const uint64_t version = GetValue(a_.store.get(), "s").version;
  const std::vector<ReplicaResult> r = Ship(&a_, &to_b_, &b_);
  ASSERT_FALSE(r.empty());
  EXPECT_EQ(r.front(), ReplicaResult::kApplied);
  const ReadResult there = GetValue(b_.store.get(), "s");
  EXPECT_EQ(there.data, "cart:book");
  EXPECT_EQ(there.version, version) << "replication keeps the origin's version";
  EXPECT_EQ(VersionIn(&b_, "s"), version) << "written behind to the other site's Redis";
  EXPECT_TRUE(b_.replicator->Flush(kFlushUs).ok());
  EXPECT_EQ(b_.replicator->GetStats().enqueued, 1u)
      << "only B's own touch of its read is queued for A, not the replicated put";
  {
    std::lock_guard<std::mutex> l(to_a_.mu);
    ASSERT_EQ(to_a_.sent.size(), 1u);
    EXPECT_EQ(to_a_.sent.front().kind, BackingOp::Kind::kTouch);
  }
  EXPECT_EQ(b_.store->GetStats().replica_applied, 1u);
}

TEST_F(ReplicaTest, TheHigherVersionWinsAndEqualVersionsAreDecidedByTheData) {
  ReplicaResult r;
  ASSERT_TRUE(b_.store->ApplyReplica(ReplicaKind::kPut, Put("s", "v100", 100), &r).ok());
  EXPECT_EQ(r, ReplicaResult::kApplied);
  ASSERT_TRUE(b_.store->ApplyReplica(ReplicaKind::kPut, Put("s", "v99", 99), &r).ok());
  EXPECT_EQ(r, ReplicaResult::kStale) << "an older version never replaces a newer one";
  ASSERT_TRUE(b_.store->ApplyReplica(ReplicaKind::kPut, Put("s", "v100+", 100), &r).ok());
  EXPECT_EQ(r, ReplicaResult::kApplied) << "same version: the data that sorts higher wins";
  ASSERT_TRUE(b_.store->ApplyReplica(ReplicaKind::kPut, Put("s", "v100", 100), &r).ok());
  EXPECT_EQ(r, ReplicaResult::kStale);
  EXPECT_EQ(GetValue(b_.store.get(), "s").data, "v100+");
  EXPECT_EQ(VersionIn(&b_, "s"), 100u);
  ASSERT_EQ(PutValue(b_.store.get(), "s", "local"), Outcome::kOk);
  EXPECT_GT(GetValue(b_.store.get(), "s").version, 100u) << "local changes go above";
}

TEST_F(ReplicaTest, ARemovalIsNeverUndoneByALatePut) {
  ReplicaResult r;
  // B never held "gone": the removal is kept (as a tombstone in B's Redis) all the same.
  ASSERT_TRUE(b_.store->ApplyReplica(ReplicaKind::kRemove, Put("gone", "", 200), &r).ok());
  EXPECT_EQ(r, ReplicaResult::kApplied);
  ASSERT_TRUE(b_.store->ApplyReplica(ReplicaKind::kPut, Put("gone", "late", 150), &r).ok());
  EXPECT_EQ(r, ReplicaResult::kStale);
  ASSERT_TRUE(b_.queue->Flush(kFlushUs).ok());  // the tombstone is now in Redis, not queued
  ASSERT_TRUE(b_.store->ApplyReplica(ReplicaKind::kPut, Put("gone", "later", 199), &r).ok());
  EXPECT_EQ(r, ReplicaResult::kStale) << "the tombstone in Redis decides";
  EXPECT_EQ(GetValue(b_.store.get(), "gone").outcome, Outcome::kNotFound);
  // A held session removed there: gone here too; a put after the removal re-creates it.
  ASSERT_TRUE(b_.store->ApplyReplica(ReplicaKind::kPut, Put("s", "x", 300), &r).ok());
  ASSERT_TRUE(b_.store->ApplyReplica(ReplicaKind::kRemove, Put("s", "", 301), &r).ok());
  EXPECT_EQ(GetValue(b_.store.get(), "s").outcome, Outcome::kNotFound);
  ASSERT_TRUE(b_.store->ApplyReplica(ReplicaKind::kPut, Put("s", "again", 302), &r).ok());
  EXPECT_EQ(GetValue(b_.store.get(), "s").data, "again");
}

TEST_F(ReplicaTest, TouchesFollowTheVersionTheyName) {
  ReplicaResult r;
  ItemRecord item = Put("s", "x", 100);
  ASSERT_TRUE(b_.store->ApplyReplica(ReplicaKind::kPut, item, &r).ok());
  item.expires_at_us += 5 * 60'000'000LL;
  ASSERT_TRUE(b_.store->ApplyReplica(ReplicaKind::kTouch, item, &r).ok());
  EXPECT_EQ(r, ReplicaResult::kApplied);
  item.version = 99;
  ASSERT_TRUE(b_.store->ApplyReplica(ReplicaKind::kTouch, item, &r).ok());
  EXPECT_EQ(r, ReplicaResult::kIgnored) << "a touch of a version B does not hold";
  ASSERT_TRUE(b_.queue->Flush(kFlushUs).ok());
  const int64_t ttl_ms = std::stoll(b_.redis.Command("PTTL ss:v1:s"));
  EXPECT_GT(ttl_ms, 24 * 60'000) << "the touch moved the expiry in B's Redis too";
}

TEST_F(ReplicaTest, APutReplacesALockedCopyAndTheLockHoldersSaveWinsAfter) {
  ASSERT_EQ(PutValue(b_.store.get(), "s", "b1"), Outcome::kOk);
  const ReadResult locked = Lock(b_.store.get(), "s");
  ASSERT_EQ(locked.outcome, Outcome::kOk);
  ReplicaResult r;
  ASSERT_TRUE(
      b_.store->ApplyReplica(ReplicaKind::kPut, Put("s", "from-a", locked.version + 1), &r).ok());
  EXPECT_EQ(r, ReplicaResult::kApplied);
  EXPECT_TRUE(b_.store->IsLocked("s")) << "the lock holder keeps its lock";
  WriteResult w;
  ASSERT_TRUE(b_.store->Put("s", "b2", 20, locked.lock_cookie, false, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kOk);
  const ReadResult after = GetValue(b_.store.get(), "s");
  EXPECT_EQ(after.data, "b2");
  EXPECT_GT(after.version, locked.version + 1);
}

// Both sites change one session at once and exchange their changes: they end up the same.
TEST_F(ReplicaTest, ConcurrentWritesInBothSitesConverge) {
  ASSERT_EQ(PutValue(a_.store.get(), "s", "start"), Outcome::kOk);
  Ship(&a_, &to_b_, &b_);
  Ship(&b_, &to_a_, &a_);
  int ties = 0;  // rounds in which both sites gave their change the same version
  for (int round = 0; round < 20; ++round) {
    // The same clock reading in both sites half the time: equal versions happen.
    clock_a_.AdvanceMicros(1000);
    clock_b_.AdvanceMicros(round % 2 == 0 ? 1000 : 999);
    ASSERT_EQ(PutValue(a_.store.get(), "s", "a" + std::to_string(round)), Outcome::kOk);
    ASSERT_EQ(PutValue(b_.store.get(), "s", "b" + std::to_string(round)), Outcome::kOk);
    ties += GetValue(a_.store.get(), "s").version == GetValue(b_.store.get(), "s").version;
    Ship(&a_, &to_b_, &b_);
    Ship(&b_, &to_a_, &a_);
    const ReadResult in_a = GetValue(a_.store.get(), "s");
    const ReadResult in_b = GetValue(b_.store.get(), "s");

    EXPECT_EQ(in_a.data, in_b.data) << "round " << round;
    EXPECT_EQ(in_a.version, in_b.version) << "round " << round;
    EXPECT_EQ(VersionIn(&a_, "s"), VersionIn(&b_, "s")) << "round " << round;
  }
  EXPECT_GT(ties, 0) << "the tie rule was exercised";
  EXPECT_GT(a_.store->GetStats().replica_applied, 0u);
  EXPECT_GT(b_.store->GetStats().replica_applied, 0u);
}

TEST_F(ReplicaTest, AFullReplicationQueueDropsAndCountsButNeverRefuses) {
  WriteBehindOptions tiny;
  tiny.delay_us = 60'000'000;  // nothing leaves
  tiny.max_pending_bytes = 4096;
  tiny.drop_when_full = true;
  CapturingStore nowhere;
  WriteBehind queue(&nowhere, &clock_a_, tiny);
  for (int i = 0; i < 100; ++i) {
    BackingOp op(BackingOp::Kind::kPut, Put("s" + std::to_string(i), std::string(500, 'x'), 1));
    queue.Enqueue(std::move(op));
  }
  const WriteBehindStats st = queue.GetStats();
  EXPECT_GT(st.dropped, 80u);
  EXPECT_LE(st.pending_bytes, 4096u + 600u);
  EXPECT_EQ(st.dropped + st.pending, 100u);
}

}  // namespace
}  // namespace sessionserver
