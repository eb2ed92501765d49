// Byte-capacity accounting and LRU eviction order.
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "tests/unit/store_test_util.h"

namespace sessionserver {
namespace {

// Records evictions. It calls back into the store, which would deadlock if the store invoked it
// while holding a segment lock.
class RecordingListener : public EvictionListener {
 public:
  void OnEvict(std::vector<ItemRecord> items) override {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& item : items) {
      if (store_ != nullptr) {
        ReadResult r;
        EXPECT_TRUE(store_->Get(item.id, &r).ok());
        EXPECT_EQ(r.outcome, Outcome::kNotFound) << "evicted item still served: " << item.id;
      }
      evicted_.push_back(std::move(item));
    }
  }
  std::vector<ItemRecord> evicted() {
    std::lock_guard<std::mutex> l(mu_);
    return evicted_;
  }
  SessionStore* store_ = nullptr;

 private:
  std::mutex mu_;
  std::vector<ItemRecord> evicted_;
};

class CapacityTest : public ::testing::Test {
 protected:
  CapacityTest() {
    options_.capacity_bytes = 64 << 10;
    options_.segments = 1;  // one LRU order, so the test can predict it
    options_.max_value_bytes = 4096;
    options_.eviction_listener = &listener_;
    store_ = MustNewStore(options_, &clock_);
    listener_.store_ = store_.get();
  }

  MemoryStoreOptions options_;
  FakeClock clock_;
  RecordingListener listener_;
  std::unique_ptr<SessionStore> store_;
};

TEST_F(CapacityTest, UsageStaysWithinTheByteBudget) {
  for (int i = 0; i < 500; ++i) {
    PutValue(store_.get(), "s" + std::to_string(i), std::string(100 + (i * 37) % 4000, 'v'));
    StoreStats stats = store_->GetStats();
    ASSERT_LE(stats.bytes, stats.capacity_bytes) << "after put " << i;
  }
  StoreStats stats = store_->GetStats();
  EXPECT_GT(stats.evictions, 0u);
  EXPECT_GT(stats.bytes, stats.capacity_bytes / 2) << "eviction should not overshoot wildly";
  EXPECT_EQ(listener_.evicted().size(), stats.evictions);
}

TEST_F(CapacityTest, ChargeIncludesPerItemOverhead) {
  PutValue(store_.get(), "abc", std::string(1000, 'v'));
  StoreStats stats = store_->GetStats();
  EXPECT_GE(stats.bytes, 1003u + 80u) << "id + value + the 80-byte entry header at least";
  EXPECT_LE(stats.bytes, 1003u + 160u) << "overhead beyond the header must stay small";
}

TEST_F(CapacityTest, LeastRecentlyUsedGoesFirst) {
  const std::string value(3000, 'v');
  for (int i = 0; i < 10; ++i) PutValue(store_.get(), "k" + std::to_string(i), value);
  // Touch k0 so that k1 becomes the oldest.
  clock_.AdvanceSeconds(1);
  ASSERT_EQ(GetValue(store_.get(), "k0").outcome, Outcome::kOk);
  int i = 10;
  while (listener_.evicted().empty()) PutValue(store_.get(), "k" + std::to_string(i++), value);
  std::vector<ItemRecord> evicted = listener_.evicted();
  EXPECT_EQ(evicted[0].id, "k1");
  EXPECT_EQ(GetValue(store_.get(), "k0").outcome, Outcome::kOk);
}

TEST_F(CapacityTest, EvictedRecordCarriesEverythingNeededToSpill) {
  WriteResult w;
  ASSERT_TRUE(store_->Put("first", "payload", 7, 0, false, &w).ok());
  const uint64_t version = GetValue(store_.get(), "first").version;
  const int64_t touched_at = clock_.NowMicros();
  for (int i = 0; listener_.evicted().empty(); ++i) {
    PutValue(store_.get(), "filler" + std::to_string(i), std::string(3000, 'f'));
  }
  ItemRecord r = listener_.evicted()[0];
  EXPECT_EQ(r.id, "first");
  EXPECT_EQ(r.data, "payload");
  EXPECT_EQ(r.timeout_minutes, 7);
  EXPECT_EQ(r.version, version);
  EXPECT_EQ(r.expires_at_us, touched_at + 7 * 60'000'000LL);
  EXPECT_FALSE(r.uninitialized);
}

TEST_F(CapacityTest, LockedItemsAreNeverEvicted) {
  PutValue(store_.get(), "held", std::string(3000, 'h'));
  ReadResult lock = Lock(store_.get(), "held");
  ASSERT_EQ(lock.outcome, Outcome::kOk);
  for (int i = 0; i < 200; ++i) {
    PutValue(store_.get(), "f" + std::to_string(i), std::string(3000, 'f'));
  }
  EXPECT_GT(store_->GetStats().evictions, 0u);
  EXPECT_EQ(Lock(store_.get(), "held").outcome, Outcome::kLocked);
  EXPECT_EQ(PutValue(store_.get(), "held", "done", 20, lock.lock_cookie), Outcome::kOk);
}

// Regression: 64 locks at the old end of the LRU list used to stop eviction in the segment.
TEST_F(CapacityTest, ManyLockedItemsDoNotStopEviction) {
  for (int i = 0; i < 80; ++i) {
    const std::string id = "held" + std::to_string(i);
    PutValue(store_.get(), id, std::string(100, 'h'));
    ASSERT_EQ(Lock(store_.get(), id).outcome, Outcome::kOk);
  }
  for (int i = 0; i < 300; ++i) {
    PutValue(store_.get(), "f" + std::to_string(i), std::string(2000, 'f'));
    StoreStats stats = store_->GetStats();
    ASSERT_LE(stats.bytes, stats.capacity_bytes) << "after put " << i;
  }
  EXPECT_EQ(Lock(store_.get(), "held0").outcome, Outcome::kLocked) << "locked items stay";
}

// Regression: abandoned locks (crashed clients) must not pin memory: once the server-side lock
// age has passed, their items are evictable.
TEST_F(CapacityTest, AbandonedLocksBecomeEvictable) {
  for (int i = 0; i < 20; ++i) {
    const std::string id = "abandoned" + std::to_string(i);
    PutValue(store_.get(), id, std::string(3000, 'a'));
    ASSERT_EQ(Lock(store_.get(), id).outcome, Outcome::kOk);
  }
  clock_.AdvanceSeconds(121);
  for (int i = 0; i < 20; ++i)
    PutValue(store_.get(), "f" + std::to_string(i), std::string(3000, 'f'));
  std::vector<ItemRecord> evicted = listener_.evicted();
  ASSERT_FALSE(evicted.empty());
  EXPECT_EQ(evicted[0].id, "abandoned0");
  EXPECT_LE(store_->GetStats().bytes, store_->GetStats().capacity_bytes);
}

// Regression: when locked items fill the segment, the value just written used to be evicted by
// its own put (acknowledged, then lost).
TEST_F(CapacityTest, JustWrittenValueIsNeverItsOwnVictim) {
  for (int i = 0; i < 20; ++i) {
    const std::string id = "held" + std::to_string(i);
    PutValue(store_.get(), id, std::string(3000, 'h'));
    ASSERT_EQ(Lock(store_.get(), id).outcome, Outcome::kOk);
  }
  ASSERT_EQ(PutValue(store_.get(), "new", std::string(4000, 'n')), Outcome::kOk);
  EXPECT_EQ(GetValue(store_.get(), "new").outcome, Outcome::kOk);
  for (const ItemRecord& r : listener_.evicted()) EXPECT_NE(r.id, "new");
}

TEST_F(CapacityTest, ReplacingAValueRechargesIt) {
  PutValue(store_.get(), "s", std::string(4000, 'a'));
  const uint64_t big = store_->GetStats().bytes;
  PutValue(store_.get(), "s", "tiny");
  EXPECT_LT(store_->GetStats().bytes, big - 3900);
  EXPECT_EQ(store_->GetStats().items, 1u);
}

TEST_F(CapacityTest, RemovalFreesItsBytes) {
  PutValue(store_.get(), "s", std::string(4000, 'a'));
  WriteResult w;
  ASSERT_TRUE(store_->Remove("s", 0, &w).ok());
  EXPECT_EQ(store_->GetStats().bytes, 0u);
  EXPECT_EQ(store_->GetStats().items, 0u);
}

}  // namespace
}  // namespace sessionserver
