#include "session_client/breaker.h"

namespace sessionserver::client {

bool Breaker::Available(int64_t now_us) const {
  MutexLock l(&mu_);
  return !IsOpen() || now_us >= open_until_us_;
}

void Breaker::ClaimProbe(int64_t now_us) {
  MutexLock l(&mu_);
  if (IsOpen() && now_us >= open_until_us_) open_until_us_ = now_us + open_us_;
}

void Breaker::Succeeded() {
  MutexLock l(&mu_);
  failures_ = 0;
}

void Breaker::Failed(int64_t now_us) {
  MutexLock l(&mu_);
  if (++failures_ >= failures_to_open_) open_until_us_ = now_us + open_us_;
}

}  // namespace sessionserver::client
