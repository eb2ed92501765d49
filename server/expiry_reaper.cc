#include "server/expiry_reaper.h"

namespace sessionserver {

ExpiryReaper::ExpiryReaper(SessionStore* store, int64_t interval_us, size_t budget)
    : store_(store), interval_us_(interval_us), budget_(budget) {}

ExpiryReaper::~ExpiryReaper() { Stop(); }

void ExpiryReaper::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ExpiryReaper::Stop() {
  {
    MutexLock l(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

void ExpiryReaper::Run() {
  while (true) {
    const bool busy = store_->ReclaimExpired(budget_) >= budget_;
    MutexLock l(&mu_);
    if (stopping_) return;
    if (!busy) cv_.WaitFor(&mu_, interval_us_);
    if (stopping_) return;
  }
}

}  // namespace sessionserver
