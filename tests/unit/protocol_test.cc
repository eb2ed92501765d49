// Every rule of ../shared/SESSION-PROTOCOL.md, against the memory store with a fake clock.
#include <gtest/gtest.h>

#include "storage/limits.h"
#include "tests/unit/store_test_util.h"

namespace sessionserver {
namespace {

class ProtocolTest : public ::testing::Test {
 protected:
  ProtocolTest() { store_ = MustNewStore(options_, &clock_); }
  SessionStore* store() { return store_.get(); }

  MemoryStoreOptions options_;
  FakeClock clock_;
  std::unique_ptr<SessionStore> store_;
};

TEST_F(ProtocolTest, GetMissingIsNotFound) {
  EXPECT_EQ(GetValue(store(), "nope").outcome, Outcome::kNotFound);
  EXPECT_EQ(Lock(store(), "nope").outcome, Outcome::kNotFound);
}

TEST_F(ProtocolTest, PutThenGetReturnsDataTimeoutAndVersion) {
  ASSERT_EQ(PutValue(store(), "s1", "hello", 30), Outcome::kOk);
  ReadResult r = GetValue(store(), "s1");
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.data, "hello");
  EXPECT_EQ(r.timeout_minutes, 30);
  EXPECT_GT(r.version, 0u);
  EXPECT_FALSE(r.initialize_item);
  EXPECT_EQ(r.lock_cookie, 0);
}

TEST_F(ProtocolTest, GetExclusiveLocksAndSecondLockSeesHolderCookieAndAge) {
  PutValue(store(), "s", "v");
  ReadResult first = Lock(store(), "s");
  ASSERT_EQ(first.outcome, Outcome::kOk);
  EXPECT_EQ(first.data, "v");
  EXPECT_NE(first.lock_cookie, 0);

  clock_.AdvanceMicros(1'500'000);
  ReadResult second = Lock(store(), "s");
  EXPECT_EQ(second.outcome, Outcome::kLocked);
  EXPECT_EQ(second.lock_cookie, first.lock_cookie);
  EXPECT_EQ(second.lock_age_ms, 1500);
  EXPECT_TRUE(second.data.empty());
}

TEST_F(ProtocolTest, GetOnLockedItemIsLockedAndDoesNotTakeTheLock) {
  PutValue(store(), "s", "v");
  ReadResult held = Lock(store(), "s");
  ReadResult r = GetValue(store(), "s");
  EXPECT_EQ(r.outcome, Outcome::kLocked);
  EXPECT_EQ(r.lock_cookie, held.lock_cookie);
  // Get on an unlocked item never locks it.
  PutValue(store(), "t", "v");
  EXPECT_EQ(GetValue(store(), "t").outcome, Outcome::kOk);
  EXPECT_EQ(Lock(store(), "t").outcome, Outcome::kOk);
}

TEST_F(ProtocolTest, PutOnLockedItemNeedsTheHoldersCookie) {
  PutValue(store(), "s", "old");
  ReadResult held = Lock(store(), "s");
  EXPECT_EQ(PutValue(store(), "s", "no-cookie", 20, 0), Outcome::kLocked);
  EXPECT_EQ(PutValue(store(), "s", "wrong", 20, held.lock_cookie + 1), Outcome::kLocked);
  WriteResult w;
  ASSERT_TRUE(store()->Put("s", "x", 20, 999, false, &w).ok());
  EXPECT_EQ(w.lock_cookie, held.lock_cookie);  // LOCKED carries the holder's cookie
  ASSERT_EQ(PutValue(store(), "s", "new", 20, held.lock_cookie), Outcome::kOk);
  EXPECT_EQ(GetValue(store(), "s").data, "new");
}

TEST_F(ProtocolTest, PutReleasesTheLockAndCookiesKeepIncreasing) {
  PutValue(store(), "s", "v");
  ReadResult a = Lock(store(), "s");
  ASSERT_EQ(PutValue(store(), "s", "v2", 20, a.lock_cookie), Outcome::kOk);
  ReadResult b = Lock(store(), "s");
  ASSERT_EQ(b.outcome, Outcome::kOk);
  EXPECT_EQ(b.data, "v2");
  EXPECT_GT(b.lock_cookie, a.lock_cookie);
}

TEST_F(ProtocolTest, ReleaseExclusiveRules) {
  WriteResult w;
  ASSERT_TRUE(store()->ReleaseExclusive("missing", 1, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kNotFound);

  PutValue(store(), "s", "v");
  ASSERT_TRUE(store()->ReleaseExclusive("s", 12345, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kOk) << "releasing an unlocked item is OK";

  ReadResult held = Lock(store(), "s");
  ASSERT_TRUE(store()->ReleaseExclusive("s", held.lock_cookie + 7, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kLocked);
  EXPECT_EQ(w.lock_cookie, held.lock_cookie);
  EXPECT_EQ(Lock(store(), "s").outcome, Outcome::kLocked) << "wrong cookie must not unlock";

  ASSERT_TRUE(store()->ReleaseExclusive("s", held.lock_cookie, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kOk);
  EXPECT_EQ(Lock(store(), "s").outcome, Outcome::kOk);
}

TEST_F(ProtocolTest, RemoveRules) {
  WriteResult w;
  ASSERT_TRUE(store()->Remove("missing", 0, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kNotFound);

  PutValue(store(), "s", "v");
  ReadResult held = Lock(store(), "s");
  ASSERT_TRUE(store()->Remove("s", 0, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kLocked);
  ASSERT_TRUE(store()->Remove("s", held.lock_cookie + 1, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kLocked);
  EXPECT_EQ(GetValue(store(), "s").outcome, Outcome::kLocked) << "still there";

  ASSERT_TRUE(store()->Remove("s", held.lock_cookie, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kOk);
  EXPECT_EQ(GetValue(store(), "s").outcome, Outcome::kNotFound);

  PutValue(store(), "u", "v");
  ASSERT_TRUE(store()->Remove("u", 0, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kOk) << "an unlocked item is removed without a cookie";
}

TEST_F(ProtocolTest, ExpiryIsSlidingAndEveryAccessRestartsIt) {
  PutValue(store(), "s", "v", 1);
  for (int i = 0; i < 5; ++i) {
    clock_.AdvanceSeconds(59);
    ASSERT_EQ(GetValue(store(), "s").outcome, Outcome::kOk) << "round " << i;
  }
  clock_.AdvanceSeconds(60);
  EXPECT_EQ(GetValue(store(), "s").outcome, Outcome::kNotFound);
}

TEST_F(ProtocolTest, ExpiresExactlyAtTimeoutAfterLastAccess) {
  PutValue(store(), "s", "v", 2);
  clock_.AdvanceMicros(2 * 60'000'000 - 1);
  EXPECT_EQ(GetValue(store(), "s").outcome, Outcome::kOk);
  clock_.AdvanceMicros(2 * 60'000'000);
  EXPECT_EQ(GetValue(store(), "s").outcome, Outcome::kNotFound);
}

TEST_F(ProtocolTest, ResetTimeoutExtendsLifeAndWorksOnLockedItems) {
  WriteResult w;
  ASSERT_TRUE(store()->ResetTimeout("missing", &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kNotFound);

  PutValue(store(), "s", "v", 20);
  Lock(store(), "s");
  clock_.AdvanceMinutes(19);
  ASSERT_TRUE(store()->ResetTimeout("s", &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kOk);
  clock_.AdvanceMinutes(19);
  ASSERT_TRUE(store()->ResetTimeout("s", &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kOk) << "38 minutes after the put, still alive";
  clock_.AdvanceMinutes(20);
  ASSERT_TRUE(store()->ResetTimeout("s", &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kNotFound);
}

TEST_F(ProtocolTest, LockedAnswersDoNotExtendLife) {
  PutValue(store(), "s", "v", 1);
  Lock(store(), "s");
  clock_.AdvanceSeconds(50);
  EXPECT_EQ(GetValue(store(), "s").outcome, Outcome::kLocked);
  clock_.AdvanceSeconds(11);
  EXPECT_EQ(GetValue(store(), "s").outcome, Outcome::kNotFound)
      << "a lock never keeps data past its timeout";
}

TEST_F(ProtocolTest, UninitializedItemIsReportedExactlyOnce) {
  WriteResult w;
  ASSERT_TRUE(store()->Put("s", "", 20, 0, /*create_uninitialized=*/true, &w).ok());
  ASSERT_EQ(w.outcome, Outcome::kOk);
  ReadResult first = Lock(store(), "s");
  EXPECT_EQ(first.outcome, Outcome::kOk);
  EXPECT_TRUE(first.initialize_item);
  ASSERT_EQ(PutValue(store(), "s", "data", 20, first.lock_cookie), Outcome::kOk);
  EXPECT_FALSE(GetValue(store(), "s").initialize_item);
  EXPECT_FALSE(Lock(store(), "s").initialize_item);
}

TEST_F(ProtocolTest, PlainGetAlsoClearsTheUninitializedFlag) {
  WriteResult w;
  ASSERT_TRUE(store()->Put("s", "", 20, 0, true, &w).ok());
  EXPECT_TRUE(GetValue(store(), "s").initialize_item);
  EXPECT_FALSE(GetValue(store(), "s").initialize_item);
}

TEST_F(ProtocolTest, CreateUninitializedIsIgnoredWhenTheItemExists) {
  PutValue(store(), "s", "precious");
  ReadResult before = GetValue(store(), "s");
  WriteResult w;
  ASSERT_TRUE(store()->Put("s", "", 5, 0, true, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kOk);
  ReadResult after = GetValue(store(), "s");
  EXPECT_EQ(after.data, "precious");
  EXPECT_EQ(after.timeout_minutes, 20);
  EXPECT_FALSE(after.initialize_item);
  EXPECT_EQ(after.version, before.version);
  // ... even while another request holds the lock.
  ReadResult held = Lock(store(), "s");
  ASSERT_TRUE(store()->Put("s", "", 5, 0, true, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kOk);
  EXPECT_EQ(Lock(store(), "s").lock_cookie, held.lock_cookie) << "still locked by the holder";
}

TEST_F(ProtocolTest, ServerDropsLocksOlderThanTheLimit) {
  PutValue(store(), "s", "v");
  ReadResult held = Lock(store(), "s");
  clock_.AdvanceSeconds(119);
  EXPECT_EQ(Lock(store(), "s").outcome, Outcome::kLocked);
  clock_.AdvanceSeconds(1);
  ReadResult next = Lock(store(), "s");
  ASSERT_EQ(next.outcome, Outcome::kOk) << "a 120 s old lock is dropped";
  EXPECT_GT(next.lock_cookie, held.lock_cookie);
  EXPECT_EQ(PutValue(store(), "s", "late", 20, held.lock_cookie), Outcome::kLocked)
      << "the old holder's cookie no longer works";
  EXPECT_EQ(store()->GetStats().locks_expired, 1u);
}

TEST(ProtocolLockLimitTest, ZeroDisablesTheServerSideLockLimit) {
  FakeClock clock;
  MemoryStoreOptions options;
  options.max_lock_age_us = 0;
  auto store = MustNewStore(options, &clock);
  PutValue(store.get(), "s", "v", 600);
  Lock(store.get(), "s");
  clock.AdvanceMinutes(300);
  EXPECT_EQ(Lock(store.get(), "s").outcome, Outcome::kLocked);
}

TEST_F(ProtocolTest, VersionGrowsWithChangesOnlyAndNeverGoesBack) {
  PutValue(store(), "s", "a");
  const uint64_t v1 = GetValue(store(), "s").version;
  ReadResult held = Lock(store(), "s");
  EXPECT_EQ(held.version, v1) << "locking is not a change of stored state";
  WriteResult w;
  ASSERT_TRUE(store()->ReleaseExclusive("s", held.lock_cookie, &w).ok());
  ASSERT_TRUE(store()->ResetTimeout("s", &w).ok());
  EXPECT_EQ(GetValue(store(), "s").version, v1);

  PutValue(store(), "s", "b");
  const uint64_t v2 = GetValue(store(), "s").version;
  EXPECT_GT(v2, v1);

  // Same clock reading, removal and re-creation: still greater.
  ASSERT_TRUE(store()->Remove("s", 0, &w).ok());
  PutValue(store(), "s", "c");
  EXPECT_GT(GetValue(store(), "s").version, v2);
}

TEST_F(ProtocolTest, RecreatedItemNeverReissuesAnOldCookie) {
  PutValue(store(), "s", "v");
  ReadResult old_lock = Lock(store(), "s");
  WriteResult w;
  ASSERT_TRUE(store()->Remove("s", old_lock.lock_cookie, &w).ok());
  PutValue(store(), "s", "v");
  ReadResult new_lock = Lock(store(), "s");
  ASSERT_EQ(new_lock.outcome, Outcome::kOk);
  EXPECT_NE(new_lock.lock_cookie, old_lock.lock_cookie);
  ASSERT_TRUE(store()->ReleaseExclusive("s", old_lock.lock_cookie, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kLocked) << "a stale cookie must not release the new lock";
}

TEST_F(ProtocolTest, PutWithoutACookieOnAMissingItemCreatesIt) {
  EXPECT_EQ(PutValue(store(), "s", "v", 20, 0), Outcome::kOk);
  EXPECT_EQ(GetValue(store(), "s").data, "v");
}

// Regression: a request whose lock the server dropped by age must not overwrite the save of the
// request that locked the item after it (last-writer-wins loss).
TEST_F(ProtocolTest, StaleHolderCannotOverwriteANewerSave) {
  PutValue(store(), "s", "v0");
  ReadResult a = Lock(store(), "s");
  clock_.AdvanceSeconds(130);  // A's lock is dropped at 120 s
  ReadResult b = Lock(store(), "s");
  ASSERT_EQ(b.outcome, Outcome::kOk);
  ASSERT_EQ(PutValue(store(), "s", "from-b", 20, b.lock_cookie), Outcome::kOk);
  WriteResult w;
  ASSERT_TRUE(store()->Put("s", "from-a", 20, a.lock_cookie, false, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kLocked);
  EXPECT_EQ(w.lock_cookie, b.lock_cookie) << "reports the latest cookie";
  EXPECT_EQ(w.lock_age_ms, 0) << "the item is not locked now";
  EXPECT_EQ(GetValue(store(), "s").data, "from-b");
}

TEST_F(ProtocolTest, HolderWhoseLockWasDroppedMaySaveIfNobodyLockedSince) {
  PutValue(store(), "s", "v0");
  ReadResult a = Lock(store(), "s");
  clock_.AdvanceSeconds(130);
  EXPECT_EQ(GetValue(store(), "s").outcome, Outcome::kOk) << "lock dropped";
  EXPECT_EQ(PutValue(store(), "s", "from-a", 20, a.lock_cookie), Outcome::kOk);
  EXPECT_EQ(GetValue(store(), "s").data, "from-a");
}

// Regression: sign-out (remove with the holder's cookie from a LOCKED reply) followed by the
// in-flight request's save must leave the session removed.
TEST_F(ProtocolTest, SaveAfterRemovalDoesNotResurrectTheSession) {
  PutValue(store(), "s", "cart");
  ReadResult a = Lock(store(), "s");
  WriteResult w;
  ASSERT_TRUE(store()->Remove("s", a.lock_cookie, &w).ok());
  ASSERT_EQ(w.outcome, Outcome::kOk);
  ASSERT_TRUE(store()->Put("s", "cart+1", 20, a.lock_cookie, false, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kNotFound);
  EXPECT_EQ(GetValue(store(), "s").outcome, Outcome::kNotFound);
  EXPECT_EQ(store()->GetStats().items, 0u);
}

TEST_F(ProtocolTest, CreateUninitializedOnAnExistingItemRestartsItsTimeout) {
  PutValue(store(), "s", "v", 1);
  clock_.AdvanceSeconds(50);
  WriteResult w;
  ASSERT_TRUE(store()->Put("s", "", 1, 0, true, &w).ok());
  clock_.AdvanceSeconds(50);
  EXPECT_EQ(GetValue(store(), "s").outcome, Outcome::kOk);
}

TEST_F(ProtocolTest, BinaryValuesRoundTrip) {
  std::string value("\0\x01\xff\x7f zero", 9);
  PutValue(store(), "bin", value);
  EXPECT_EQ(GetValue(store(), "bin").data, value);
}

}  // namespace
}  // namespace sessionserver
