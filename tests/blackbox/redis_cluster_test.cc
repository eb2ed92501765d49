// The real session_server with --redis_cluster against a real three-master Redis Cluster
// (tests/unit/redis_cluster.h): changes are written behind to the masters of their slots, keep
// reaching the cluster after a slot moved (MOVED), a second server restores every session from
// the cluster, and sessionctl --redis_cluster lists and drains servers (the registry's keys are
// routed one by one, to whichever nodes serve their slots). Every wait is a bounded poll.
#include "tests/unit/redis_cluster.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "tests/blackbox/server_process.h"
#include "tests/temp_dir.h"

namespace sessionserver {
namespace {

using Counters = std::map<std::string, int64_t>;
constexpr int kSessions = 200;

Counters GetCounters(int port) {
  TestClient c(port);
  thrift::ServerInfo info;
  c->info(info);
  return info.counters;
}

std::string Id(int i) { return "cs" + std::to_string(i); }
std::string Value(int i, int round) { return Id(i) + "#" + std::to_string(round); }

class RedisClusterServerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(cluster_.Start()); }

  std::vector<std::string> Flags(const std::string& name) {
    return {"--redis_cluster=" + cluster_.Seeds(), "--data_dir=" + dir_.path() + "/" + name,
            "--write_behind_delay_ms=10", "--heartbeat_ms=200"};
  }
  // Polls every 20 ms for up to 20 s until the server's write-behind queue is empty.
  static bool Drained(int port) {
    return RedisCluster::Poll(20'000, [&] { return GetCounters(port)["wb_queue_depth"] == 0; });
  }
  static void PutAll(int port, int round) {
    TestClient c(port);
    for (int i = 0; i < kSessions; ++i) {
      ASSERT_EQ(c->put(Id(i), Value(i, round), 30, 0, false), thrift::Status::OK) << Id(i);
    }
  }
  std::string Ctl(const std::string& args) {
    return CommandOutput(std::string(SESSIONCTL_BINARY) + " --redis_cluster=" + cluster_.Seeds() +
                         " " + args);
  }

  RedisCluster cluster_;
  TempDir dir_{"ss-cluster-bb"};
};

TEST_F(RedisClusterServerTest, WritesBehindAcrossAReshardAndASecondServerRestores) {
  ServerProcess a;
  ASSERT_TRUE(a.Start(Flags("a")));
  PutAll(a.port(), 1);
  ASSERT_TRUE(Drained(a.port()));
  for (int node = 0; node < cluster_.size(); ++node) {
    EXPECT_GT(cluster_.KeyCount(node), kSessions / 6) << "node " << node << " holds its share";
  }

  // Move the slot of the first session (and whatever else it holds) to another master; the
  // server's map still names the old owner, so its next writes there meet MOVED.
  const std::string key = "ss:v1:" + Id(0);
  const int slot = std::stoi(cluster_.Command(0, {"CLUSTER", "KEYSLOT", key}));
  const int to = (cluster_.Owner(slot) + 1) % cluster_.size();
  ASSERT_TRUE(cluster_.MigrateSlot(slot, to));
  ASSERT_EQ(cluster_.Command(to, {"EXISTS", key}), "1");
  PutAll(a.port(), 2);
  ASSERT_TRUE(Drained(a.port()));
  Counters c = GetCounters(a.port());
  EXPECT_GE(c["redis_redirects_moved"], 1);
  EXPECT_GE(c["redis_slot_map_refreshes"], 1);
  EXPECT_EQ(c["redis_errors"], 0);

  ServerProcess b;  // empty tiers: every session comes from the cluster
  ASSERT_TRUE(b.Start(Flags("b")));
  TestClient cb(b.port());
  int wrong = 0;
  for (int i = 0; i < kSessions; ++i) {
    thrift::GetResult r;
    cb->get(r, Id(i));
    if (r.status != thrift::Status::OK || r.data != Value(i, 2)) {
      if (++wrong <= 5) ADD_FAILURE() << Id(i) << ": status " << r.status << " data " << r.data;
    }
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(GetCounters(b.port())["redis_read_hits"], kSessions);
}

TEST_F(RedisClusterServerTest, SessionctlListsAndDrainsServersOnTheCluster) {
  ServerProcess a, b;
  ASSERT_TRUE(a.Start(Flags("a")));
  ASSERT_TRUE(b.Start(Flags("b")));
  const std::string id_a = "127.0.0.1:" + std::to_string(a.port());
  const std::string id_b = "127.0.0.1:" + std::to_string(b.port());
  ASSERT_TRUE(RedisCluster::Poll(5000, [&] {
    const std::string list = Ctl("list");
    return list.find(id_a) != std::string::npos && list.find(id_b) != std::string::npos;
  })) << Ctl("list");
  EXPECT_EQ(Ctl("drain " + id_a),
            "drain " + id_a + ": the server picks it up with its next heartbeat\n");
  EXPECT_TRUE(RedisCluster::Poll(5000, [&] {
    TestClient c(a.port());
    thrift::ServerInfo info;
    c->info(info);
    return info.state != "active";
  }));
  EXPECT_TRUE(RedisCluster::Poll(5000, [&] {
    return Ctl("stats").find("servers 2 (active 1, draining 1)") != std::string::npos;
  })) << Ctl("stats");
}

}  // namespace
}  // namespace sessionserver
