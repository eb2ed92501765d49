// Replay: plays a trace against a target (the SessionServer fleet through session_client, or
// plain Redis as a web app would use it directly) and measures it: throughput, latency (from each
// request's intended start in open-loop mode, so a slow target cannot hide its queueing:
// no coordinated omission), errors by kind, and consistency (checker.h).
#ifndef SESSIONSERVER_LOADTEST_REPLAY_H_
#define SESSIONSERVER_LOADTEST_REPLAY_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loadtest/checker.h"
#include "loadtest/trace.h"
#include "util/latency_histogram.h"
#include "util/status.h"

namespace sessionserver::loadtest {

struct ReplayOptions {
  // "sessionserver://host:port[,host:port...]" or "redis://host:port".
  std::string target;
  // sessionserver targets: host:port of the fleet registry (Redis), or empty. With it the client
  // discovers servers (added ones included) and steers new sessions away from draining ones.
  std::string registry;
  // Two data centres (docs/TWO_SITES.md), sessionserver targets: the other site's servers
  // ("sessionserver://host:port[,host:port...]") and/or its registry's host:port, for the client's
  // view; empty: one site.
  std::string remote_target;
  std::string remote_registry;
  bool open_loop = true;     // false: closed loop (each worker issues its next request at once)
  double speed = 1.0;        // open loop: trace time runs this many times faster
  int workers = 16;          // concurrent requests (connections) at most
  double max_seconds = 120;  // the run stops issuing requests after this long
  bool progress = true;      // a progress line on stderr (only if it is a terminal)
  int32_t session_timeout_minutes = 20;
};

struct SecondStats {
  uint64_t ops = 0;
  uint64_t errors = 0;
  int64_t p50_us = 0, p99_us = 0, max_us = 0;
};

struct ReplayResults {
  std::string target;
  // sessionserver targets: host:port of the fleet registry (Redis), or empty. With it the client
  // discovers servers (added ones included) and steers new sessions away from draining ones.
  std::string registry;
  bool open_loop = true;
  uint64_t ops = 0;      // requests completed (successfully or not)
  uint64_t ok = 0;       // of which succeeded
  uint64_t errors = 0;   // of which failed (errors_by_kind), "not_started" included
  uint64_t skipped = 0;  // trace requests never issued (max_seconds reached before their time)
  double seconds = 0;
  LatencyHistogram latency;  // every completed request, failed ones included
  std::map<std::string, uint64_t> errors_by_kind;
  CheckerResults checks;
  std::vector<SecondStats> per_second;  // by intended start second
  // Successful requests per second.
  double throughput() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
};

Status Replay(const Trace& trace, const ReplayOptions& options, ReplayResults* results);

// The JSON report: {"ops", "throughput_ops_s", "latency_us": {"p50", "p90", "p99", "p999",
// "p9999", "max"}, "errors", "errors_by_kind", "lost_updates", "stale_reads", "resurrected",
// "examples", "per_second": [...]} and the run's parameters.
std::string JsonReport(const ReplayResults& results);
// A self-contained HTML page with inline SVG plots: throughput and percentiles over time, and
// the latency distribution.
std::string HtmlReport(const ReplayResults& results);

}  // namespace sessionserver::loadtest

#endif  // SESSIONSERVER_LOADTEST_REPLAY_H_
