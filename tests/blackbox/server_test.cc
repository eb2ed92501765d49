// Black-box tests: the real session_server binary, driven over Thrift on a loopback port.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/blackbox/server_process.h"

namespace sessionserver {
namespace {

using thrift::GetResult;
using thrift::InvalidRequest;
namespace ts = thrift;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start({"--enable_debug_clock"})); }
  ServerProcess server_;
};

TEST_F(ServerTest, WholeProtocolCycle) {
  TestClient c(server_.port());
  GetResult r;
  c->get(r, "sid-1");
  EXPECT_EQ(r.status, ts::Status::NOT_FOUND);

  // First request of a new session: create uninitialized, then lock.
  EXPECT_EQ(c->put("sid-1", "", 20, 0, true), ts::Status::OK);
  c->getExclusive(r, "sid-1");
  ASSERT_EQ(r.status, ts::Status::OK);
  EXPECT_TRUE(r.initializeItem);
  const int64_t cookie = r.lockCookie;

  GetResult other;
  c->getExclusive(other, "sid-1");
  EXPECT_EQ(other.status, ts::Status::LOCKED);
  EXPECT_EQ(other.lockCookie, cookie);
  EXPECT_GE(other.lockAgeMs, 0);
  c->get(other, "sid-1");
  EXPECT_EQ(other.status, ts::Status::LOCKED);

  EXPECT_EQ(c->put("sid-1", "cart=1", 30, cookie + 1, false), ts::Status::LOCKED);
  EXPECT_EQ(c->put("sid-1", "cart=1", 30, cookie, false), ts::Status::OK);
  c->get(r, "sid-1");
  ASSERT_EQ(r.status, ts::Status::OK);
  EXPECT_EQ(r.data, "cart=1");
  EXPECT_EQ(r.timeoutMinutes, 30);
  EXPECT_FALSE(r.initializeItem);
  const int64_t version = r.version;

  c->getExclusive(r, "sid-1");
  ASSERT_EQ(r.status, ts::Status::OK);
  EXPECT_GT(r.lockCookie, cookie);
  EXPECT_EQ(c->releaseExclusive("sid-1", r.lockCookie + 1), ts::Status::LOCKED);
  EXPECT_EQ(c->releaseExclusive("sid-1", r.lockCookie), ts::Status::OK);
  EXPECT_EQ(c->resetTimeout("sid-1"), ts::Status::OK);
  c->get(r, "sid-1");
  EXPECT_EQ(r.version, version) << "lock, release and touch are not changes";

  EXPECT_EQ(c->remove("sid-1", 0), ts::Status::OK);
  EXPECT_EQ(c->remove("sid-1", 0), ts::Status::NOT_FOUND);
  EXPECT_EQ(c->resetTimeout("sid-1"), ts::Status::NOT_FOUND);
}

TEST_F(ServerTest, SlidingExpiryWithTheDebugClock) {
  TestClient c(server_.port());
  ASSERT_EQ(c->put("short", "v", 1, 0, false), ts::Status::OK);
  ASSERT_EQ(c->put("long", "v", 10, 0, false), ts::Status::OK);
  c->debugAdvanceClock(50'000);
  EXPECT_EQ(c->resetTimeout("short"), ts::Status::OK);
  c->debugAdvanceClock(50'000);
  GetResult r;
  c->get(r, "short");
  EXPECT_EQ(r.status, ts::Status::OK) << "100 s after the put, 50 s after the last touch";
  c->debugAdvanceClock(61'000);
  c->get(r, "short");
  EXPECT_EQ(r.status, ts::Status::NOT_FOUND);
  c->get(r, "long");
  EXPECT_EQ(r.status, ts::Status::OK);

  ts::ServerInfo info;
  c->info(info);
  EXPECT_GE(info.counters["expirations"], 1);
}

TEST_F(ServerTest, ServerDropsAStaleLock) {
  TestClient c(server_.port());
  ASSERT_EQ(c->put("s", "v", 20, 0, false), ts::Status::OK);
  GetResult held, r;
  c->getExclusive(held, "s");
  ASSERT_EQ(held.status, ts::Status::OK);
  c->debugAdvanceClock(119'000);
  c->getExclusive(r, "s");
  ASSERT_EQ(r.status, ts::Status::LOCKED) << "119 s: the lock still holds";
  EXPECT_EQ(r.lockCookie, held.lockCookie);
  EXPECT_GE(r.lockAgeMs, 119'000);
  c->debugAdvanceClock(2'000);
  c->getExclusive(r, "s");
  ASSERT_EQ(r.status, ts::Status::OK) << "default --max_lock_age_seconds is 120";
  EXPECT_NE(r.lockCookie, held.lockCookie);
  EXPECT_EQ(c->put("s", "late", 20, held.lockCookie, false), ts::Status::LOCKED)
      << "the dropped holder's save is refused";
  EXPECT_EQ(c->put("s", "new", 20, r.lockCookie, false), ts::Status::OK);
}

TEST_F(ServerTest, InfoReportsIdentityAndCounters) {
  TestClient c(server_.port());
  c->put("a", "12345", 20, 0, false);
  GetResult r;
  c->get(r, "a");
  c->get(r, "missing");
  ts::ServerInfo info;
  c->info(info);
  EXPECT_EQ(info.serverId, "127.0.0.1:" + std::to_string(server_.port()));
  EXPECT_EQ(info.state, "active");
  EXPECT_GE(info.uptimeSeconds, 0);
  EXPECT_EQ(info.counters["requests_put"], 1);
  EXPECT_EQ(info.counters["requests_get"], 2);
  EXPECT_EQ(info.counters["hits"], 1);
  EXPECT_EQ(info.counters["misses"], 1);
  EXPECT_EQ(info.counters["items"], 1);
  EXPECT_GT(info.counters["bytes"], 5);
  for (const char* name : {"evictions", "expirations", "lock_waits", "capacity_bytes"}) {
    EXPECT_TRUE(info.counters.count(name)) << name;
  }
}

// replicate (from the other data centre) answers one ReplicaResult per op, in order, and
// rejects what can never apply (a kind the IDL does not define, a bad version or id) without
// failing the call.
TEST_F(ServerTest, ReplicateAnswersOneResultPerOp) {
  const int64_t expires_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count() +
                             int64_t{20} * 60 * 1'000'000;
  auto op = [&](const std::string& id, int32_t kind, int64_t version) {
    ts::ReplicaOp o;
    o.sessionId = id;
    o.kind = kind;
    if (kind == ts::ReplicaKind::PUT) o.data = "v" + std::to_string(version);
    o.timeoutMinutes = 20;
    o.version = version;
    o.expiresAtUs = expires_us;
    return o;
  };
  TestClient c(server_.port());
  std::vector<int32_t> results;
  c->replicate(results,
               {op("r", ts::ReplicaKind::PUT, 5), op("r", ts::ReplicaKind::PUT, 4),
                op("never-stored", ts::ReplicaKind::TOUCH, 3), op("r", 7, 6),
                op("r", ts::ReplicaKind::PUT, 0), op("bad id", ts::ReplicaKind::PUT, 8)},
               "other-dc");
  EXPECT_EQ(results,
            (std::vector<int32_t>{ts::ReplicaResult::APPLIED, ts::ReplicaResult::STALE,
                                  ts::ReplicaResult::IGNORED, ts::ReplicaResult::REJECTED,
                                  ts::ReplicaResult::REJECTED, ts::ReplicaResult::REJECTED}));
  GetResult r;
  c->get(r, "r");
  EXPECT_EQ(r.data, "v5");
  EXPECT_EQ(r.version, 5);
}

TEST_F(ServerTest, ConcurrentClientsLoseNoUpdateUnderExclusiveLocks) {
  {
    TestClient c(server_.port());
    ASSERT_EQ(c->put("counter", "0", 20, 0, false), ts::Status::OK);
  }
  constexpr int kClients = 6, kIncrements = 50;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&] {
      TestClient c(server_.port());
      for (int done = 0; done < kIncrements;) {
        GetResult r;
        c->getExclusive(r, "counter");
        if (r.status == ts::Status::LOCKED) continue;
        if (c->put("counter", std::to_string(std::stoi(r.data) + 1), 20, r.lockCookie, false) !=
            ts::Status::OK) {
          failures.fetch_add(1);
        }
        ++done;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  TestClient c(server_.port());
  GetResult r;
  c->get(r, "counter");
  EXPECT_EQ(r.data, std::to_string(kClients * kIncrements));
}

TEST_F(ServerTest, SigtermStopsCleanly) {
  { TestClient c(server_.port()); }
  const int status = server_.Stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ServerFlagsTest, DebugClockIsRefusedUnlessEnabled) {
  ServerProcess server;
  ASSERT_TRUE(server.Start());
  TestClient c(server.port());
  EXPECT_THROW(c->debugAdvanceClock(1000), InvalidRequest);
  GetResult r;
  c->get(r, "x");  // the connection still works after the refusal
  EXPECT_EQ(r.status, ts::Status::NOT_FOUND);
}

TEST(ServerFlagsTest, FlagfileSetsLimits) {
  char path[] = "/tmp/ss-flagfile-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string flags = "--max_value_bytes=100\n--server_id=from-flagfile\n";
  ASSERT_EQ(write(fd, flags.data(), flags.size()), static_cast<ssize_t>(flags.size()));
  close(fd);
  ServerProcess server;
  ASSERT_TRUE(server.Start({std::string("--flagfile=") + path}));
  unlink(path);
  TestClient c(server.port());
  EXPECT_EQ(c->put("s", std::string(100, 'x'), 20, 0, false), ts::Status::OK);
  EXPECT_THROW(c->put("s", std::string(101, 'x'), 20, 0, false), InvalidRequest);
  ts::ServerInfo info;
  c->info(info);
  EXPECT_EQ(info.serverId, "from-flagfile");
}

// --io_threads no longer does anything (one IO thread: docs/OPERATIONS.md), but a flagfile of
// an earlier version that sets it must still start the server, with a warning.
TEST(ServerFlagsTest, TheRetiredIoThreadsFlagStillStartsWithAWarning) {
  ServerProcess server;
  ASSERT_TRUE(server.Start({"--io_threads=2"}));
  TestClient c(server.port());
  EXPECT_EQ(c->put("s", "v", 20, 0, false), ts::Status::OK);
  EXPECT_NE(ReadFile(server.log_path()).find("--io_threads=2 is ignored"), std::string::npos);
}

TEST(ServerFlagsTest, BadFlagsFailStartUpWithAClearMessage) {
  ServerProcess server;
  EXPECT_FALSE(server.Start({"--max_value_bytes=0"}));
  const std::string log = ReadFile(server.log_path());
  EXPECT_NE(log.find("--max_value_bytes must be 1..33554432"), std::string::npos) << log;
  ServerProcess server2;
  EXPECT_FALSE(server2.Start({"--memory_bytes=1000"}));
  const std::string log2 = ReadFile(server2.log_path());
  EXPECT_NE(log2.find("memory capacity 1000 bytes is below"), std::string::npos) << log2;
}

}  // namespace
}  // namespace sessionserver
