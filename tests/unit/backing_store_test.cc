// The Redis backing store against a real redis-server on a free loopback port.
#include "storage/backing_store.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/redis_server.h"

namespace sessionserver {
namespace {

class BackingStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start());
    options_.port = redis_.port();
    Connect();
  }
  void Connect() {
    Status s;
    store_ = NewRedisBackingStore(options_, &clock_, &s);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  ItemRecord Item(const std::string& id, const std::string& data, uint64_t version,
                  int32_t timeout_minutes = 20) {
    return ItemRecord{
        id,      data, timeout_minutes, clock_.NowMicros() + timeout_minutes * 60'000'000LL,
        version, false};
  }
  BackingOutcome ApplyOne(BackingOp::Kind kind, const ItemRecord& item) {
    std::vector<BackingOutcome> outcomes;
    Status s = store_->Apply({BackingOp{kind, item}}, &outcomes);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return outcomes.empty() ? BackingOutcome::kIgnored : outcomes[0];
  }
  bool Get(const std::string& id, ItemRecord* out) {
    bool found = false;
    Status s = store_->Get(id, out, &found);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return found;
  }
  // Remaining TTL in seconds as Redis sees it (the real clock; expiries are set from FakeClock,
  // which starts in 2023, so tests use a clock near real time).
  long Ttl(const std::string& id) { return std::stol(redis_.Command("TTL ss:v1:" + id)); }

  RedisServer redis_;
  FakeClock clock_{SystemClock()->NowMicros()};
  RedisOptions options_;
  std::unique_ptr<BackingStore> store_;
};

TEST_F(BackingStoreTest, PutThenGetRoundTripsEveryField) {
  ItemRecord in = Item("sid", std::string("bin\0ary", 7), 42, 30);
  in.uninitialized = true;
  ASSERT_EQ(ApplyOne(BackingOp::Kind::kPut, in), BackingOutcome::kApplied);
  ItemRecord out;
  ASSERT_TRUE(Get("sid", &out));
  EXPECT_EQ(out.data, in.data);
  EXPECT_EQ(out.version, 42u);
  EXPECT_EQ(out.timeout_minutes, 30);
  EXPECT_EQ(out.expires_at_us, in.expires_at_us);
  EXPECT_TRUE(out.uninitialized);
  EXPECT_FALSE(Get("other", &out));
}

TEST_F(BackingStoreTest, KeyCarriesTheSessionsRemainingLifetime) {
  ApplyOne(BackingOp::Kind::kPut, Item("sid", "v", 1, 20));
  EXPECT_NEAR(Ttl("sid"), 20 * 60, 2);
  ItemRecord touched = Item("sid", "", 1, 45);  // the touch's new expiry
  EXPECT_EQ(ApplyOne(BackingOp::Kind::kTouch, touched), BackingOutcome::kApplied);
  EXPECT_NEAR(Ttl("sid"), 45 * 60, 2);
  EXPECT_EQ(ApplyOne(BackingOp::Kind::kTouch, Item("sid", "", 2, 90)), BackingOutcome::kIgnored)
      << "a touch of another version changes nothing";
  EXPECT_NEAR(Ttl("sid"), 45 * 60, 2);
}

TEST_F(BackingStoreTest, OlderVersionNeverOverwritesANewerOne) {
  ApplyOne(BackingOp::Kind::kPut, Item("sid", "v9", 9));
  EXPECT_EQ(ApplyOne(BackingOp::Kind::kPut, Item("sid", "v8", 8)), BackingOutcome::kStale);
  ItemRecord out;
  ASSERT_TRUE(Get("sid", &out));
  EXPECT_EQ(out.data, "v9");
  EXPECT_EQ(ApplyOne(BackingOp::Kind::kPut, Item("sid", "v9-again", 9)), BackingOutcome::kApplied)
      << "the same version is an idempotent retry";
  EXPECT_EQ(store_->GetStats().ops_stale, 1u);
}

TEST_F(BackingStoreTest, RemovalIsNotUndoneByALateOlderWrite) {
  ApplyOne(BackingOp::Kind::kPut, Item("sid", "cart", 5));
  EXPECT_EQ(ApplyOne(BackingOp::Kind::kRemove, Item("sid", "", 6)), BackingOutcome::kApplied);
  ItemRecord out;
  EXPECT_FALSE(Get("sid", &out));
  EXPECT_EQ(ApplyOne(BackingOp::Kind::kPut, Item("sid", "late", 5)), BackingOutcome::kStale);
  EXPECT_FALSE(Get("sid", &out));
  EXPECT_GE(Ttl("sid"), 3500) << "the tombstone outlives late writes (at least an hour)";
  EXPECT_EQ(ApplyOne(BackingOp::Kind::kPut, Item("sid", "new life", 7)), BackingOutcome::kApplied);
  ASSERT_TRUE(Get("sid", &out));
  EXPECT_EQ(out.data, "new life");
}

TEST_F(BackingStoreTest, ManyOpsGoInOneRoundTrip) {
  std::vector<BackingOp> ops;
  for (int i = 0; i < 1000; ++i) {
    ops.push_back(BackingOp{BackingOp::Kind::kPut, Item("s" + std::to_string(i), "v", 1)});
  }
  std::vector<BackingOutcome> outcomes;
  ASSERT_TRUE(store_->Apply(ops, &outcomes).ok());
  EXPECT_EQ(outcomes.size(), 1000u);
  EXPECT_EQ(store_->GetStats().round_trips, 1u);
  EXPECT_EQ(redis_.Command("DBSIZE"), "1000");
}

TEST_F(BackingStoreTest, ScriptsAreReloadedAfterScriptFlush) {
  ApplyOne(BackingOp::Kind::kPut, Item("a", "v", 1));
  ASSERT_EQ(redis_.Command("SCRIPT FLUSH"), "OK");
  EXPECT_EQ(ApplyOne(BackingOp::Kind::kPut, Item("a", "v2", 2)), BackingOutcome::kApplied);
  EXPECT_EQ(store_->GetStats().script_reloads, 1u);
}

TEST_F(BackingStoreTest, RedisDownIsAnErrorNotAHangAndRecoveryReconnects) {
  options_.read_retry_us = 0;
  Connect();
  redis_.Kill();
  std::vector<BackingOutcome> outcomes;
  EXPECT_FALSE(
      store_->Apply({BackingOp{BackingOp::Kind::kPut, Item("a", "v", 1)}}, &outcomes).ok());
  ItemRecord out;
  bool found = true;
  EXPECT_FALSE(store_->Get("a", &out, &found).ok());
  ASSERT_TRUE(redis_.Start());  // same port, empty data
  EXPECT_EQ(ApplyOne(BackingOp::Kind::kPut, Item("a", "v", 1)), BackingOutcome::kApplied);
  EXPECT_TRUE(Get("a", &out));
}

TEST_F(BackingStoreTest, AfterAFailedReadReadsFailAtOnceUntilTheRetryInterval) {
  options_.read_retry_us = 3'600'000'000;  // never passes in this test
  Connect();
  redis_.Kill();
  ItemRecord out;
  bool found = true;
  EXPECT_FALSE(store_->Get("a", &out, &found).ok());
  ASSERT_TRUE(redis_.Start());
  EXPECT_EQ(ApplyOne(BackingOp::Kind::kPut, Item("a", "v", 1)), BackingOutcome::kApplied)
      << "writes are not blocked";
  const Status s = store_->Get("a", &out, &found);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not retried yet"), std::string::npos) << s.ToString();
}

TEST_F(BackingStoreTest, HungRedisCostsAtMostTheCommandTimeout) {
  options_.command_timeout_us = 100'000;
  Connect();
  redis_.Pause();
  const auto start = std::chrono::steady_clock::now();
  std::vector<BackingOutcome> outcomes;
  EXPECT_FALSE(
      store_->Apply({BackingOp{BackingOp::Kind::kPut, Item("a", "v", 1)}}, &outcomes).ok());
  const auto waited = std::chrono::steady_clock::now() - start;
  redis_.Resume();
  EXPECT_LT(waited, std::chrono::seconds(5)) << "bounded by the timeout, not by Redis";
  EXPECT_EQ(ApplyOne(BackingOp::Kind::kPut, Item("a", "v", 1)), BackingOutcome::kApplied);
}

TEST_F(BackingStoreTest, CorruptValueIsRejected) {
  redis_.Command("HSET ss:v1:bad v 1 r garbage");
  ItemRecord out;
  bool found = true;
  Status s = store_->Get("bad", &out, &found);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(found);
}

}  // namespace
}  // namespace sessionserver
