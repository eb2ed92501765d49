// Incremental reclamation of expired items, driven by a fake clock.
#include <gtest/gtest.h>

#include <string>

#include "tests/unit/store_test_util.h"

namespace sessionserver {
namespace {

TEST(ExpiryTest, ReclaimIsIncrementalAndBounded) {
  FakeClock clock;
  MemoryStoreOptions options;
  auto store = MustNewStore(options, &clock);
  for (int i = 0; i < 1000; ++i) PutValue(store.get(), "s" + std::to_string(i), "v", 1);
  EXPECT_EQ(store->ReclaimExpired(100), 0u) << "nothing has expired yet";
  clock.AdvanceMinutes(2);
  EXPECT_EQ(store->ReclaimExpired(100), 100u) << "never more than the budget";
  EXPECT_EQ(store->GetStats().items, 900u);
  size_t total = 100, rounds = 0;
  while (total < 1000 && rounds++ < 100) total += store->ReclaimExpired(100);
  EXPECT_EQ(total, 1000u);
  EXPECT_EQ(store->GetStats().items, 0u);
  EXPECT_EQ(store->GetStats().bytes, 0u);
  EXPECT_EQ(store->GetStats().expirations, 1000u);
}

TEST(ExpiryTest, ReclaimFindsShortTimeoutsBehindLongOnes) {
  FakeClock clock;
  MemoryStoreOptions options;
  auto store = MustNewStore(options, &clock);
  // The long-lived items are the least recently used, so a scan from the LRU end stops at them;
  // the bucket sweep must still find the short-lived ones.
  for (int i = 0; i < 200; ++i) PutValue(store.get(), "long" + std::to_string(i), "v", 60);
  clock.AdvanceSeconds(1);
  for (int i = 0; i < 200; ++i) PutValue(store.get(), "short" + std::to_string(i), "v", 1);
  clock.AdvanceMinutes(2);
  size_t total = 0;
  for (int round = 0; round < 1000 && total < 200; ++round) total += store->ReclaimExpired(50);
  EXPECT_EQ(total, 200u);
  EXPECT_EQ(store->GetStats().items, 200u);
  EXPECT_EQ(GetValue(store.get(), "long7").outcome, Outcome::kOk);
}

TEST(ExpiryTest, ExpiredItemIsNeverServedEvenBeforeReclaim) {
  FakeClock clock;
  auto store = MustNewStore(MemoryStoreOptions(), &clock);
  PutValue(store.get(), "s", "v", 1);
  clock.AdvanceMinutes(1);
  EXPECT_EQ(GetValue(store.get(), "s").outcome, Outcome::kNotFound);
  EXPECT_EQ(Lock(store.get(), "s").outcome, Outcome::kNotFound);
  WriteResult w;
  ASSERT_TRUE(store->Remove("s", 0, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kNotFound);
  EXPECT_EQ(store->GetStats().expirations, 1u);
}

TEST(ExpiryTest, PutOverAnExpiredItemCreatesAFreshOne) {
  FakeClock clock;
  MemoryStoreOptions options;
  options.max_lock_age_us = 0;  // no lock age limit: only the item's expiry can end the lock
  auto store = MustNewStore(options, &clock);
  PutValue(store.get(), "s", "old", 1);
  ReadResult lock = Lock(store.get(), "s");
  ASSERT_EQ(lock.outcome, Outcome::kOk);
  ASSERT_NE(lock.lock_cookie, 0);
  ASSERT_EQ(PutValue(store.get(), "s", "other", 1), Outcome::kLocked)
      << "before expiry the lock holds off a put without its cookie";
  clock.AdvanceMinutes(2);
  EXPECT_EQ(PutValue(store.get(), "s", "new", 20), Outcome::kOk)
      << "the expired item's lock must not block a new put";
  EXPECT_FALSE(store->IsLocked("s")) << "the fresh item does not inherit the old lock";
  ReadResult read = GetValue(store.get(), "s");
  EXPECT_EQ(read.outcome, Outcome::kOk);
  EXPECT_EQ(read.data, "new");
  EXPECT_EQ(read.timeout_minutes, 20);
  const StoreStats stats = store->GetStats();
  EXPECT_EQ(stats.expirations, 1u) << "the old item expired";
  EXPECT_EQ(stats.inserts, 2u) << "and the put created another";
  EXPECT_EQ(stats.updates, 0u);
}

}  // namespace
}  // namespace sessionserver
