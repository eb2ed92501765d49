// Unit tests for loadtest/session_state.h: a result counts as acknowledged only once the next
// request can see it, so the checker never blames a request for a result it could not have seen.
#include "loadtest/session_state.h"

#include <gtest/gtest.h>

#include <string>

#include "loadtest/checker.h"

namespace sessionserver::loadtest {
namespace {

// A clock that, whenever it is read, looks at the session's state as a request starting at that
// instant would: what that request would send.
class ObservingClock : public Clock {
 public:
  explicit ObservingClock(const SessionState* state) : state_(state) {}
  int64_t NowMicros() const override {
    seen_ = state_->Read();
    return now_ += 10;
  }
  const SessionState::View& seen() const { return seen_; }

 private:
  const SessionState* const state_;
  mutable SessionState::View seen_;
  mutable int64_t now_ = 1000;
};

// A read-only request of session 1 that starts at `start_us` with what `view` holds: with no
// cookie it finds nothing (the fleet starts a new session); with the cookie it finds `stored`.
void ReadWith(const SessionState::View& view, int64_t start_us, const Stamp& stored,
              ConsistencyChecker* checker) {
  const bool found = !view.cookie.empty();
  checker->OnRead(1, start_us, found, found ? stored : Stamp{}, /*for_write=*/false);
}

TEST(SessionStateTest, AWriteIsAcknowledgedOnlyOnceItsCookieIsVisible) {
  SessionState state;
  ObservingClock clock(&state);
  ConsistencyChecker checker;
  const Stamp written{0, 1};
  const int64_t ack =
      state.AcknowledgeCommit(1, 0, /*sent=*/"", /*next=*/"cookie-1", &written, clock, &checker);
  // When the acknowledgement time was read, the new cookie was already what a request sends.
  EXPECT_EQ(clock.seen().cookie, "cookie-1");
  EXPECT_EQ(clock.seen().incarnation, 0u);
  // So a request starting right after the acknowledgement finds the session: no stale read (the
  // old order, clock first, gave this request no cookie and the checker a false stale read).
  ReadWith(clock.seen(), ack + 1, written, &checker);
  const CheckerResults r = checker.Results();
  EXPECT_EQ(r.stale_reads, 0u) << (r.examples.empty() ? "" : r.examples[0]);
  EXPECT_EQ(r.lost_updates, 0u);
  EXPECT_EQ(state.Read().cookie, "cookie-1");
}

TEST(SessionStateTest, TheCheckerStillCatchesARealStaleRead) {
  // The same history with a request that really found nothing after the acknowledgement.
  SessionState state;
  ObservingClock clock(&state);
  ConsistencyChecker checker;
  const Stamp written{0, 1};
  const int64_t ack = state.AcknowledgeCommit(1, 0, "", "cookie-1", &written, clock, &checker);
  ReadWith(SessionState::View{}, ack + 1, written, &checker);
  EXPECT_EQ(checker.Results().stale_reads, 1u);
}

TEST(SessionStateTest, ASignOutIsAcknowledgedOnlyOnceTheNextIncarnationIsVisible) {
  SessionState state;
  ObservingClock clock(&state);
  ConsistencyChecker checker;
  const Stamp written{0, 1};
  state.AcknowledgeCommit(1, 0, "", "cookie-1", &written, clock, &checker);
  const int64_t ack =
      state.AcknowledgeSignOut(1, 0, "cookie-1", /*probe_without_cookie=*/false, clock, &checker);
  EXPECT_EQ(clock.seen().incarnation, 1u);
  EXPECT_EQ(clock.seen().cookie, "");
  // A write starting right after it begins incarnation 1: no resurrection of incarnation 0.
  checker.OnRead(1, ack + 1, /*found=*/false, Stamp{}, /*for_write=*/true);
  EXPECT_EQ(checker.Results().resurrected, 0u);
  // The signed-out cookie is probed once.
  uint32_t inc = 99;
  std::string cookie;
  ASSERT_TRUE(state.TakeProbe(&inc, &cookie));
  EXPECT_EQ(inc, 0u);
  EXPECT_EQ(cookie, "cookie-1");
  EXPECT_FALSE(state.TakeProbe(&inc, &cookie));
}

TEST(SessionStateTest, OnlyAnAnswerToTheCurrentCookieReplacesIt) {
  SessionState state;
  ObservingClock clock(&state);
  ConsistencyChecker checker;
  const Stamp first{0, 1};
  // Two first requests of a session, both sent without a cookie: the first answer wins, and the
  // second (an orphan session on the server) does not replace it.
  state.AcknowledgeCommit(1, 0, "", "cookie-a", &first, clock, &checker);
  state.AcknowledgeCommit(1, 0, "", "cookie-b", &first, clock, &checker);
  EXPECT_EQ(state.Read().cookie, "cookie-a");
  // An answer from the previous incarnation does not either.
  state.AcknowledgeSignOut(1, 0, "cookie-a", false, clock, &checker);
  state.AcknowledgeCommit(1, 0, "", "cookie-late", &first, clock, &checker);
  EXPECT_EQ(state.Read().cookie, "");
  EXPECT_EQ(state.Read().incarnation, 1u);
  // A sign-out of an incarnation already ended does not end the next one.
  const Stamp next{1, 1};
  state.AcknowledgeCommit(1, 1, "", "cookie-c", &next, clock, &checker);
  state.AcknowledgeSignOut(1, 0, "cookie-a", false, clock, &checker);
  EXPECT_EQ(state.Read().cookie, "cookie-c");
  EXPECT_EQ(state.Read().incarnation, 1u);
}

TEST(SessionStateTest, ASignOutWithoutACookieIsProbedOnlyWhenAskedTo) {
  SessionState fleet, redis;
  ObservingClock fleet_clock(&fleet), redis_clock(&redis);
  ConsistencyChecker checker;
  fleet.AcknowledgeSignOut(1, 0, "", /*probe_without_cookie=*/false, fleet_clock, &checker);
  redis.AcknowledgeSignOut(2, 0, "", /*probe_without_cookie=*/true, redis_clock, &checker);
  uint32_t inc;
  std::string cookie;
  EXPECT_FALSE(fleet.TakeProbe(&inc, &cookie));
  EXPECT_TRUE(redis.TakeProbe(&inc, &cookie));
}

}  // namespace
}  // namespace sessionserver::loadtest
