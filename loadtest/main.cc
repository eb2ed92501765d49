// session_loadtest: generates session traffic traces and replays them against the SessionServer
// fleet or plain Redis (see README.md "Load testing" and docs/TRACE_FORMAT.md).
//   session_loadtest generate --out=FILE [--scale=0.0001 --duration_s=60 --seed=1 ...]
//   session_loadtest replay --trace=FILE --target=sessionserver://h:p,h:p|redis://h:p
//                           [--closed_loop --workers=16 --speed=1 --max_seconds=120
//                            --json=FILE --html=FILE --registry=h:p]
//                           [--remote_target=sessionserver://h:p,h:p --remote_registry=h:p]
// Two data centres (docs/TWO_SITES.md): --target is the client's own site, --remote_target
// and/or --remote_registry the other site's servers in its view.
#include <gflags/gflags.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "loadtest/replay.h"
#include "loadtest/trace.h"

DEFINE_string(out, "", "generate: the trace file to write");
DEFINE_double(scale, 0.0001, "generate: fraction of the full-size site (Ctrip-like) traffic");
DEFINE_double(duration_s, 60, "generate: seconds of traffic");
DEFINE_uint64(seed, 1, "generate: random seed (same seed, same trace)");
DEFINE_double(write_share, 0.2, "generate: share of requests that write");
DEFINE_double(hot_share, 0.1, "generate: share of requests to the hot sessions");
DEFINE_double(value_median_bytes, 2048, "generate: median value size");
DEFINE_double(value_max_bytes, 1 << 20, "generate: largest value size");
DEFINE_double(think_time_s, 40, "generate: mean think time between a session's pages");
DEFINE_string(trace, "", "replay: the trace file");
DEFINE_string(registry, "",
              "replay, sessionserver targets: host:port of the fleet's registry (its Redis), so "
              "the client discovers added servers and avoids draining ones");
DEFINE_string(target, "", "replay: sessionserver://host:port[,host:port...] or redis://host:port");
DEFINE_string(remote_target, "",
              "replay, two data centres: the other site's servers, "
              "sessionserver://host:port[,host:port...], in the client's view (reached when no "
              "server of --target answers)");
DEFINE_string(remote_registry, "",
              "replay, two data centres: host:port of the other site's registry (its Redis)");
DEFINE_bool(closed_loop, false, "replay: closed loop (default: open loop at the trace's times)");
DEFINE_int32(workers, 16, "replay: concurrent requests at most");
DEFINE_double(speed, 1.0, "replay: open loop: play the trace this many times faster");
DEFINE_double(max_seconds, 120, "replay: stop issuing requests after this long");
DEFINE_string(json, "", "replay: write the results as JSON here");
DEFINE_string(html, "", "replay: write a self-contained HTML report here");
DEFINE_bool(fail_on_anomaly, false,
            "replay: exit 3 if the checker found a lost update, stale read or resurrection");

namespace sessionserver::loadtest {
namespace {

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (out.fail()) std::fprintf(stderr, "cannot write %s\n", path.c_str());
  return !out.fail();
}

int Generate() {
  if (FLAGS_out.empty()) {
    std::fprintf(stderr, "generate needs --out=FILE\n");
    return 2;
  }
  TraceModel m;
  m.scale = FLAGS_scale;
  m.duration_s = FLAGS_duration_s;
  m.seed = FLAGS_seed;
  m.write_share = FLAGS_write_share;
  m.hot_share = FLAGS_hot_share;
  m.value_median_bytes = FLAGS_value_median_bytes;
  m.value_max_bytes = FLAGS_value_max_bytes;
  m.think_time_s = FLAGS_think_time_s;
  const Trace trace = GenerateTrace(m);
  Status s = WriteTrace(FLAGS_out, trace);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("wrote %s: %zu requests of %u sessions over %.0f s\n", FLAGS_out.c_str(),
              trace.ops.size(), trace.sessions, m.duration_s);
  return 0;
}

int RunReplay() {
  Trace trace;
  Status s = ReadTrace(FLAGS_trace, &trace);
  if (!s.ok()) {
    std::fprintf(stderr, "--trace: %s\n", s.ToString().c_str());
    return 2;
  }
  ReplayOptions o;
  o.target = FLAGS_target;
  o.registry = FLAGS_registry;
  o.remote_target = FLAGS_remote_target;
  o.remote_registry = FLAGS_remote_registry;
  o.open_loop = !FLAGS_closed_loop;
  o.workers = FLAGS_workers;
  o.speed = FLAGS_speed;
  o.max_seconds = FLAGS_max_seconds;
  ReplayResults r;
  s = Replay(trace, o, &r);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 2;
  }
  const LatencyHistogram& h = r.latency;
  std::printf(
      "%s (%s): %llu requests in %.1f s = %.0f/s; latency us p50 %lld p90 %lld p99 %lld "
      "p99.9 %lld p99.99 %lld max %lld; errors %llu, never issued %llu; lost updates %llu, "
      "stale reads %llu, resurrected %llu\n",
      r.target.c_str(), r.open_loop ? "open loop" : "closed loop",
      static_cast<unsigned long long>(r.ops), r.seconds, r.throughput(),
      static_cast<long long>(h.Percentile(0.5)), static_cast<long long>(h.Percentile(0.9)),
      static_cast<long long>(h.Percentile(0.99)), static_cast<long long>(h.Percentile(0.999)),
      static_cast<long long>(h.Percentile(0.9999)), static_cast<long long>(h.max()),
      static_cast<unsigned long long>(r.errors), static_cast<unsigned long long>(r.skipped),
      static_cast<unsigned long long>(r.checks.lost_updates),
      static_cast<unsigned long long>(r.checks.stale_reads),
      static_cast<unsigned long long>(r.checks.resurrected));
  for (const auto& e : r.checks.examples) std::printf("  %s\n", e.c_str());
  if (!FLAGS_json.empty() && !WriteFile(FLAGS_json, JsonReport(r))) return 1;
  if (!FLAGS_html.empty() && !WriteFile(FLAGS_html, HtmlReport(r))) return 1;
  const uint64_t anomalies = r.checks.lost_updates + r.checks.stale_reads + r.checks.resurrected;
  return FLAGS_fail_on_anomaly && anomalies > 0 ? 3 : 0;
}

}  // namespace
}  // namespace sessionserver::loadtest

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "session_loadtest generate --out=FILE ... | replay --trace=FILE --target=URL ...");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "generate") return sessionserver::loadtest::Generate();
  if (command == "replay") return sessionserver::loadtest::RunReplay();
  std::fprintf(stderr, "usage: session_loadtest generate|replay [flags]; --help for flags\n");
  return 2;
}
