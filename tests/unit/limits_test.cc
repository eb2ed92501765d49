// Bad input gets a clear error and changes nothing.
#include "storage/limits.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/store_test_util.h"

namespace sessionserver {
namespace {

class LimitsTest : public ::testing::Test {
 protected:
  LimitsTest() {
    options_.max_value_bytes = 4096;
    store_ = MustNewStore(options_, &clock_);
    PutValue(store_.get(), "bystander", "untouched");
  }

  void ExpectBystanderIntact() {
    ReadResult r = GetValue(store_.get(), "bystander");
    EXPECT_EQ(r.outcome, Outcome::kOk);
    EXPECT_EQ(r.data, "untouched");
    EXPECT_EQ(store_->GetStats().items, 1u);
  }

  MemoryStoreOptions options_;
  FakeClock clock_;
  std::unique_ptr<SessionStore> store_;
};

TEST_F(LimitsTest, BadIdsAreRejectedByEveryOperation) {
  const std::string bad_ids[] = {"",           std::string(kMaxSessionIdBytes + 1, 'a'),
                                 "has space",  std::string("nul\0id", 6),
                                 "tab\tid",    "\x7f",
                                 "caf\xc3\xa9"};
  for (const std::string& id : bad_ids) {
    ReadResult r;
    WriteResult w;
    EXPECT_TRUE(store_->Get(id, &r).IsInvalidArgument()) << id;
    EXPECT_TRUE(store_->GetExclusive(id, &r).IsInvalidArgument()) << id;
    EXPECT_TRUE(store_->ReleaseExclusive(id, 1, &w).IsInvalidArgument()) << id;
    EXPECT_TRUE(store_->Put(id, "v", 20, 0, false, &w).IsInvalidArgument()) << id;
    EXPECT_TRUE(store_->Remove(id, 0, &w).IsInvalidArgument()) << id;
    EXPECT_TRUE(store_->ResetTimeout(id, &w).IsInvalidArgument()) << id;
  }
  ExpectBystanderIntact();
}

TEST_F(LimitsTest, LongestValidIdWorks) {
  const std::string id(kMaxSessionIdBytes, '~');
  EXPECT_EQ(PutValue(store_.get(), id, "v"), Outcome::kOk);
  EXPECT_EQ(GetValue(store_.get(), id).data, "v");
}

TEST_F(LimitsTest, TimeoutOutsideOneMinuteToOneYearIsRejected) {
  for (int32_t t : {0, -1, -20, 525'601, INT32_MAX, INT32_MIN}) {
    WriteResult w;
    Status s = store_->Put("s", "v", t, 0, false, &w);
    EXPECT_TRUE(s.IsInvalidArgument()) << t;
    EXPECT_NE(s.message().find("timeoutMinutes"), std::string::npos) << s.message();
    s = store_->Put("s", "v", t, 0, true, &w);
    EXPECT_TRUE(s.IsInvalidArgument()) << t;
  }
  EXPECT_EQ(GetValue(store_.get(), "s").outcome, Outcome::kNotFound);
  EXPECT_EQ(PutValue(store_.get(), "s", "v", 1), Outcome::kOk);
  EXPECT_EQ(PutValue(store_.get(), "s", "v", 525'600), Outcome::kOk);
}

TEST_F(LimitsTest, OversizeValueIsRejectedAndTheOldValueStays) {
  PutValue(store_.get(), "s", "small");
  WriteResult w;
  Status s = store_->Put("s", std::string(4097, 'x'), 20, 0, false, &w);
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("4097"), std::string::npos) << s.message();
  EXPECT_EQ(GetValue(store_.get(), "s").data, "small");
  EXPECT_EQ(PutValue(store_.get(), "s", std::string(4096, 'y')), Outcome::kOk);
}

TEST(StoreOptionsTest, UnusableOptionsAreRefused) {
  FakeClock clock;
  Status s;
  MemoryStoreOptions tiny;
  tiny.capacity_bytes = 1000;
  EXPECT_EQ(NewMemoryStore(tiny, &clock, &s), nullptr);
  EXPECT_TRUE(s.IsInvalidArgument());

  MemoryStoreOptions huge_values;
  huge_values.max_value_bytes = kMaxValueBytesCeiling + 1;
  EXPECT_EQ(NewMemoryStore(huge_values, &clock, &s), nullptr);
  EXPECT_TRUE(s.IsInvalidArgument());

  EXPECT_EQ(NewMemoryStore(MemoryStoreOptions(), nullptr, &s), nullptr);
  EXPECT_FALSE(s.ok());
}

TEST(StatusTest, ToStringNamesTheCode) {
  EXPECT_EQ(Status::OK().ToString(), "OK");
  EXPECT_EQ(Status::InvalidArgument("bad id").ToString(), "Invalid argument: bad id");
  EXPECT_EQ(Status::IOError("disk").ToString(), "IO error: disk");
}

// The frame limit server and client share (storage/limits.h): twice the value limit plus 64 KiB,
// so a value just over the limit arrives whole and is refused with a message, and the largest
// frame stays under Thrift's 100 MiB message size.
TEST(FrameLimitTest, IsTwiceTheValueLimitPlus64KiB) {
  EXPECT_EQ(FrameLimit(0), 64u << 10);
  EXPECT_EQ(FrameLimit(4096), 2 * 4096 + (64u << 10));
  EXPECT_EQ(FrameLimit(kDefaultMaxValueBytes), (2u << 20) + (64u << 10));
  EXPECT_EQ(FrameLimit(kMaxValueBytesCeiling), (64u << 20) + (64u << 10));
  EXPECT_LT(FrameLimit(kMaxValueBytesCeiling), 100u << 20);
  EXPECT_GT(FrameLimit(kDefaultMaxValueBytes), 2 * kDefaultMaxValueBytes)
      << "room for a value twice the limit and the rest of the message";
}

}  // namespace
}  // namespace sessionserver
