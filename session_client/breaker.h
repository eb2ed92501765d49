// Breaker: the circuit breaker session_client keeps for each server. Internal to session_client/.
//
// Closed: Available() is true; each failure counts and a success resets the count. After
// `failures_to_open` consecutive failures it is open for `open_us`: Available() is false, so the
// client places no new session and sends no failover there (client.cc; the server that owns a
// session is still tried first). Once `open_us` has passed it is half-open: Available() is true
// again, and the first request sent (ClaimProbe) re-arms the cool-down, so that this one request
// probes the server while every other caller sees the breaker open. The probe's success closes
// the breaker; its failure opens it for another `open_us`.
//
// Times are microseconds of one clock of the caller's choosing (client.cc: MonotonicMicros),
// passed in: the breaker reads no clock, so tests drive it with plain numbers.
// Thread-safe: all methods may be called concurrently.
#ifndef SESSIONSERVER_SESSION_CLIENT_BREAKER_H_
#define SESSIONSERVER_SESSION_CLIENT_BREAKER_H_

#include <cstdint>

#include "util/mutex.h"

namespace sessionserver::client {

class Breaker {
 public:
  // REQUIRES: failures_to_open >= 1 and open_us >= 0 (SessionClient::Create checks the options).
  Breaker(int failures_to_open, int64_t open_us)
      : failures_to_open_(failures_to_open), open_us_(open_us) {}
  Breaker(const Breaker&) = delete;
  Breaker& operator=(const Breaker&) = delete;

  // Closed, or half-open (open for `open_us` or longer). Read-only: ranking candidates must not
  // use up the probe of a server no request is sent to.
  bool Available(int64_t now_us) const EXCLUDES(mu_);

  // Call just before sending a request. If half-open, this request is the probe: the breaker
  // stays open for everyone else for another `open_us` or until the probe's outcome is recorded.
  void ClaimProbe(int64_t now_us) EXCLUDES(mu_);

  // The server answered: closes the breaker.
  void Succeeded() EXCLUDES(mu_);

  // The server could not be reached: counts a failure; at `failures_to_open` in a row (or on a
  // failed probe) opens the breaker until now_us + open_us.
  void Failed(int64_t now_us) EXCLUDES(mu_);

 private:
  bool IsOpen() const REQUIRES(mu_) { return failures_ >= failures_to_open_; }

  const int failures_to_open_;
  const int64_t open_us_;
  mutable Mutex mu_;
  int failures_ GUARDED_BY(mu_) = 0;  // consecutive
  int64_t open_until_us_ GUARDED_BY(mu_) = 0;
};

}  // namespace sessionserver::client

#endif  // SESSIONSERVER_SESSION_CLIENT_BREAKER_H_
