// SessionState: what the replayer knows of one trace session, shared by the workers that replay
// its requests: the cookie the next request sends (fleet targets), the incarnation (bumped by
// each sign-out), and the previous incarnation's cookie until a probe has checked that it stays
// signed out.
//
// The acknowledgement rule. The checker (checker.h) holds a request to every result acknowledged
// before it started, so a result may be reported as acknowledged only once the next request can
// see it: once the cookie it produced, or the incarnation a sign-out started, is what the next
// request reads from here. Acknowledge*() therefore publish the change first, then read the clock,
// then tell the checker, and return that time. A target must report to the checker only through
// them (reading the clock when the answer arrives and publishing afterwards lets a request start
// in between with the old cookie and be blamed for a stale read that did not happen).
//
// Thread-safe. The clock must be monotonic and shared by every worker of a replay (start times
// and acknowledgement times are compared); it is read without the state's lock held.
#ifndef SESSIONSERVER_LOADTEST_SESSION_STATE_H_
#define SESSIONSERVER_LOADTEST_SESSION_STATE_H_

#include <cstdint>
#include <string>

#include "loadtest/checker.h"
#include "util/clock.h"
#include "util/mutex.h"

namespace sessionserver::loadtest {

class SessionState {
 public:
  // What the next request of the session sends.
  struct View {
    std::string cookie;  // empty: no session stored yet (or signed out)
    uint32_t incarnation = 0;
  };
  View Read() const EXCLUDES(mu_);

  // A write (or a read that found the session) carrying `sent` in incarnation `inc` was answered
  // with cookie `next`. As a browser would, but without its race: the cookie is replaced only if
  // the state still is (`inc`, `sent`), so of two first requests of a session the one that
  // started an orphan session does not win. Then, for writes (`written` non-null), reports the
  // write to the checker. Returns the acknowledgement time.
  int64_t AcknowledgeCommit(uint32_t session_no, uint32_t inc, const std::string& sent,
                            const std::string& next, const Stamp* written, const Clock& clock,
                            ConsistencyChecker* checker) EXCLUDES(mu_);

  // A sign-out of incarnation `inc`, whose request carried `sent`, was answered: the next
  // incarnation starts with no cookie, and the next request probes `sent` once (if non-empty, or
  // if `probe_without_cookie`: targets that find a session by its number). Then reports the
  // sign-out to the checker. Returns the acknowledgement time.
  int64_t AcknowledgeSignOut(uint32_t session_no, uint32_t inc, const std::string& sent,
                             bool probe_without_cookie, const Clock& clock,
                             ConsistencyChecker* checker) EXCLUDES(mu_);

  // Takes the pending resurrection probe, if any: the incarnation signed out and its cookie.
  bool TakeProbe(uint32_t* inc, std::string* cookie) EXCLUDES(mu_);

 private:
  mutable Mutex mu_;
  std::string cookie_ GUARDED_BY(mu_);
  uint32_t incarnation_ GUARDED_BY(mu_) = 0;
  bool probe_pending_ GUARDED_BY(mu_) = false;
  std::string signed_out_cookie_ GUARDED_BY(mu_);
};

// The steady clock in microseconds, as a Clock: what a replay measures with. Not the wall clock
// (util/clock.h's SystemClock); only differences and orderings of its readings mean anything.
const Clock& ReplayClock();

}  // namespace sessionserver::loadtest

#endif  // SESSIONSERVER_LOADTEST_SESSION_STATE_H_
