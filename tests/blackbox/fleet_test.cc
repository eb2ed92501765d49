// Fleet membership through the registry in a real Redis: a server registers itself, sessionctl
// lists it, drains and undrains it (the server's info() follows), and a server killed with -9
// leaves the view once its heartbeat expires.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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

  // Starts a and b (a with `extra_a` too) heartbeating every 200 ms; waits until both are listed.
  void StartTwo(ServerProcess* a, ServerProcess* b, const std::string& extra_a = "") {
    const std::string redis = "--redis=127.0.0.1:" + std::to_string(redis_.port());
    std::vector<std::string> flags_a = {redis, "--heartbeat_ms=200",
                                        "--data_dir=" + dir_.path() + "/a"};
    if (!extra_a.empty()) flags_a.push_back(extra_a);
    ASSERT_TRUE(a->Start(flags_a));
    ASSERT_TRUE(b->Start({redis, "--heartbeat_ms=200", "--data_dir=" + dir_.path() + "/b"}));
    id_a_ = "127.0.0.1:" + std::to_string(a->port());
    id_b_ = "127.0.0.1:" + std::to_string(b->port());
    ASSERT_TRUE(Eventually([&] {
      const std::string list = Ctl("list");
      return list.find(id_a_) != std::string::npos && list.find(id_b_) != std::string::npos;
    })) << Ctl("list");
  }

  RedisServer redis_;
  TempDir dir_{"ss-fleet"};
  std::string id_a_, id_b_;
};

TEST_F(FleetTest, ServersRegisterDrainUndrainAndLeaveWhenDead) {
  ServerProcess a, b;
  ASSERT_NO_FATAL_FAILURE(StartTwo(&a, &b));
  const std::string id_a = id_a_, id_b = id_b_;
  EXPECT_EQ(State(a.port()), "active");
  {
    // The request rate (REQ/S, the 7th column) follows traffic: requests flow meanwhile.
    std::atomic<bool> stop{false};
    std::thread traffic([&] {
      TestClient c(a.port());
      for (int i = 0; !stop; ++i) c->put("rate-" + std::to_string(i % 50), "x", 20, 0, false);
    });
    EXPECT_TRUE(Eventually([&] {
      const std::string list = Ctl("list");
      const size_t at = list.find(id_a + " ");
      if (at == std::string::npos) return false;
      std::istringstream line(list.substr(at, list.find('\n', at) - at));
      std::string field;
      for (int column = 0; column < 7; ++column) line >> field;
      return std::atoll(field.c_str()) > 0;
    })) << Ctl("list");
    stop = true;
    traffic.join();
  }

  // stdout only (Ctl): the usage text on stderr, which names every command, cannot match.
  EXPECT_EQ(Ctl("drain " + id_a),
            "drain " + id_a + ": the server picks it up with its next heartbeat\n");
  // No traffic, nothing queued: draining soon becomes drained (Redis has everything).
  EXPECT_TRUE(Eventually([&] { return State(a.port()) == "drained"; }));
  EXPECT_TRUE(Eventually([&] {
    const std::string list = Ctl("list");
    return list.find("drained") != std::string::npos;
  })) << Ctl("list");
  EXPECT_EQ(State(b.port()), "active") << "only the named server drains";
  // Eventually: on a loaded machine a late heartbeat can let an entry lapse for a moment.
  EXPECT_TRUE(Eventually([&] {
    return Ctl("stats").find("servers 2 (active 1, draining 1)") != std::string::npos;
  })) << Ctl("stats");

  EXPECT_EQ(Ctl("undrain " + id_a),
            "undrain " + id_a + ": the server picks it up with its next heartbeat\n");
  EXPECT_TRUE(Eventually([&] { return State(a.port()) == "active"; }));

  b.Stop(SIGKILL);
  EXPECT_TRUE(Eventually([&] { return Ctl("list").find(id_b) == std::string::npos; }))
      << "a dead server leaves the view when its heartbeat expires: " << Ctl("list");
  EXPECT_NE(Ctl("list").find(id_a), std::string::npos);
}

// Changes still served by a draining server (a lock holder's save, a sign-out) reach Redis
// before the answer: it may be reported drained and stopped at any moment. (Changes wait 60 s
// in the queue here otherwise.)
TEST_F(FleetTest, ADrainingServerWritesChangesThroughBeforeAnswering) {
  ServerProcess a, b;
  ASSERT_NO_FATAL_FAILURE(StartTwo(&a, &b, "--write_behind_delay_ms=60000"));
  TestClient c(a.port());
  ASSERT_EQ(c->put("cart", "v1", 20, 0, false), thrift::Status::OK);
  thrift::GetResult locked;
  c->getExclusive(locked, "cart");
  ASSERT_EQ(locked.status, thrift::Status::OK);
  EXPECT_EQ(redis_.Command("HGET ss:v1:cart v"), "(nil)") << "still queued";
  Ctl("drain " + id_a_);
  ASSERT_TRUE(Eventually([&] { return State(a.port()) == "draining"; }));
  ASSERT_EQ(c->put("cart", "v2", 20, locked.lockCookie, false), thrift::Status::OK);
  EXPECT_NE(redis_.Command("HGET ss:v1:cart v"), "(nil)") << "the save was written through";
  EXPECT_EQ(c->put("other", "x", 20, 0, false), thrift::Status::MOVED) << "no new sessions";
  ASSERT_EQ(c->remove("cart", 0), thrift::Status::OK);
  EXPECT_EQ(redis_.Command("HGET ss:v1:cart t"), "1") << "the sign-out was written through";
  EXPECT_TRUE(Eventually([&] { return State(a.port()) == "drained"; }));
}

TEST_F(FleetTest, LocateShowsWhereASessionIsOnEveryServerAndInRedis) {
  ServerProcess a, b;
  ASSERT_NO_FATAL_FAILURE(StartTwo(&a, &b, "--write_behind_delay_ms=60000"));  // changes wait
  const std::string id_a = id_a_, id_b = id_b_;
  {
    TestClient c(a.port());
    ASSERT_EQ(c->put("cart-of-alice", "book", 20, 0, false), thrift::Status::OK);
    thrift::GetResult r;
    c->getExclusive(r, "cart-of-alice");
    ASSERT_EQ(r.status, thrift::Status::OK);
  }
  std::string out = Ctl("locate cart-of-alice");
  auto line_of = [&out](const std::string& prefix) {
    const size_t at = out.find(prefix);
    return at == std::string::npos ? std::string() : out.substr(at, out.find('\n', at) - at);
  };
  EXPECT_NE(line_of(id_a).find("memory v"), std::string::npos) << out;
  EXPECT_NE(line_of(id_a).find("locked"), std::string::npos) << out;
  EXPECT_NE(line_of(id_a).find("queued put"), std::string::npos) << out;
  EXPECT_NE(line_of(id_b).find(" -"), std::string::npos) << "b holds nothing: " << out;
  EXPECT_NE(line_of("redis").find(" -"), std::string::npos) << "not written yet: " << out;

  a.Stop(SIGTERM);  // flushes to Redis
  out = Ctl("locate cart-of-alice");
  EXPECT_NE(line_of("redis").find("4 bytes"), std::string::npos) << out;
  EXPECT_NE(Ctl("locate bad\x01id").find("refused"), std::string::npos);
}

}  // namespace
}  // namespace sessionserver
