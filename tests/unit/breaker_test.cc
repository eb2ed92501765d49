// The client's circuit breaker (session_client/breaker.h), driven with plain times: no sleeping.
#include "session_client/breaker.h"

#include <gtest/gtest.h>

namespace sessionserver::client {
namespace {

constexpr int64_t kT = 1'000'000'000;  // any start time, in microseconds
constexpr int64_t kOpenUs = 2'000'000;

class BreakerTest : public ::testing::Test {
 protected:
  // Opens the breaker with three failures at kT.
  void Open() {
    for (int i = 0; i < 3; ++i) breaker_.Failed(kT);
    ASSERT_FALSE(breaker_.Available(kT));
  }
  // Opens it, then sends the probe as soon as it is half-open; returns the probe's time.
  int64_t OpenThenProbe() {
    Open();
    breaker_.ClaimProbe(kT + kOpenUs);
    return kT + kOpenUs;
  }

  Breaker breaker_{3, kOpenUs};
};

TEST_F(BreakerTest, OpensAfterTheConfiguredFailuresInARow) {
  EXPECT_TRUE(breaker_.Available(kT));
  breaker_.Failed(kT);
  breaker_.Failed(kT);
  EXPECT_TRUE(breaker_.Available(kT)) << "two failures of three";
  breaker_.Succeeded();
  breaker_.Failed(kT);
  breaker_.Failed(kT);
  EXPECT_TRUE(breaker_.Available(kT)) << "a success restarts the count";
  breaker_.Failed(kT);
  EXPECT_FALSE(breaker_.Available(kT)) << "the third failure in a row opens it";
}

TEST(BreakerOptionsTest, OneFailureOpensItWhenConfiguredSo) {
  Breaker b(1, kOpenUs);
  b.Failed(kT);
  EXPECT_FALSE(b.Available(kT));
}

TEST_F(BreakerTest, StaysOpenForTheCoolDownThenHalfOpens) {
  Open();
  breaker_.ClaimProbe(kT + kOpenUs - 1);  // a request sent anyway (to a session's owner): no probe
  EXPECT_FALSE(breaker_.Available(kT + kOpenUs - 1));
  EXPECT_TRUE(breaker_.Available(kT + kOpenUs)) << "half-open once the cool-down has passed";
  EXPECT_TRUE(breaker_.Available(kT + kOpenUs)) << "looking does not use up the probe";
}

TEST_F(BreakerTest, HalfOpenLetsOneProbeThrough) {
  const int64_t probe = OpenThenProbe();
  EXPECT_FALSE(breaker_.Available(probe)) << "everyone else waits for the probe";
  EXPECT_FALSE(breaker_.Available(probe + kOpenUs - 1));
  EXPECT_TRUE(breaker_.Available(probe + kOpenUs)) << "a probe that never answered: another one";
}

TEST_F(BreakerTest, AFailedProbeOpensItAgain) {
  const int64_t failed = OpenThenProbe() + 100;
  breaker_.Failed(failed);
  EXPECT_FALSE(breaker_.Available(failed + kOpenUs - 1));
  EXPECT_TRUE(breaker_.Available(failed + kOpenUs));
}

TEST_F(BreakerTest, ASuccessfulProbeClosesIt) {
  const int64_t probe = OpenThenProbe();
  breaker_.Succeeded();
  EXPECT_TRUE(breaker_.Available(probe)) << "closed at once, not at the end of the probe's wait";
  breaker_.Failed(probe);
  breaker_.Failed(probe);
  EXPECT_TRUE(breaker_.Available(probe)) << "closed: it takes three failures in a row again";
  breaker_.Failed(probe);
  EXPECT_FALSE(breaker_.Available(probe));
}

}  // namespace
}  // namespace sessionserver::client
