#include "fleet/server_state.h"

#include <string>

namespace sessionserver::fleet {

const char* ToString(ServerState state) {
  switch (state) {
    case ServerState::kActive:
      return "active";
    case ServerState::kDraining:
      return "draining";
    case ServerState::kDrained:
      return "drained";
  }
  return "draining";  // not reached: every state is named above
}

Status ParseServerState(std::string_view text, ServerState* out) {
  for (ServerState s : {ServerState::kActive, ServerState::kDraining, ServerState::kDrained}) {
    if (text == ToString(s)) {
      *out = s;
      return Status::OK();
    }
  }
  return Status::InvalidArgument("unknown server state \"" + std::string(text) +
                                 "\" (expected active, draining or drained)");
}

}  // namespace sessionserver::fleet
