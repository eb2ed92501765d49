// Restarts of the real session_server on the same --data_dir: SIGTERM writes the memory tier to
// disk and a restart serves every session; after kill -9, whatever reached RocksDB is served and
// nothing is corrupt. Also: a data dir that cannot be opened leaves the server serving from memory.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/blackbox/server_process.h"
#include "tests/temp_dir.h"

namespace sessionserver {
namespace {

using thrift::GetResult;
namespace ts = thrift;

constexpr int kSessions = 600;

std::string Id(int i) { return "restart-session-" + std::to_string(i); }
std::string Value(int i) { return "cart:" + std::to_string(i) + std::string(2000, 'x'); }

class RestartTest : public ::testing::Test {
 protected:
  // A 512 KiB memory tier, so most of the 1.2 MB of sessions live on disk.
  std::vector<std::string> Flags() const {
    return {"--data_dir=" + dir_.path() + "/data", "--memory_bytes=524288",
            "--max_value_bytes=16384"};
  }
  void PutAll(int port) {
    TestClient c(port);
    for (int i = 0; i < kSessions; ++i) {
      ASSERT_EQ(c->put(Id(i), Value(i), 20, 0, false), ts::Status::OK) << i;
    }
  }
  std::map<std::string, int64_t> Counters(int port) {
    TestClient c(port);
    ts::ServerInfo info;
    c->info(info);
    return info.counters;
  }

  TempDir dir_{"ss-restart"};
};

TEST_F(RestartTest, SigtermThenRestartServesEverySession) {
  {
    ServerProcess server;
    ASSERT_TRUE(server.Start(Flags()));
    PutAll(server.port());
    auto counters = Counters(server.port());
    EXPECT_GT(counters["spills"], 0) << "the memory tier is smaller than the sessions";
    EXPECT_EQ(counters["disk_available"], 1);
    const int status = server.Stop(SIGTERM);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
  }
  ServerProcess server;
  ASSERT_TRUE(server.Start(Flags()));
  TestClient c(server.port());
  for (int i = 0; i < kSessions; ++i) {
    GetResult r;
    c->get(r, Id(i));
    ASSERT_EQ(r.status, ts::Status::OK) << i;
    ASSERT_EQ(r.data, Value(i)) << i;
  }
  auto counters = Counters(server.port());
  EXPECT_EQ(counters["hits_disk"] + counters["hits_memory"], kSessions);
  EXPECT_GT(counters["hits_disk"], 0);
}

TEST_F(RestartTest, AfterKillNineWhatReachedDiskIsServed) {
  int in_memory_at_kill = 0;
  {
    ServerProcess server;
    ASSERT_TRUE(server.Start(Flags()));
    PutAll(server.port());
    // Wait (bounded) until the spill writer has written everything evicted so far.
    std::map<std::string, int64_t> counters;
    for (int i = 0; i < 500; ++i) {
      counters = Counters(server.port());
      if (counters["staged_items"] == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_EQ(counters["staged_items"], 0);
    in_memory_at_kill = static_cast<int>(counters["items"]);
    server.Stop(SIGKILL);
  }
  ServerProcess server;
  ASSERT_TRUE(server.Start(Flags()));
  TestClient c(server.port());
  int served = 0;
  for (int i = 0; i < kSessions; ++i) {
    GetResult r;
    c->get(r, Id(i));
    if (r.status == ts::Status::OK) {
      ++served;
      ASSERT_EQ(r.data, Value(i)) << "never a corrupt or wrong value";
    }
  }
  EXPECT_GE(served, kSessions - in_memory_at_kill)
      << "every evicted session was on disk when the server died";
  EXPECT_EQ(Counters(server.port())["disk_corrupt_records"], 0);
}

TEST_F(RestartTest, UnusableDataDirLeavesTheServerServingFromMemory) {
  ServerProcess server;
  ASSERT_TRUE(server.Start({"--data_dir=/proc/cannot/create/this"}));
  TestClient c(server.port());
  EXPECT_EQ(c->put("s", "v", 20, 0, false), ts::Status::OK);
  GetResult r;
  c->get(r, "s");
  EXPECT_EQ(r.data, "v");
  EXPECT_EQ(Counters(server.port())["disk_available"], 0);
}

}  // namespace
}  // namespace sessionserver
