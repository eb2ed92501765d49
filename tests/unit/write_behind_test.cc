// The write-behind queue against a real redis-server: window, coalescing, ordering, outages.
#include "storage/write_behind.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "tests/unit/redis_server.h"

namespace sessionserver {
namespace {

constexpr int64_t kFlushTimeoutUs = 20'000'000;

class WriteBehindTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start());
    RedisOptions ro;
    ro.port = redis_.port();
    ro.command_timeout_us = 100'000;
    Status s;
    store_ = NewRedisBackingStore(ro, &clock_, &s);
    ASSERT_TRUE(s.ok()) << s.ToString();
    options_.delay_us = 100'000;
    options_.first_backoff_us = 10'000;
    options_.max_backoff_us = 100'000;
    queue_ = std::make_unique<WriteBehind>(store_.get(), &clock_, options_);
  }
  void TearDown() override { queue_.reset(); }

  BackingOp Op(BackingOp::Kind kind, const std::string& id, uint64_t version,
               const std::string& data = "v", int64_t lifetime_us = 20 * 60'000'000LL) {
    return BackingOp{kind,
                     ItemRecord{id, data, 20, clock_.NowMicros() + lifetime_us, version, false}};
  }
  std::string Data(const std::string& id) {
    ItemRecord item;
    bool found = false;
    EXPECT_TRUE(store_->Get(id, &item, &found).ok());
    return found ? item.data : "(none)";
  }
  // Waits (bounded) until the queue is empty without forcing a flush.
  bool Drained() {
    for (int i = 0; i < 2000; ++i) {
      if (queue_->GetStats().pending == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }

  RedisServer redis_;
  FakeClock clock_{SystemClock()->NowMicros()};
  WriteBehindOptions options_;
  std::unique_ptr<BackingStore> store_;
  std::unique_ptr<WriteBehind> queue_;
};

TEST_F(WriteBehindTest, ChangesWaitForTheWindowThenReachRedis) {
  queue_->Enqueue(Op(BackingOp::Kind::kPut, "s", 1, "cart"));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));  // several flusher rounds
  EXPECT_EQ(queue_->GetStats().pending, 1u) << "not due: the fake clock has not moved";
  EXPECT_EQ(Data("s"), "(none)");
  clock_.AdvanceMicros(options_.delay_us);
  ASSERT_TRUE(Drained());
  EXPECT_EQ(Data("s"), "cart");
}

TEST_F(WriteBehindTest, HotSessionCoalescesIntoFewWrites) {
  for (uint64_t v = 1; v <= 1000; ++v) {
    queue_->Enqueue(Op(BackingOp::Kind::kPut, "hot", v, "cart-" + std::to_string(v)));
  }
  ASSERT_TRUE(queue_->Flush(kFlushTimeoutUs).ok());
  EXPECT_EQ(Data("hot"), "cart-1000");
  EXPECT_EQ(queue_->GetStats().coalesced, 999u);
  EXPECT_LE(store_->GetStats().ops_applied, 2u) << "1000 application writes, 1-2 Redis writes";
}

TEST_F(WriteBehindTest, TouchFoldsIntoThePendingPutAndMovesTheTtl) {
  queue_->Enqueue(Op(BackingOp::Kind::kPut, "s", 1, "v", 20 * 60'000'000LL));
  queue_->Enqueue(Op(BackingOp::Kind::kTouch, "s", 1, "", 45 * 60'000'000LL));
  ASSERT_TRUE(queue_->Flush(kFlushTimeoutUs).ok());
  EXPECT_EQ(queue_->GetStats().flushed, 1u);
  EXPECT_NEAR(std::stol(redis_.Command("TTL ss:v1:s")), 45 * 60, 2);
  EXPECT_EQ(Data("s"), "v");
}

TEST_F(WriteBehindTest, RemoveInTheSameWindowWins) {
  queue_->Enqueue(Op(BackingOp::Kind::kPut, "s", 1, "cart"));
  queue_->Enqueue(Op(BackingOp::Kind::kRemove, "s", 2));
  queue_->Enqueue(Op(BackingOp::Kind::kTouch, "s", 1));  // a late touch of the removed version
  ASSERT_TRUE(queue_->Flush(kFlushTimeoutUs).ok());
  EXPECT_EQ(Data("s"), "(none)");
  EXPECT_EQ(redis_.Command("HGET ss:v1:s t"), "1") << "a tombstone, not just a missing key";
}

TEST_F(WriteBehindTest, RedisOutageLosesNothingAndFlushesWhenItReturns) {
  redis_.Kill();
  for (int i = 0; i < 1000; ++i) {
    queue_->Enqueue(Op(BackingOp::Kind::kPut, "s" + std::to_string(i), 1, std::to_string(i)));
  }
  EXPECT_FALSE(queue_->Flush(200'000).ok());
  EXPECT_EQ(queue_->GetStats().pending, 1000u);
  EXPECT_GT(queue_->GetStats().retries, 0u);
  ASSERT_TRUE(redis_.Start());  // same port, empty
  ASSERT_TRUE(queue_->Flush(kFlushTimeoutUs).ok());
  EXPECT_EQ(redis_.Command("DBSIZE"), "1000");
  EXPECT_EQ(Data("s999"), "999");
}

TEST_F(WriteBehindTest, HungRedisNeverBlocksEnqueue) {
  redis_.Pause();
  clock_.AdvanceSeconds(1);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10'000; ++i) {
    queue_->Enqueue(Op(BackingOp::Kind::kPut, "s" + std::to_string(i % 500), i + 1));
    if (i % 1000 == 0) clock_.AdvanceSeconds(1);  // make everything due while Redis hangs
  }
  const auto took = std::chrono::steady_clock::now() - start;
  redis_.Resume();
  EXPECT_LT(took, std::chrono::seconds(2)) << "enqueue must not wait for Redis";
  ASSERT_TRUE(queue_->Flush(kFlushTimeoutUs).ok());
  EXPECT_EQ(redis_.Command("DBSIZE"), "500");
}

TEST_F(WriteBehindTest, StatsReportDepthAndAge) {
  queue_->Enqueue(Op(BackingOp::Kind::kPut, "a", 1));
  clock_.AdvanceMicros(40'000);
  queue_->Enqueue(Op(BackingOp::Kind::kPut, "b", 1));
  WriteBehindStats s = queue_->GetStats();
  EXPECT_EQ(s.pending, 2u);
  EXPECT_EQ(s.oldest_pending_age_us, 40'000);
  EXPECT_GT(s.pending_bytes, 0u);
}

TEST_F(WriteBehindTest, AKeyRedisCanNeverWriteDoesNotBlockTheOthers) {
  redis_.Command("SET ss:v1:foreign not-a-hash");  // another application's key, say
  queue_->Enqueue(Op(BackingOp::Kind::kPut, "foreign", 1, "x"));
  queue_->Enqueue(Op(BackingOp::Kind::kPut, "fine", 1, "cart"));
  ASSERT_TRUE(queue_->Flush(kFlushTimeoutUs).ok());
  EXPECT_EQ(Data("fine"), "cart");
  EXPECT_EQ(queue_->GetStats().rejected, 1u);
  EXPECT_EQ(redis_.Command("GET ss:v1:foreign"), "not-a-hash") << "left alone";
}

}  // namespace
}  // namespace sessionserver
