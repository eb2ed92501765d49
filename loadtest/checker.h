// ConsistencyChecker: catches lost updates, stale reads and resurrected sessions during a replay.
//
// Every write stores, in the session's value, the session's incarnation (bumped by each
// sign-out) and a counter: a writing request reads the counter under the session's lock and
// writes counter + 1. So the values a session takes are (inc, 1), (inc, 2), ... and:
//   - lost update: a writing request read (inc, c) although (inc, c') with c' > c had been
//     acknowledged before the request started: its write will overwrite an acknowledged one.
//     (Also: a write acknowledged with the same counter as an earlier acknowledged write of its
//     incarnation, counter 1 aside: two writers read the same counter. A lower counter
//     acknowledged later is judged by its writer's read, since the acknowledgements of two
//     back-to-back writes can reach the replayer in either order.)
//   - stale read: a read-only request saw (inc, c), or nothing, although (inc, c') with c' > c
//     had been acknowledged before it started.
//   - resurrected: a request saw data of an incarnation whose sign-out (or a later
//     incarnation's) was acknowledged before it started.
// Times are the replayer's monotonic clock; "before it started" compares the acknowledgement
// time with the request's start time, so requests that overlap are never blamed. The
// acknowledgement time is when the next request can see the result, not when the answer
// arrived (the replayer publishes the cookie first: session_state.h). A sign-out's
// start is not known, so a request that found nothing while the incarnation was live stays a
// suspect: counted by Results() until a sign-out of that incarnation (which it may have
// overlapped) is acknowledged, which clears it.
//
// Thread-safe: all methods may be called from any thread.
#ifndef SESSIONSERVER_LOADTEST_CHECKER_H_
#define SESSIONSERVER_LOADTEST_CHECKER_H_

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "util/mutex.h"

namespace sessionserver::loadtest {

// What a session's value carries for the checker. Encoded at the start of the value.
struct Stamp {
  uint32_t incarnation = 0;
  uint64_t counter = 0;
};

// Writes `stamp` followed by filler up to `total_bytes` (at least the stamp's size).
std::string EncodeValue(const Stamp& stamp, size_t total_bytes);
// False if `value` does not start with a stamp.
bool DecodeStamp(const std::string& value, Stamp* stamp);

struct CheckerResults {
  uint64_t lost_updates = 0;
  uint64_t stale_reads = 0;
  uint64_t resurrected = 0;
  std::vector<std::string> examples;  // the first few anomalies, described
};

class ConsistencyChecker {
 public:
  // A request on `session` that started at `start_us` found `found` (and then `seen`).
  // `for_write`: it holds the lock and will write seen.counter + 1.
  void OnRead(uint32_t session, int64_t start_us, bool found, const Stamp& seen, bool for_write);
  // A write of `written` was acknowledged at `ack_us`.
  void OnWriteAcked(uint32_t session, int64_t ack_us, const Stamp& written);
  // A sign-out of `incarnation` was acknowledged at `ack_us`.
  void OnSignOutAcked(uint32_t session, uint32_t incarnation, int64_t ack_us);

  CheckerResults Results() const;

  static constexpr size_t kMaxExamples = 10;

 private:
  struct Ack {
    int64_t at_us;
    Stamp stamp;
  };
  // The acknowledged writes of one incarnation, by acknowledgement time, with for each the
  // position of the highest counter up to it (so "highest counter acknowledged before t" is a
  // binary search).
  struct Incarnation {
    std::vector<Ack> writes;
    std::vector<size_t> best;                        // best[i]: argmax counter in writes[0..i]
    std::unordered_map<uint64_t, int64_t> acked_at;  // counter -> first acknowledgement time
  };
  // A request that found nothing although a live incarnation had acknowledged writes: blamed
  // unless a sign-out of that incarnation (which it may have overlapped) is acknowledged.
  struct Suspect {
    uint32_t session;
    int64_t start_us;
    bool for_write;
    Ack latest;  // the highest acknowledged write before start_us
  };
  struct SessionState {
    std::map<uint32_t, Incarnation> incarnations;
    std::vector<std::pair<uint32_t, int64_t>> ends;  // (incarnation, ack time) of sign-outs
    std::vector<Stamp> preblamed;  // writes whose read was already counted as a lost update
  };
  // The highest acknowledged write of `inc` acknowledged before `before_us`, if any.
  static const Ack* LatestBefore(const SessionState& s, uint32_t inc, int64_t before_us);
  // The earliest acknowledged sign-out ending `inc` (of `inc` or a later incarnation) before
  // `before_us`, if any.
  static const std::pair<uint32_t, int64_t>* EndedBefore(const SessionState& s, uint32_t inc,
                                                         int64_t before_us);
  void Report(uint64_t* counter, std::string what) REQUIRES(mu_);

  mutable Mutex mu_;
  std::unordered_map<uint32_t, SessionState> sessions_ GUARDED_BY(mu_);
  CheckerResults results_ GUARDED_BY(mu_);  // the anomalies found for sure
  std::vector<Suspect> suspects_ GUARDED_BY(mu_);
};

}  // namespace sessionserver::loadtest

#endif  // SESSIONSERVER_LOADTEST_CHECKER_H_
