// Registry: fleet membership in the backing store (Redis). Each server heartbeats its entry
// (id, advertised address, state, load figures) with a short TTL, so a server that stops
// heartbeating leaves the view by itself; operators set a drain flag per server (sessionctl),
// which the server picks up with its next heartbeat. Key schema in docs/REDIS_SCHEMA.md.
//
// Thread-compatible: one connection; use one Registry per thread.
#ifndef SESSIONSERVER_FLEET_REGISTRY_H_
#define SESSIONSERVER_FLEET_REGISTRY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/status.h"

struct redisContext;

namespace sessionserver::fleet {

struct Member {
  std::string id;
  std::string address;       // host:port clients connect to
  std::string state;         // "active", "draining" or "drained" (see SessionHandler::SetState)
  int64_t heartbeat_ms = 0;  // wall-clock ms of the last heartbeat
  int64_t items = 0, bytes = 0, requests = 0;
  std::string dc;                              // its data centre ("" with one site)
  int64_t repl_pending = 0, repl_dropped = 0;  // its queue of changes for the other site
};

class Registry {
 public:
  Registry(std::string host, int port, int64_t timeout_ms = 500);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Writes `me` with a TTL of `ttl_ms`, and reports whether an operator asked this server to
  // drain. The drain flag decides the state written: "active" without it; with it, "drained" if
  // me.state says so, else "draining".
  Status Heartbeat(const Member& me, int64_t ttl_ms, bool* draining);
  // The members whose heartbeat has not expired, by id. Expired ids are pruned from the set.
  Status List(std::vector<Member>* members);
  // Sets or clears the drain flag of `id` (kept until cleared, even across restarts).
  Status SetDrain(const std::string& id, bool drain);

  // Not under the sessions' "ss:v1:" prefix: no session id can name a registry key.
  static constexpr char kPrefix[] = "ss:fleet:v1";

 private:
  Status Ensure();
  // Runs one command (binary-safe args). On success *reply gets the raw reply (caller frees).
  Status Run(const std::vector<std::string>& args, void** reply);

  const std::string host_;
  const int port_;
  const int64_t timeout_ms_;
  redisContext* ctx_ = nullptr;
};

}  // namespace sessionserver::fleet

#endif  // SESSIONSERVER_FLEET_REGISTRY_H_
