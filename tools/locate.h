// sessionctl locate: which tiers of which server hold one session, and what Redis holds, for
// support ("where is this user's cart?"). Asks every member of the registry over Thrift
// (SessionService.locate, which touches nothing) and reads the session's key in Redis.
#ifndef SESSIONSERVER_TOOLS_LOCATE_H_
#define SESSIONSERVER_TOOLS_LOCATE_H_

#include <string>
#include <vector>

#include "fleet/registry.h"

namespace sessionserver::fleet {

// Prints one line per server and one for Redis to stdout. Returns the process exit code: 0 if
// every server and Redis answered, 1 otherwise (what could be learned is printed either way).
// `redis`: the fleet's Redis (one node), or with `cluster` the seeds of its Redis Cluster.
int Locate(const std::vector<HostPort>& redis, bool cluster, const std::vector<Member>& members,
           const std::string& session_id);

}  // namespace sessionserver::fleet

#endif  // SESSIONSERVER_TOOLS_LOCATE_H_
