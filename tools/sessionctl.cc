// sessionctl: the operator's view of the fleet, through its registry in Redis.
//   sessionctl --redis=host:port list               servers: id, address, state, load
//   sessionctl --redis=host:port drain SERVER_ID    ask a server to drain (kept until undrain)
//   sessionctl --redis=host:port undrain SERVER_ID
//   sessionctl --redis=host:port stats              fleet totals
//   (with --remote_redis=host:port, list and stats show the other data centre's fleet too)
//   sessionctl --redis=host:port locate SESSION_ID  which tiers of which server hold it, and Redis
// On a Redis Cluster, --redis_cluster=host:port[,host:port...] (seed nodes) instead of --redis.
#include <gflags/gflags.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "fleet/registry.h"
#include "tools/locate.h"
#include "util/host_port.h"

DEFINE_string(redis, "127.0.0.1:6390", "host:port of the fleet's Redis (the registry)");
DEFINE_string(remote_redis, "",
              "host:port of the other data centre's registry: list and stats show both sites");
DEFINE_string(redis_cluster, "",
              "host:port[,host:port...]: seed nodes of the fleet's Redis Cluster (instead of "
              "--redis)");

namespace sessionserver::fleet {
namespace {

int Fail(const Status& s) {
  std::fprintf(stderr, "sessionctl: %s\n", s.ToString().c_str());
  return 1;
}

// Prints one site's fleet (`list`: a line per server; else totals), headed by its registry.
int Show(Registry* registry, const std::string& where, bool list) {
  std::vector<Member> members;
  Status s = registry->List(&members);
  if (!s.ok()) return Fail(s);
  const std::string dc = members.empty() ? "" : members.front().dc;
  std::printf("site %s (registry %s)\n", dc.empty() ? "-" : dc.c_str(), where.c_str());
  const int64_t now_ms = static_cast<int64_t>(std::time(nullptr)) * 1000;
  int64_t items = 0, bytes = 0, requests = 0, active = 0, repl = 0, dropped = 0;
  if (list) {
    std::printf("%-24s %-22s %-9s %10s %14s %12s %8s %8s %8s %10s\n", "SERVER", "ADDRESS", "STATE",
                "ITEMS", "BYTES", "REQUESTS", "REQ/S", "AGE_MS", "REPL_Q", "REPL_DROP");
  }
  for (const Member& m : members) {
    items += m.items;
    bytes += m.bytes;
    requests += m.requests;
    active += m.state == ServerState::kActive;
    repl += m.repl_pending;
    dropped += m.repl_dropped;
    if (list) {
      std::printf("%-24s %-22s %-9s %10lld %14lld %12lld %8lld %8lld %8lld %10lld\n", m.id.c_str(),
                  m.address.c_str(), ToString(m.state), static_cast<long long>(m.items),
                  static_cast<long long>(m.bytes), static_cast<long long>(m.requests),
                  static_cast<long long>(m.request_rate),
                  static_cast<long long>(std::max<int64_t>(0, now_ms - m.heartbeat_ms)),
                  static_cast<long long>(m.repl_pending), static_cast<long long>(m.repl_dropped));
    }
  }
  if (!list) {
    std::printf(
        "servers %zu (active %lld, draining %lld); items %lld; bytes %lld; requests %lld; "
        "replication queue %lld (dropped %lld)\n",
        members.size(), static_cast<long long>(active),
        static_cast<long long>(members.size()) - static_cast<long long>(active),
        static_cast<long long>(items), static_cast<long long>(bytes),
        static_cast<long long>(requests), static_cast<long long>(repl),
        static_cast<long long>(dropped));
  }
  return 0;
}

int Main(int argc, char** argv) {
  const bool cluster = !FLAGS_redis_cluster.empty();
  std::vector<HostPort> nodes;
  const char* flag = cluster ? "--redis_cluster" : "--redis";
  Status s = ParseHostPortList(cluster ? FLAGS_redis_cluster : FLAGS_redis, &nodes);
  if (s.ok() && !cluster && nodes.size() != 1) {
    s = Status::InvalidArgument("one host:port (seed nodes of a cluster: --redis_cluster)");
  }
  HostPort remote;
  if (s.ok() && !FLAGS_remote_redis.empty()) {
    flag = "--remote_redis";
    s = ParseHostPort(FLAGS_remote_redis, &remote);
  }
  if (!s.ok()) {
    std::fprintf(stderr, "sessionctl: %s: %s\n", flag, s.message().c_str());
    return 2;
  }
  Registry registry(nodes, cluster);
  const std::string command = argc > 1 ? argv[1] : "";
  if ((command == "drain" || command == "undrain") && argc == 3) {
    s = registry.SetDrain(argv[2], command == "drain");
    if (!s.ok()) return Fail(s);
    std::printf("%s %s: the server picks it up with its next heartbeat\n", command.c_str(),
                argv[2]);
    return 0;
  }
  if (command == "locate" && argc == 3) {
    std::vector<Member> members;
    s = registry.List(&members);
    if (!s.ok()) return Fail(s);
    return Locate(nodes, cluster, members, argv[2]);
  }
  if (command == "list" || command == "stats") {
    int rc = Show(&registry, cluster ? FLAGS_redis_cluster : FLAGS_redis, command == "list");
    if (!FLAGS_remote_redis.empty()) {
      Registry remote_registry(remote.host, remote.port);
      std::printf("\n");
      rc = std::max(rc, Show(&remote_registry, FLAGS_remote_redis, command == "list"));
    }
    return rc;
  }
  std::fprintf(stderr,
               "usage: sessionctl --redis=host:port list | stats | drain ID | undrain ID | "
               "locate SESSION_ID\n");
  return 2;
}

}  // namespace
}  // namespace sessionserver::fleet

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  return sessionserver::fleet::Main(argc, argv);
}
