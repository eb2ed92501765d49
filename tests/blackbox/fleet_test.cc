// Fleet membership through the registry in a real Redis: a server registers itself, sessionctl
// lists it, drains and undrains it (the server's info() follows), and a server killed with -9
// leaves the view once its heartbeat expires.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "tests/blackbox/server_process.h"
#include "tests/temp_dir.h"
#include "tests/unit/redis_server.h"

namespace sessionserver {
namespace {

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis_.Start()); }

  std::string Ctl(const std::string& args) {
    return CommandOutput(std::string(SESSIONCTL_BINARY) +
                         " --redis=127.0.0.1:" + std::to_string(redis_.port()) + " " + args);
  }
  std::string State(int port) {
    TestClient c(port);
    thrift::ServerInfo info;
    c->info(info);
    return info.state;
  }
  // Polls `cond` every 20 ms for up to 5 s.
  template <typename Cond>
  bool Eventually(Cond cond) {
    for (int i = 0; i < 250; ++i) {
      if (cond()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  RedisServer redis_;
  TempDir dir_{"ss-fleet"};
};

TEST_F(FleetTest, ServersRegisterDrainUndrainAndLeaveWhenDead) {
  ServerProcess a, b;
  const std::string redis = "--redis=127.0.0.1:" + std::to_string(redis_.port());
  ASSERT_TRUE(a.Start({redis, "--heartbeat_ms=200", "--data_dir=" + dir_.path() + "/a"}));
  ASSERT_TRUE(b.Start({redis, "--heartbeat_ms=200", "--data_dir=" + dir_.path() + "/b"}));
  const std::string id_a = "127.0.0.1:" + std::to_string(a.port());
  const std::string id_b = "127.0.0.1:" + std::to_string(b.port());
  ASSERT_TRUE(Eventually([&] {
    const std::string list = Ctl("list");
    return list.find(id_a) != std::string::npos && list.find(id_b) != std::string::npos;
  })) << Ctl("list");
  EXPECT_EQ(State(a.port()), "active");

  EXPECT_NE(Ctl("drain " + id_a).find("drain"), std::string::npos);
  EXPECT_TRUE(Eventually([&] { return State(a.port()) == "draining"; }));
  EXPECT_TRUE(Eventually([&] {
    const std::string list = Ctl("list");
    return list.find("draining") != std::string::npos;
  })) << Ctl("list");
  EXPECT_EQ(State(b.port()), "active") << "only the named server drains";
  // Eventually: on a loaded machine a late heartbeat can let an entry lapse for a moment.
  EXPECT_TRUE(Eventually([&] {
    return Ctl("stats").find("servers 2 (active 1, draining 1)") != std::string::npos;
  })) << Ctl("stats");

  Ctl("undrain " + id_a);
  EXPECT_TRUE(Eventually([&] { return State(a.port()) == "active"; }));

  b.Stop(SIGKILL);
  EXPECT_TRUE(Eventually([&] { return Ctl("list").find(id_b) == std::string::npos; }))
      << "a dead server leaves the view when its heartbeat expires: " << Ctl("list");
  EXPECT_NE(Ctl("list").find(id_a), std::string::npos);
}

}  // namespace
}  // namespace sessionserver
