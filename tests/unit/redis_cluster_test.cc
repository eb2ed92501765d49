// Redis Cluster support (util/redis_cluster.h) and the backing store on a real three-master
// cluster (tests/unit/redis_cluster.h): hash slots as the cluster computes them, sessions spread
// over every master, the version guard, MOVED after a slot moved (and the map refresh it
// triggers), ASK while a slot is half migrated, NOSCRIPT on one node, and a resharding while
// writers run that loses no acknowledged write.
#include "tests/unit/redis_cluster.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "storage/backing_store.h"
#include "util/redis_cluster.h"

namespace sessionserver {
namespace {

TEST(RedisKeySlotTest, Crc16AndSlotsMatchTheClusterSpec) {
  EXPECT_EQ(RedisCrc16("123456789"), 0x31C3);  // the spec's check value for CRC16/XMODEM
  EXPECT_EQ(RedisCrc16(""), 0);
  EXPECT_EQ(RedisKeySlot("foo"), 12182);
  EXPECT_EQ(RedisKeySlot("123456789"), 0x31C3 & 16383);
  // Hash tags: the first {...} with something inside decides.
  EXPECT_EQ(RedisKeySlot("{user1000}.following"), RedisKeySlot("user1000"));
  EXPECT_EQ(RedisKeySlot("{user1000}.followers"), RedisKeySlot("{user1000}.following"));
  EXPECT_EQ(RedisKeySlot("foo{}{bar}"), RedisCrc16("foo{}{bar}") & 16383) << "empty tag: whole key";
  EXPECT_EQ(RedisKeySlot("foo{{bar}}zap"), RedisKeySlot("{bar")) << "tag runs to the first }";
  EXPECT_EQ(RedisKeySlot("foo{bar}{zap}"), RedisKeySlot("bar")) << "only the first tag counts";
  EXPECT_EQ(RedisKeySlot("foo{bar"), RedisCrc16("foo{bar") & 16383) << "no closing brace";
}

class RedisClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.Start());
    ASSERT_TRUE(ParseHostPortList(cluster_.Seeds(), &options_.cluster_seeds).ok());
    // Generous: sanitizer builds on a loaded machine are slow, and timeouts are not under test.
    options_.command_timeout_us = 3'000'000;
    store_ = Connect();
  }
  std::unique_ptr<BackingStore> Connect() {
    Status s;
    std::unique_ptr<BackingStore> store = NewRedisBackingStore(options_, &clock_, &s);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return store;
  }

  ItemRecord Item(const std::string& id, uint64_t version) {
    return ItemRecord{id,   Data(id, version), 20, clock_.NowMicros() + 20 * 60'000'000LL, version,
                      false};
  }
  static std::string Data(const std::string& id, uint64_t version) {
    return id + "@" + std::to_string(version);
  }
  // Applies `kind` of version `version` to every id in one batch; the outcomes.
  std::vector<BackingOutcome> ApplyAll(BackingStore* store, BackingOp::Kind kind,
                                       const std::vector<std::string>& ids, uint64_t version) {
    std::vector<BackingOp> ops;
    for (const std::string& id : ids) ops.emplace_back(kind, Item(id, version));
    std::vector<BackingOutcome> outcomes;
    Status s = store->Apply(ops, &outcomes);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return outcomes;
  }
  static int Count(const std::vector<BackingOutcome>& outcomes, BackingOutcome o) {
    return static_cast<int>(std::count(outcomes.begin(), outcomes.end(), o));
  }
  // The version `store` reads for id (0: not found), checking the data matches it.
  uint64_t ReadVersion(BackingStore* store, const std::string& id) {
    ItemRecord item;
    bool found = false;
    Status s = store->Get(id, &item, &found);
    EXPECT_TRUE(s.ok()) << id << ": " << s.ToString();
    if (!found) return 0;
    EXPECT_EQ(item.data, Data(id, item.version)) << id;
    return item.version;
  }
  static std::vector<std::string> Ids(const std::string& prefix, int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) ids.push_back(prefix + std::to_string(i));
    return ids;
  }
  static int SlotOf(const std::string& id) { return RedisKeySlot("ss:v1:" + id); }
  int SlotKeys(int node, int slot) {
    return static_cast<int>(cluster_.KeysInSlot(node, slot, 100000).size());
  }

  RedisCluster cluster_;
  FakeClock clock_{SystemClock()->NowMicros()};
  RedisOptions options_;
  std::unique_ptr<BackingStore> store_;
};

TEST_F(RedisClusterTest, KeySlotsAgreeWithTheCluster) {
  for (const std::string& key : Ids("ss:v1:sid-", 200)) {
    ASSERT_EQ(cluster_.Command(0, {"CLUSTER", "KEYSLOT", key}), std::to_string(RedisKeySlot(key)))
        << key;
  }
  for (const std::string key : {"ss:v1:{t}a", "{a}{b}", "x{}y", "{{z}}", "ss:fleet:v1:m:h:1"}) {
    ASSERT_EQ(cluster_.Command(1, {"CLUSTER", "KEYSLOT", key}), std::to_string(RedisKeySlot(key)))
        << key;
  }
}

TEST_F(RedisClusterTest, SessionsSpreadOverEveryMasterAndRoundTrip) {
  const std::vector<std::string> ids = Ids("s", 300);
  EXPECT_EQ(Count(ApplyAll(store_.get(), BackingOp::Kind::kPut, ids, 5), BackingOutcome::kApplied),
            300);
  EXPECT_EQ(store_->GetStats().round_trips, 1u) << "one batch, pipelined per node";
  int64_t total = 0;
  for (int node = 0; node < cluster_.size(); ++node) {
    const int64_t keys = cluster_.KeyCount(node);
    EXPECT_GT(keys, 50) << "node " << node << " holds its share";
    total += keys;
  }
  EXPECT_EQ(total, 300);
  for (const std::string& id : ids) {
    ASSERT_EQ(cluster_.Command(cluster_.Owner(SlotOf(id)), {"EXISTS", "ss:v1:" + id}), "1") << id;
  }
  const std::vector<std::string> removed(ids.begin(), ids.begin() + 100);
  const std::vector<std::string> kept(ids.begin() + 100, ids.end());
  EXPECT_EQ(
      Count(ApplyAll(store_.get(), BackingOp::Kind::kTouch, kept, 5), BackingOutcome::kApplied),
      200);
  EXPECT_EQ(
      Count(ApplyAll(store_.get(), BackingOp::Kind::kRemove, removed, 6), BackingOutcome::kApplied),
      100);
  for (const std::string& id : kept) ASSERT_EQ(ReadVersion(store_.get(), id), 5u) << id;
  for (const std::string& id : removed) ASSERT_EQ(ReadVersion(store_.get(), id), 0u) << id;
  const BackingStoreStats st = store_->GetStats();
  EXPECT_EQ(st.read_hits, 200u);
  EXPECT_EQ(st.redirects_moved + st.redirects_ask, 0u) << "a fresh slot map needs no redirect";
}

TEST_F(RedisClusterTest, VersionGuardHoldsOnEveryNode) {
  const std::vector<std::string> ids = Ids("g", 30);
  ApplyAll(store_.get(), BackingOp::Kind::kPut, ids, 9);
  EXPECT_EQ(Count(ApplyAll(store_.get(), BackingOp::Kind::kPut, ids, 8), BackingOutcome::kStale),
            30);
  EXPECT_EQ(
      Count(ApplyAll(store_.get(), BackingOp::Kind::kRemove, ids, 10), BackingOutcome::kApplied),
      30);
  EXPECT_EQ(Count(ApplyAll(store_.get(), BackingOp::Kind::kPut, ids, 9), BackingOutcome::kStale),
            30)
      << "a late older write never undoes the removal";
  ItemRecord item;
  bool found = true;
  ASSERT_TRUE(store_->Get(ids[0], &item, &found).ok());
  EXPECT_FALSE(found);
  EXPECT_EQ(item.version, 10u) << "the tombstone's version";
}

TEST_F(RedisClusterTest, FollowsMovedSlotsAndRefreshesTheWholeMap) {
  // Two slots (hash tags {m1}, {m2}) with sessions, both moved to another master while the
  // store's map still names their old owners.
  const std::vector<std::string> first = Ids("{m1}", 20), second = Ids("{m2}", 20);
  const int slot1 = SlotOf(first[0]), slot2 = SlotOf(second[0]);
  ApplyAll(store_.get(), BackingOp::Kind::kPut, first, 1);
  ApplyAll(store_.get(), BackingOp::Kind::kPut, second, 1);
  const uint64_t refreshes_before = store_->GetStats().slot_map_refreshes;
  ASSERT_TRUE(cluster_.MigrateSlot(slot1, (cluster_.Owner(slot1) + 1) % 3));
  ASSERT_TRUE(cluster_.MigrateSlot(slot2, (cluster_.Owner(slot2) + 1) % 3));

  for (const std::string& id : first) ASSERT_EQ(ReadVersion(store_.get(), id), 1u) << id;
  EXPECT_EQ(
      Count(ApplyAll(store_.get(), BackingOp::Kind::kPut, first, 2), BackingOutcome::kApplied), 20);
  EXPECT_EQ(SlotKeys(cluster_.Owner(slot1), slot1), 20) << "written on the new owner";
  EXPECT_GE(store_->GetStats().redirects_moved, 2u) << "the reader and the writer each met MOVED";

  // A MOVED asks for a refresh (at most every 100 ms): poll with writes until it happened.
  ASSERT_TRUE(RedisCluster::Poll(5000, [&] {
    ApplyAll(store_.get(), BackingOp::Kind::kPut, first, 2);
    ReadVersion(store_.get(), first[0]);
    return store_->GetStats().slot_map_refreshes >= refreshes_before + 2;  // writer and reader
  }));
  const uint64_t moved = store_->GetStats().redirects_moved;
  EXPECT_EQ(
      Count(ApplyAll(store_.get(), BackingOp::Kind::kPut, second, 2), BackingOutcome::kApplied),
      20);
  for (const std::string& id : second) ASSERT_EQ(ReadVersion(store_.get(), id), 2u) << id;
  EXPECT_EQ(store_->GetStats().redirects_moved, moved)
      << "the refresh learned the other moved slot: no MOVED for it";
}

TEST_F(RedisClusterTest, ReadsAndWritesSucceedWhileASlotIsMigrating) {
  const std::vector<std::string> ids = Ids("{a}", 10);
  const int slot = SlotOf(ids[0]);
  const int from = cluster_.Owner(slot), to = (from + 1) % 3;
  ApplyAll(store_.get(), BackingOp::Kind::kPut, ids, 1);
  ASSERT_TRUE(cluster_.BeginMigration(slot, to));
  ASSERT_EQ(cluster_.MoveKeys(slot, to, 5), 5);
  ASSERT_EQ(SlotKeys(from, slot), 5);
  ASSERT_EQ(SlotKeys(to, slot), 5);

  for (const std::string& id : ids) ASSERT_EQ(ReadVersion(store_.get(), id), 1u) << id;
  const uint64_t asked = store_->GetStats().redirects_ask;
  EXPECT_EQ(asked, 5u) << "each moved key was read through ASK";
  for (const std::string& id : ids) ASSERT_EQ(ReadVersion(store_.get(), id), 1u) << id;
  EXPECT_EQ(store_->GetStats().redirects_ask, 2 * asked) << "ASK does not change the map";

  std::vector<std::string> all = ids;
  for (const std::string& id : Ids("{a}new", 5)) all.push_back(id);
  EXPECT_EQ(Count(ApplyAll(store_.get(), BackingOp::Kind::kPut, all, 2), BackingOutcome::kApplied),
            15);
  EXPECT_EQ(SlotKeys(to, slot), 10) << "new sessions of a migrating slot go to its target";
  EXPECT_EQ(store_->GetStats().redirects_moved, 0u);
  for (const std::string& id : all) ASSERT_EQ(ReadVersion(store_.get(), id), 2u) << id;

  while (cluster_.MoveKeys(slot, to, 5) > 0) {
  }
  ASSERT_TRUE(cluster_.FinishMigration(slot, to));
  for (const std::string& id : all) ASSERT_EQ(ReadVersion(store_.get(), id), 2u) << id;
  EXPECT_GE(store_->GetStats().redirects_moved, 1u);
}

TEST_F(RedisClusterTest, NoscriptOnOneNodeLoadsTheScriptThereOnly) {
  ASSERT_EQ(cluster_.Command(1, {"SCRIPT", "FLUSH"}), "OK");
  const std::vector<std::string> ids = Ids("n", 100);
  EXPECT_EQ(Count(ApplyAll(store_.get(), BackingOp::Kind::kPut, ids, 1), BackingOutcome::kApplied),
            100);
  EXPECT_EQ(store_->GetStats().script_reloads, 1u);
  EXPECT_EQ(Count(ApplyAll(store_.get(), BackingOp::Kind::kPut, ids, 2), BackingOutcome::kApplied),
            100);
  EXPECT_EQ(store_->GetStats().script_reloads, 1u) << "the EVAL left the script cached there";
  for (const std::string& id : ids) ASSERT_EQ(ReadVersion(store_.get(), id), 2u) << id;
}

// A master dies and its replica is promoted: the first batch after it meets the dead
// connection (an error: the write-behind queue retries it), which marks the slot map stale; the
// retry reads the new map and goes to the promoted replica. Nothing replicated is lost.
TEST_F(RedisClusterTest, FollowsAReplicaPromotedAfterItsMasterDied) {
  options_.read_retry_us = 0;  // so the reader retries at once after its failed read
  store_ = Connect();
  const int replica = cluster_.AddReplica(0);
  ASSERT_GE(replica, 0);
  const std::vector<std::string> ids = Ids("f", 150);
  ApplyAll(store_.get(), BackingOp::Kind::kPut, ids, 1);
  for (const std::string& id : ids) ASSERT_EQ(ReadVersion(store_.get(), id), 1u);
  ASSERT_EQ(cluster_.Command(0, {"WAIT", "1", "5000"}), "1") << "the replica has every write";
  cluster_.server(0).Kill();
  ASSERT_TRUE(cluster_.TakeOver(replica, 0));

  const uint64_t refreshes = store_->GetStats().slot_map_refreshes;
  std::vector<BackingOp> ops;
  for (const std::string& id : ids) ops.emplace_back(BackingOp::Kind::kPut, Item(id, 2));
  std::vector<BackingOutcome> outcomes;
  int failed_rounds = 0;
  ASSERT_TRUE(RedisCluster::Poll(5000, [&] {
    if (store_->Apply(ops, &outcomes).ok()) return true;
    ++failed_rounds;
    return false;
  }));
  EXPECT_GE(failed_rounds, 1) << "the dead master's connection fails the first round";
  EXPECT_EQ(Count(outcomes, BackingOutcome::kApplied), 150);
  EXPECT_GE(store_->GetStats().slot_map_refreshes, refreshes + 1);
  EXPECT_GT(cluster_.KeyCount(replica), 0) << "the promoted replica took the dead master's keys";
  ItemRecord item;
  bool found = false;
  ASSERT_TRUE(RedisCluster::Poll(5000, [&] { return store_->Get(ids[0], &item, &found).ok(); }));
  for (const std::string& id : ids) ASSERT_EQ(ReadVersion(store_.get(), id), 2u) << id;
}

TEST_F(RedisClusterTest, SeedsThatAreDownAreSkippedAndAllDownConnectsLater) {
  RedisOptions with_dead = options_;
  with_dead.cluster_seeds.insert(with_dead.cluster_seeds.begin(),
                                 HostPort{"127.0.0.1", RedisServer::FreePort()});
  Status s;
  std::unique_ptr<BackingStore> store = NewRedisBackingStore(with_dead, &clock_, &s);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Count(ApplyAll(store.get(), BackingOp::Kind::kPut, {"x"}, 1), BackingOutcome::kApplied),
            1);

  RedisOptions all_dead = options_;
  all_dead.cluster_seeds = {HostPort{"127.0.0.1", RedisServer::FreePort()}};
  store = NewRedisBackingStore(all_dead, &clock_, &s);
  ASSERT_NE(store, nullptr) << "a store is returned even when no seed answers";
  EXPECT_FALSE(s.ok());
  std::vector<BackingOutcome> outcomes;
  EXPECT_FALSE(store->Apply({BackingOp{BackingOp::Kind::kPut, Item("x", 2)}}, &outcomes).ok());
}

// Writers put new versions of their sessions and create new ones, round after round, while
// slots holding them move between masters (rounds run while each slot is MIGRATING, with some
// of its keys already moved and some not). Every write a writer saw acknowledged must be in the
// cluster at the end.
TEST_F(RedisClusterTest, ReshardingUnderLoadLosesNothing) {
  constexpr int kWriters = 3, kHotSlots = 6;
  std::vector<std::string> tags;
  for (int j = 0; j < kHotSlots; ++j) tags.push_back("{hot" + std::to_string(j) + "}");

  struct Writer {
    std::unique_ptr<BackingStore> store;
    std::map<std::string, uint64_t> acked;  // id -> last acknowledged version
    int failures = 0;
    std::string last_error;
    std::thread thread;
  };
  std::vector<Writer> writers(kWriters);
  std::atomic<int> rounds{0};
  std::atomic<bool> stop{false};
  for (int w = 0; w < kWriters; ++w) {
    Writer& wr = writers[w];
    wr.store = Connect();
    wr.thread = std::thread([&, w] {
      std::vector<std::string> steady;  // rewritten every round
      for (int i = 0; i < 10; ++i)
        steady.push_back("w" + std::to_string(w) + "-" + std::to_string(i));
      for (const std::string& tag : tags) {
        for (int i = 0; i < 5; ++i)
          steady.push_back(tag + "w" + std::to_string(w) + "-" + std::to_string(i));
      }
      for (uint64_t round = 1; round < 100'000; ++round) {
        const bool last = stop.load();
        std::vector<std::string> ids = steady;
        for (const std::string& tag : tags) {  // created this round, never written again
          ids.push_back(tag + "w" + std::to_string(w) + "-r" + std::to_string(round));
        }
        std::vector<BackingOp> ops;
        for (const std::string& id : ids) ops.emplace_back(BackingOp::Kind::kPut, Item(id, round));
        std::vector<BackingOutcome> outcomes;
        Status s = wr.store->Apply(ops, &outcomes);
        if (!s.ok()) {
          ++wr.failures;
          wr.last_error = s.ToString();
          continue;  // as the write-behind queue does: try again (here with newer versions)
        }
        for (size_t i = 0; i < ids.size(); ++i) {
          if (outcomes[i] == BackingOutcome::kApplied) wr.acked[ids[i]] = round;
        }
        if (w == 0) rounds.fetch_add(1);
        if (last) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // pace: ~1 round per ms
      }
    });
  }
  auto wait_rounds = [&](int n) {
    const int target = rounds.load() + n;
    return RedisCluster::Poll(10'000, [&] { return rounds.load() >= target; });
  };
  ASSERT_TRUE(wait_rounds(5));
  for (const std::string& tag : tags) {
    const int slot = RedisKeySlot(tag);
    const int to = (cluster_.Owner(slot) + 1) % cluster_.size();
    ASSERT_TRUE(cluster_.BeginMigration(slot, to));
    ASSERT_TRUE(wait_rounds(2));  // sessions created while the slot is MIGRATING: ASK
    ASSERT_GT(cluster_.MoveKeys(slot, to, 10), 0);
    ASSERT_TRUE(wait_rounds(2));  // writes to keys on either side of the migration
    int moved;
    while ((moved = cluster_.MoveKeys(slot, to, 100)) > 0) {
    }
    ASSERT_EQ(moved, 0);
    ASSERT_TRUE(cluster_.FinishMigration(slot, to));
    ASSERT_TRUE(wait_rounds(1));
  }
  ASSERT_TRUE(wait_rounds(3));
  stop = true;
  BackingStoreStats total;
  for (Writer& wr : writers) {
    wr.thread.join();
    const BackingStoreStats st = wr.store->GetStats();
    total.redirects_moved += st.redirects_moved;
    total.redirects_ask += st.redirects_ask;
    EXPECT_EQ(wr.failures, 0) << wr.last_error;
  }
  EXPECT_GT(total.redirects_moved, 0u);
  EXPECT_GT(total.redirects_ask, 0u);

  std::unique_ptr<BackingStore> reader = Connect();
  size_t checked = 0;
  for (Writer& wr : writers) {
    for (const auto& [id, version] : wr.acked) {
      ASSERT_EQ(ReadVersion(reader.get(), id), version) << id << " lost its acknowledged write";
      ++checked;
    }
  }
  EXPECT_GT(checked, static_cast<size_t>(kWriters * (40 + kHotSlots * 20)));
  for (const std::string& tag : tags) {
    const int slot = RedisKeySlot(tag);
    for (int node = 0; node < cluster_.size(); ++node) {
      if (node != cluster_.Owner(slot)) {
        EXPECT_EQ(SlotKeys(node, slot), 0) << tag;
      }
    }
  }
}

}  // namespace
}  // namespace sessionserver
