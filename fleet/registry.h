// Registry: fleet membership in the backing store (Redis). Each server heartbeats its entry
// (id, advertised address, state, load figures) with a short TTL, so a server that stops
// heartbeating leaves the view by itself; operators set a drain flag per server (sessionctl),
// which the server picks up with its next heartbeat. Key schema in docs/REDIS_SCHEMA.md.
// Works on a single Redis or a Redis Cluster: every command names one key, routed to its slot's
// node (util/redis_cluster.h), so the registry's keys may live on different nodes.
//
// Thread-compatible: one router; use one Registry per thread.
#ifndef SESSIONSERVER_FLEET_REGISTRY_H_
#define SESSIONSERVER_FLEET_REGISTRY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fleet/server_state.h"
#include "util/redis_cluster.h"
#include "util/status.h"

namespace sessionserver::fleet {

struct Member {
  std::string id;
  std::string address;  // host:port clients connect to
  // Stored as its text (fleet/server_state.h). List reads a missing or unknown state as
  // kDraining: reachable, but given no new sessions.
  ServerState state = ServerState::kActive;
  int64_t heartbeat_ms = 0;  // wall-clock ms of the last heartbeat
  int64_t items = 0, bytes = 0, requests = 0;
  int64_t request_rate = 0;  // requests per second over the last heartbeat interval
  std::string dc;            // its data centre ("" with one site)
  int64_t repl_pending = 0, repl_dropped = 0;  // its queue of changes for the other site
};

class Registry {
 public:
  // `nodes`: the Redis (one) or, with `cluster`, seed nodes of a Redis Cluster. Connects lazily.
  Registry(std::vector<HostPort> nodes, bool cluster, int64_t timeout_ms = 500);
  // One Redis at host:port.
  Registry(const std::string& host, int port, int64_t timeout_ms = 500)
      : Registry({HostPort{host, port}}, /*cluster=*/false, timeout_ms) {}
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Writes `me` with a TTL of `ttl_ms`, and reports whether an operator asked this server to
  // drain. The drain flag decides the state written: kActive without it; with it, kDrained if
  // me.state says so, else kDraining.
  Status Heartbeat(const Member& me, int64_t ttl_ms, bool* draining);
  // The members whose heartbeat has not expired, by id. Expired ids are pruned from the set.
  Status List(std::vector<Member>* members);
  // Sets or clears the drain flag of `id` (kept until cleared, even across restarts).
  Status SetDrain(const std::string& id, bool drain);

  // Not under the sessions' "ss:v1:" prefix: no session id can name a registry key.
  static constexpr char kPrefix[] = "ss:fleet:v1";

 private:
  // Runs the commands (pipelined per node); an error reply to any of them is an error.
  Status Run(const std::vector<RedisCommand>& commands, std::vector<RedisReply>* replies);

  RedisRouter router_;
};

}  // namespace sessionserver::fleet

#endif  // SESSIONSERVER_FLEET_REGISTRY_H_
