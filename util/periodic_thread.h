// PeriodicThread: a background thread that calls `tick` every `interval_us` of real time until
// stopped. `tick` returns true to run again at once (it has more work), false to wait the
// interval. Wake makes the next tick come at once instead of after the interval. Stop wakes the
// thread and joins it; a tick in progress finishes first.
//
// Thread-safe. Start once; Stop (or the destructor) joins.
#ifndef SESSIONSERVER_UTIL_PERIODIC_THREAD_H_
#define SESSIONSERVER_UTIL_PERIODIC_THREAD_H_

#include <cstdint>
#include <functional>
#include <thread>

#include "util/mutex.h"

namespace sessionserver {

class PeriodicThread {
 public:
  PeriodicThread(int64_t interval_us, std::function<bool()> tick)
      : interval_us_(interval_us), tick_(std::move(tick)) {}
  ~PeriodicThread() { Stop(); }
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Wake() EXCLUDES(mu_) {
    MutexLock l(&mu_);
    woken_ = true;
    cv_.SignalAll();
  }
  void Stop() EXCLUDES(mu_) {
    {
      MutexLock l(&mu_);
      stopping_ = true;
      cv_.SignalAll();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() EXCLUDES(mu_) {
    while (true) {
      const bool again = tick_();
      MutexLock l(&mu_);
      if (!again && !stopping_ && !woken_) {
        cv_.WaitFor(&mu_, interval_us_, [&]() REQUIRES(mu_) { return stopping_ || woken_; });
      }
      woken_ = false;
      if (stopping_) return;
    }
  }

  const int64_t interval_us_;
  const std::function<bool()> tick_;
  std::thread thread_;
  Mutex mu_;
  CondVar cv_;
  bool stopping_ GUARDED_BY(mu_) = false;
  bool woken_ GUARDED_BY(mu_) = false;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_UTIL_PERIODIC_THREAD_H_
