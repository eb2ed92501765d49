// Heartbeat: with --redis, a background thread that registers this server in the fleet's
// registry (fleet/registry.h) every --heartbeat_ms, with its address, state and load, and picks
// up the operator's drain flag: a draining server reports state "draining" in info() and in the
// registry, so clients and sessionctl steer away from it, and hands its sessions off (see
// SessionHandler::SetState). Each beat while draining writes the whole write-behind queue out
// (waiting up to half an interval); once it is empty and no request holds a lock here, the state
// is "drained": the backing store has every change the server holds, and it may be stopped. A
// registry outage changes nothing for traffic: the heartbeat just retries next round.
//
// Thread-safe. Start once; Stop (or the destructor) joins the thread.
#ifndef SESSIONSERVER_SERVER_HEARTBEAT_H_
#define SESSIONSERVER_SERVER_HEARTBEAT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fleet/registry.h"
#include "server/session_handler.h"
#include "storage/write_behind.h"
#include "util/periodic_thread.h"

namespace sessionserver {

struct HeartbeatOptions {
  std::vector<HostPort> redis_nodes;  // the Redis, or seed nodes of a Redis Cluster
  bool redis_cluster = false;
  std::string server_id;
  std::string address;         // host:port clients should use
  std::string dc;              // its data centre, or empty
  int64_t interval_ms = 1000;  // the entry lives 3 intervals: a dead server leaves in ~3 s
};

class Heartbeat {
 public:
  // Not owned; both must outlive this.
  // `replicator` (the queue to the other data centre) may be null.
  Heartbeat(HeartbeatOptions options, SessionHandler* handler, WriteBehind* write_behind,
            WriteBehind* replicator = nullptr);
  void Start() { thread_.Start(); }
  void Stop() { thread_.Stop(); }

 private:
  void Beat();  // on the thread

  const HeartbeatOptions options_;
  SessionHandler* const handler_;
  WriteBehind* const write_behind_;
  WriteBehind* const replicator_;
  std::unique_ptr<fleet::Registry> registry_;      // used by the thread only
  int64_t last_requests_ = -1, last_beat_us_ = 0;  // for the request rate; the thread only
  PeriodicThread thread_;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_SERVER_HEARTBEAT_H_
