// session_loadtest end to end: a small generated trace replayed against a real fleet (two
// session_server over a real Redis) and against plain Redis; the JSON report has the required
// fields, and the fleet loses no update.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "tests/blackbox/server_process.h"
#include "tests/temp_dir.h"
#include "tests/unit/redis_server.h"

namespace sessionserver {
namespace {

// The integer after "key": in `json` (-1 if absent).
long long JsonInt(const std::string& json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return -1;
  return std::atoll(json.c_str() + at + key.size() + 3);
}

int Sh(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

TEST(LoadtestTest, ShortReplayAgainstTheFleetAndPlainRedis) {
  RedisServer redis;
  ASSERT_TRUE(redis.Start());
  TempDir dir("ss-loadtest");
  std::vector<std::unique_ptr<ServerProcess>> servers;
  std::string fleet = "sessionserver://";
  for (int i = 0; i < 2; ++i) {
    servers.push_back(std::make_unique<ServerProcess>());
    ASSERT_TRUE(servers.back()->Start({"--redis=127.0.0.1:" + std::to_string(redis.port()),
                                       "--data_dir=" + dir.path() + "/s" + std::to_string(i)}));
    fleet += (i ? ",127.0.0.1:" : "127.0.0.1:") + std::to_string(servers.back()->port());
  }
  const std::string tool = SESSION_LOADTEST_BINARY;
  const std::string trace = dir.path() + "/trace";
  ASSERT_EQ(Sh(tool + " generate --out=" + trace + " --duration_s=20 --scale=0.0001"), 0);
  const std::string json = dir.path() + "/fleet.json", html = dir.path() + "/fleet.html";
  ASSERT_EQ(Sh(tool + " replay --trace=" + trace + " --target=" + fleet +
               " --speed=10 --max_seconds=30 --json=" + json + " --html=" + html),
            0);
  const std::string report = ReadFile(json);
  EXPECT_GT(JsonInt(report, "ops"), 100) << report;
  EXPECT_EQ(JsonInt(report, "errors"), 0) << report;
  EXPECT_EQ(JsonInt(report, "lost_updates"), 0) << report;
  EXPECT_EQ(JsonInt(report, "stale_reads"), 0) << report;
  EXPECT_EQ(JsonInt(report, "resurrected"), 0) << report;
  for (const char* key : {"throughput_ops_s", "p50", "p99", "p999", "p9999", "max"}) {
    EXPECT_GE(JsonInt(report, key), 0) << key << " missing: " << report;
  }
  EXPECT_NE(ReadFile(html).find("<svg"), std::string::npos) << "the HTML report has its plots";

  const std::string peer = dir.path() + "/redis.json";
  ASSERT_EQ(Sh(tool + " replay --trace=" + trace + " --target=redis://127.0.0.1:" +
               std::to_string(redis.port()) + " --speed=10 --max_seconds=30 --json=" + peer),
            0);
  EXPECT_EQ(JsonInt(ReadFile(peer), "ops"), JsonInt(report, "ops")) << "same trace, same requests";
}

}  // namespace
}  // namespace sessionserver
