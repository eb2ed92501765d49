// A std::mutex with clang thread-safety annotations, and its scoped guard.
// Thread-safe by definition. Use GUARDED_BY(mu_) on the members a Mutex protects and write the
// lock order next to the locks wherever a thread may hold two.
#ifndef SESSIONSERVER_UTIL_MUTEX_H_
#define SESSIONSERVER_UTIL_MUTEX_H_

#include <condition_variable>
#include <mutex>

#include "util/thread_annotations.h"

namespace sessionserver {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// Condition variable used with a Mutex the caller holds (passed to each wait, as in Abseil, so
// the thread-safety analysis can check it).
class CondVar {
 public:
  // Waits until signalled or `timeout_us` of real time passed; may wake spuriously.
  // Only for background threads that idle between rounds: anything that must advance with
  // time reads a Clock, never the duration of this wait.
  void WaitFor(Mutex* mu, int64_t timeout_us) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait_for(lock, std::chrono::microseconds(timeout_us));
    lock.release();
  }
  // Waits until `done()` is true or `timeout_us` of real time passed, whatever the wake-ups in
  // between; returns done(). `done` runs with `mu` held (annotate it REQUIRES(mu)).
  template <typename Pred>
  bool WaitFor(Mutex* mu, int64_t timeout_us, Pred done) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool result = cv_.wait_for(lock, std::chrono::microseconds(timeout_us), done);
    lock.release();
    return result;
  }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_UTIL_MUTEX_H_
