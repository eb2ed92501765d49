// The replayer's state of one session (contract in session_state.h).
#include "loadtest/session_state.h"

#include <utility>

namespace sessionserver::loadtest {

SessionState::View SessionState::Read() const {
  MutexLock l(&mu_);
  return View{cookie_, incarnation_};
}

int64_t SessionState::AcknowledgeCommit(uint32_t session_no, uint32_t inc, const std::string& sent,
                                        const std::string& next, const Stamp* written,
                                        const Clock& clock, ConsistencyChecker* checker) {
  {
    MutexLock l(&mu_);
    if (incarnation_ == inc && cookie_ == sent) cookie_ = next;
  }
  const int64_t ack_us = clock.NowMicros();  // after the change is visible: see the header
  if (written != nullptr) checker->OnWriteAcked(session_no, ack_us, *written);
  return ack_us;
}

int64_t SessionState::AcknowledgeSignOut(uint32_t session_no, uint32_t inc, const std::string& sent,
                                         bool probe_without_cookie, const Clock& clock,
                                         ConsistencyChecker* checker) {
  {
    MutexLock l(&mu_);
    if (incarnation_ == inc) {
      signed_out_cookie_ = sent;
      probe_pending_ = probe_without_cookie || !sent.empty();
      cookie_.clear();
      ++incarnation_;
    }
  }
  const int64_t ack_us = clock.NowMicros();
  checker->OnSignOutAcked(session_no, inc, ack_us);
  return ack_us;
}

bool SessionState::TakeProbe(uint32_t* inc, std::string* cookie) {
  MutexLock l(&mu_);
  if (!probe_pending_) return false;
  probe_pending_ = false;
  *inc = incarnation_ - 1;
  *cookie = std::move(signed_out_cookie_);
  return true;
}

namespace {

class SteadyClock : public Clock {
 public:
  int64_t NowMicros() const override { return MonotonicMicros(); }
};

}  // namespace

const Clock& ReplayClock() {
  static const SteadyClock clock;
  return clock;
}

}  // namespace sessionserver::loadtest
