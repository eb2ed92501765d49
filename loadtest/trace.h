// Session traffic traces: a parametric model of web sessions, a deterministic generator, and a
// compact file format (docs/TRACE_FORMAT.md). `session_loadtest generate` writes them and
// `session_loadtest replay` plays them against a target.
//
// Thread-compatible: plain data and free functions.
#ifndef SESSIONSERVER_LOADTEST_TRACE_H_
#define SESSIONSERVER_LOADTEST_TRACE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace sessionserver::loadtest {

// The traffic model. Defaults follow Ctrip's published figures for its SessionServer (sessions of
// about 20 minutes, Ajax calls outnumbering page views several to one, millions of users online)
// scaled down by `scale` so that a run fits this machine; `scale` = 1 is the full-size site.
struct TraceModel {
  double scale = 0.0001;                         // fraction of the full-size site's traffic
  double full_session_arrivals_per_s = 500'000;  // new sessions per second at scale 1
  double duration_s = 60;            // trace length (requests arrive during this window)
  double requests_per_session = 30;  // mean; geometric
  double think_time_s = 40;          // mean gap between a session's requests; exponential
  double ajax_per_page = 4;          // each page view is followed by this many Ajax calls (mean)
  double ajax_gap_ms = 50;           // mean gap between a page and its Ajax calls
  double write_share = 0.2;          // share of requests that write (the rest read)
  double signout_share = 0.1;        // share of sessions that end with a sign-out
  // Values: log-normal with median `value_median_bytes` (typical 1-5 KB), and a heavy tail: a
  // share `large_share` of writes is Pareto-distributed up to `value_max_bytes`.
  double value_median_bytes = 2048;
  double value_sigma = 0.6;
  double large_share = 0.01;
  double value_max_bytes = 1 << 20;
  // Hot subset: this share of requests goes to `hot_sessions` sessions picked at random.
  double hot_share = 0.1;
  uint32_t hot_sessions = 20;
  uint64_t seed = 1;
};

struct TraceOp {
  enum class Kind : uint8_t { kRead = 0, kWrite = 1, kSignOut = 2 };
  uint64_t at_us = 0;    // intended start, from the trace's start
  uint32_t session = 0;  // trace-local session number, 0-based
  Kind kind = Kind::kRead;
  uint32_t value_bytes = 0;  // kWrite: the size of the value written
};

struct Trace {
  TraceModel model;
  std::vector<TraceOp> ops;  // sorted by at_us
  uint32_t sessions = 0;     // number of distinct sessions
};

// Generates the trace of `model`. Same model (seed included) = same trace, on any machine.
Trace GenerateTrace(const TraceModel& model);

// Writes / reads the file format. ReadTrace checks everything (magic, version, lengths, order,
// checksum) and returns Corruption saying what is wrong.
Status WriteTrace(const std::string& path, const Trace& trace);
Status ReadTrace(const std::string& path, Trace* trace);

}  // namespace sessionserver::loadtest

#endif  // SESSIONSERVER_LOADTEST_TRACE_H_
