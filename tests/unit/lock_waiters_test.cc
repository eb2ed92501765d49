// LockWaiters (server/lock_waiters.h) with a lock table the test controls.
#include "server/lock_waiters.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace sessionserver {
namespace {

class LockWaitersTest : public ::testing::Test {
 protected:
  std::set<std::string> locked_;  // only touched by the test's thread, or under mu_ below
  Mutex mu_;
  LockWaiters waiters_{[this](std::string_view id) {
    MutexLock l(&mu_);
    return locked_.count(std::string(id)) > 0;
  }};
  void Lock(const std::string& id, bool locked) {
    MutexLock l(&mu_);
    if (locked) {
      locked_.insert(id);
    } else {
      locked_.erase(id);
    }
  }
};

TEST_F(LockWaitersTest, AWaiterOfAnUnlockedIdIsNotRegistered) {
  int woken = 0;
  EXPECT_EQ(waiters_.Add("a", [&] { ++woken; }), 0u);
  EXPECT_EQ(waiters_.size(), 0u);
  waiters_.Release("a");
  EXPECT_EQ(woken, 0);
}

TEST_F(LockWaitersTest, ReleaseWakesEveryWaiterOfThatIdOnce) {
  Lock("a", true);
  Lock("b", true);
  int a = 0, b = 0;
  EXPECT_NE(waiters_.Add("a", [&] { ++a; }), 0u);
  EXPECT_NE(waiters_.Add("a", [&] { ++a; }), 0u);
  EXPECT_NE(waiters_.Add("b", [&] { ++b; }), 0u);
  EXPECT_EQ(waiters_.size(), 3u);
  Lock("a", false);
  waiters_.Release("a");
  EXPECT_EQ(a, 2);
  EXPECT_EQ(b, 0);
  EXPECT_EQ(waiters_.size(), 1u);
  waiters_.Release("a");  // nobody left: nothing more
  EXPECT_EQ(a, 2);
}

TEST_F(LockWaitersTest, ARemovedWaiterIsNotWoken) {
  Lock("a", true);
  int first = 0, second = 0;
  const uint64_t token = waiters_.Add("a", [&] { ++first; });
  ASSERT_NE(waiters_.Add("a", [&] { ++second; }), 0u);
  waiters_.Remove("a", token);
  waiters_.Remove("a", token);  // twice: no-op
  EXPECT_EQ(waiters_.size(), 1u);
  waiters_.Release("a");
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
  EXPECT_EQ(waiters_.size(), 0u);
}

TEST_F(LockWaitersTest, NoWakeUpIsLostAgainstAConcurrentRelease) {
  // Each round: a waiter registers while another thread releases. Either Add sees the release
  // (returns 0) or the release wakes it; never neither.
  for (int round = 0; round < 2000; ++round) {
    const std::string id = "id" + std::to_string(round);
    Lock(id, true);
    std::atomic<int> woken{0};
    std::thread releaser([&] {
      Lock(id, false);
      waiters_.Release(id);
    });
    const uint64_t token = waiters_.Add(id, [&] { woken.fetch_add(1); });
    releaser.join();
    EXPECT_TRUE(token == 0 || woken.load() == 1) << "round " << round;
    EXPECT_EQ(waiters_.size(), 0u);
  }
}

}  // namespace
}  // namespace sessionserver
