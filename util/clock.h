// Clock: the only way code in this project reads the time, so that expiry, lock age and
// versioning are tested by moving a fake clock instead of sleeping.
//
// Times are microseconds since the Unix epoch (wall clock), because they leave the process:
// expiry deadlines and versions are compared across restarts and across servers.
// All implementations are thread-safe.
#ifndef SESSIONSERVER_UTIL_CLOCK_H_
#define SESSIONSERVER_UTIL_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace sessionserver {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMicros() const = 0;
};

// The process-wide real clock. Never deleted; safe to use from any thread.
Clock* SystemClock();

// Microseconds of a monotonic clock, for bounding real-time waits of background threads (flush
// timeouts, backoff) only: never stored, never compared with Clock time.
int64_t MonotonicMicros();

// A clock that only moves when told to. For tests.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_micros = 1'700'000'000'000'000) : now_(start_micros) {}
  int64_t NowMicros() const override { return now_.load(std::memory_order_relaxed); }
  void AdvanceMicros(int64_t delta) { now_.fetch_add(delta, std::memory_order_relaxed); }
  void AdvanceSeconds(int64_t s) { AdvanceMicros(s * 1'000'000); }
  void AdvanceMinutes(int64_t m) { AdvanceSeconds(m * 60); }

 private:
  std::atomic<int64_t> now_;
};

// A base clock plus an offset that only grows. The server uses it behind
// --enable_debug_clock so black-box tests can move a real server's time forward
// (as memcached's debug time command does). Does not own `base`.
class OffsetClock : public Clock {
 public:
  explicit OffsetClock(const Clock* base) : base_(base) {}
  int64_t NowMicros() const override {
    return base_->NowMicros() + offset_.load(std::memory_order_relaxed);
  }
  // REQUIRES: delta >= 0 (time never goes backwards through this interface).
  void AdvanceMicros(int64_t delta) { offset_.fetch_add(delta, std::memory_order_relaxed); }

 private:
  const Clock* const base_;
  std::atomic<int64_t> offset_{0};
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_UTIL_CLOCK_H_
