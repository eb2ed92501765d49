// ServerState: where a server is in a drain, as the fleet sees it. One enum for the heartbeat,
// the session handler, the registry, sessionctl and the client's view; its text ("active",
// "draining", "drained") is what info() reports (ServerInfo.state) and what the registry's
// `state` field holds (docs/REDIS_SCHEMA.md), so ToString and ParseServerState are the only
// places that spell it.
//
// Thread-safe: pure functions.
#ifndef SESSIONSERVER_FLEET_SERVER_STATE_H_
#define SESSIONSERVER_FLEET_SERVER_STATE_H_

#include <string_view>

#include "util/status.h"

namespace sessionserver::fleet {

enum class ServerState {
  kActive,    // serves and takes new sessions
  kDraining,  // an operator asked it to drain: no new sessions, hands sessions off (MOVED)
  kDrained,   // draining, and the backing store has every change it holds: it may be stopped
};

// "active", "draining" or "drained".
const char* ToString(ServerState state);
// The inverse of ToString, exactly (case-sensitive, no spaces). InvalidArgument otherwise, *out
// unchanged.
Status ParseServerState(std::string_view text, ServerState* out);

}  // namespace sessionserver::fleet

#endif  // SESSIONSERVER_FLEET_SERVER_STATE_H_
