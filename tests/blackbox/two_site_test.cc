// Two data centres on loopback, each a real redis-server and two real session_server processes
// that replicate to each other (--dc, --remote_registry): changes and removals cross in both
// directions with their versions, concurrent writes in both sites converge, losing a whole site
// loses no session that had been replicated, an unreachable other site costs no request, and
// sessionctl shows both fleets with their replication queues.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/blackbox/server_process.h"
#include "tests/temp_dir.h"
#include "tests/unit/redis_server.h"

namespace sessionserver {
namespace {

struct Site {
  std::string dc;
  RedisServer redis;
  std::vector<std::unique_ptr<ServerProcess>> servers;
};

class TwoSiteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_.dc = "east";
    b_.dc = "west";
    ASSERT_TRUE(a_.redis.Start());
    ASSERT_TRUE(b_.redis.Start());
    ASSERT_NO_FATAL_FAILURE(StartServers(&a_, b_));
    ASSERT_NO_FATAL_FAILURE(StartServers(&b_, a_));
  }
  void StartServers(Site* site, const Site& other) {
    for (int i = 0; i < 2; ++i) {
      site->servers.push_back(std::make_unique<ServerProcess>());
      ASSERT_TRUE(site->servers.back()->Start(
          {"--dc=" + site->dc, "--redis=127.0.0.1:" + std::to_string(site->redis.port()),
           "--remote_registry=127.0.0.1:" + std::to_string(other.redis.port()),
           "--data_dir=" + dir_.path() + "/" + site->dc + std::to_string(i), "--heartbeat_ms=200",
           "--write_behind_delay_ms=10", "--replication_delay_ms=10"}));
    }
  }
  static thrift::GetResult Get(ServerProcess* server, const std::string& id) {
    TestClient c(server->port());
    thrift::GetResult r;
    c->get(r, id);
    return r;
  }
  static int64_t Counter(ServerProcess* server, const std::string& name) {
    TestClient c(server->port());
    thrift::ServerInfo info;
    c->info(info);
    return info.counters[name];
  }
  // Until every server of `site` has sent the other site everything it queued.
  static bool Replicated(const Site& site) {
    return Eventually([&] {
      for (const auto& s : site.servers) {
        if (Counter(s.get(), "repl_queue_depth") != 0) return false;
      }
      return true;
    });
  }

  TempDir dir_{"ss-two-site"};
  Site a_, b_;
};

TEST_F(TwoSiteTest, ChangesAndRemovalsCrossBothWaysWithTheirVersions) {
  {
    TestClient c(a_.servers[0]->port());
    ASSERT_EQ(c->put("cart-1", "book", 20, 0, false), thrift::Status::OK);
  }
  const thrift::GetResult here = Get(a_.servers[0].get(), "cart-1");
  ASSERT_TRUE(Eventually([&] { return Get(b_.servers[1].get(), "cart-1").data == "book"; }));
  // Whichever server of B received it, B's Redis gets it (write-behind), so both serve it.
  EXPECT_TRUE(
      Eventually([&] { return Get(b_.servers[0].get(), "cart-1").version == here.version; }));
  EXPECT_TRUE(Eventually([&] {
    return b_.redis.Command("HGET ss:v1:cart-1 v") == std::to_string(here.version);
  })) << "the other site's Redis has it, with the same version";
  {
    TestClient c(b_.servers[1]->port());
    ASSERT_EQ(c->remove("cart-1", 0), thrift::Status::OK);  // sign-out in the other site
  }
  EXPECT_TRUE(Eventually([&] {
    return Get(a_.servers[0].get(), "cart-1").status == thrift::Status::NOT_FOUND;
  })) << "the removal crossed back";
  int64_t applied = 0;
  for (const auto& s : b_.servers) applied += Counter(s.get(), "replica_applied");
  EXPECT_GE(applied, 1);
}

TEST_F(TwoSiteTest, LosingAWholeSiteLosesNoReplicatedSession) {
  constexpr int kSessions = 40;
  for (int i = 0; i < kSessions; ++i) {
    TestClient c(a_.servers[i % 2]->port());
    const std::string id = "user-" + std::to_string(i);
    ASSERT_EQ(c->put(id, "v1", 20, 0, false), thrift::Status::OK);
    ASSERT_EQ(c->put(id, "v2-" + id, 20, 0, false), thrift::Status::OK);
  }
  ASSERT_TRUE(Replicated(a_)) << "the replication queue drains (the replication delay)";
  for (auto& s : a_.servers) s->Stop(SIGKILL);
  a_.redis.Kill();
  for (int i = 0; i < kSessions; ++i) {
    const std::string id = "user-" + std::to_string(i);
    // Held by the server the replica went to, and within B's write-behind window by B's Redis
    // too (from where the other server restores it).
    EXPECT_TRUE(Eventually([&] { return Get(b_.servers[i % 2].get(), id).data == "v2-" + id; }))
        << id << ": " << Get(b_.servers[i % 2].get(), id).data;
  }
}

// Values near the limit: replication calls are cut to fit the receiver's frame limit, so big
// sessions cross like small ones (a call of several of them would be refused for good).
TEST_F(TwoSiteTest, LargeSessionsCrossToo) {
  const std::string big(700 << 10, 'x');
  {
    TestClient c(a_.servers[0]->port());
    for (int i = 0; i < 6; ++i) {
      ASSERT_EQ(c->put("big-" + std::to_string(i), big + std::to_string(i), 20, 0, false),
                thrift::Status::OK);
    }
  }
  ASSERT_TRUE(Replicated(a_));
  for (int i = 0; i < 6; ++i) {
    const std::string id = "big-" + std::to_string(i);
    EXPECT_TRUE(Eventually([&] {
      return Get(b_.servers[0].get(), id).data == big + std::to_string(i);
    })) << id;
  }
}

TEST_F(TwoSiteTest, ConcurrentWritesInBothSitesConverge) {
  for (int round = 0; round < 10; ++round) {
    const std::string id = "hot-" + std::to_string(round);
    std::thread east([&] {
      TestClient c(a_.servers[0]->port());
      for (int i = 0; i < 20; ++i) c->put(id, "east-" + std::to_string(i), 20, 0, false);
    });
    std::thread west([&] {
      TestClient c(b_.servers[0]->port());
      for (int i = 0; i < 20; ++i) c->put(id, "west-" + std::to_string(i), 20, 0, false);
    });
    east.join();
    west.join();
    ASSERT_TRUE(Replicated(a_) && Replicated(b_));
    EXPECT_TRUE(Eventually([&] {
      const thrift::GetResult ra = Get(a_.servers[0].get(), id);
      const thrift::GetResult rb = Get(b_.servers[0].get(), id);
      return ra.data == rb.data && ra.version == rb.version && !ra.data.empty();
    })) << id
        << ": " << Get(a_.servers[0].get(), id).data << " vs " << Get(b_.servers[0].get(), id).data;
  }
}

TEST_F(TwoSiteTest, SessionctlShowsBothSitesAndTheirReplicationQueues) {
  const std::string cmd =
      std::string(SESSIONCTL_BINARY) + " --redis=127.0.0.1:" + std::to_string(a_.redis.port()) +
      " --remote_redis=127.0.0.1:" + std::to_string(b_.redis.port()) + " list 2>&1";
  std::string out;
  ASSERT_TRUE(Eventually([&] {
    out.clear();
    FILE* p = popen(cmd.c_str(), "r");
    char buf[512];
    while (p != nullptr && fgets(buf, sizeof(buf), p) != nullptr) out += buf;
    if (p != nullptr) pclose(p);
    size_t servers = 0;
    for (const Site* site : {&a_, &b_}) {
      for (const auto& s : site->servers) {
        servers += out.find("127.0.0.1:" + std::to_string(s->port())) != std::string::npos;
      }
    }
    return servers == 4;
  })) << out;
  EXPECT_NE(out.find("site east"), std::string::npos) << out;
  EXPECT_NE(out.find("site west"), std::string::npos) << out;
  EXPECT_NE(out.find("REPL_Q"), std::string::npos) << out;
}

// The other site is down: requests here are answered as ever; what cannot be replicated is
// bounded and counted.
TEST(TwoSiteAloneTest, AnUnreachableOtherSiteCostsNoRequest) {
  RedisServer redis;
  ASSERT_TRUE(redis.Start());
  TempDir dir("ss-two-site-alone");
  ServerProcess server;
  ASSERT_TRUE(server.Start({"--dc=east", "--redis=127.0.0.1:" + std::to_string(redis.port()),
                            "--remote_servers=127.0.0.1:1", "--max_replication_bytes=65536",
                            "--data_dir=" + dir.path()}));
  TestClient c(server.port());
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(c->put("s" + std::to_string(i), std::string(1024, 'x'), 20, 0, false),
              thrift::Status::OK);
  }
  thrift::ServerInfo info;
  c->info(info);
  EXPECT_GT(info.counters["repl_dropped"], 0);
  EXPECT_LE(info.counters["repl_queue_bytes"], 65536 + 2048);
  EXPECT_EQ(info.counters["requests_put"], 300);

  // A drain finishes all the same: the other site is best effort, Redis here is what counts.
  TestClient ctl(server.port());
  const std::string id = "127.0.0.1:" + std::to_string(server.port());
  redis.Command("SET ss:fleet:v1:drain:" + id + " 1");
  EXPECT_TRUE(Eventually([&] {
    thrift::ServerInfo now;
    ctl->info(now);
    return now.state == "drained";
  }));
}

}  // namespace
}  // namespace sessionserver
