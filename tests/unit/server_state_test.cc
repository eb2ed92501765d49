// ServerState's text is a wire and registry format (info().state, the registry's `state` field):
// pinned here so a rename cannot change what Redis, sessionctl and older clients see.
#include "fleet/server_state.h"

#include <gtest/gtest.h>

namespace sessionserver::fleet {
namespace {

TEST(ServerStateTest, TextIsTheWireAndRegistryText) {
  EXPECT_STREQ(ToString(ServerState::kActive), "active");
  EXPECT_STREQ(ToString(ServerState::kDraining), "draining");
  EXPECT_STREQ(ToString(ServerState::kDrained), "drained");
  for (ServerState s : {ServerState::kActive, ServerState::kDraining, ServerState::kDrained}) {
    ServerState parsed = s == ServerState::kActive ? ServerState::kDrained : ServerState::kActive;
    ASSERT_TRUE(ParseServerState(ToString(s), &parsed).ok());
    EXPECT_EQ(parsed, s);
  }
}

TEST(ServerStateTest, AnythingElseIsRefused) {
  for (const char* text : {"", "Active", "ACTIVE", " active", "active ", "drain", "stopped"}) {
    ServerState out = ServerState::kDrained;
    const Status s = ParseServerState(text, &out);
    EXPECT_TRUE(s.IsInvalidArgument()) << "\"" << text << "\"";
    EXPECT_NE(s.message().find("unknown server state"), std::string::npos) << s.message();
    EXPECT_EQ(out, ServerState::kDrained) << "unchanged on error";
  }
}

}  // namespace
}  // namespace sessionserver::fleet
