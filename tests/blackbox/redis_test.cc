// The real session_server with --redis against a real redis-server (tests/unit/redis_server.h):
// what the write-behind leaves in Redis (keys, fields, TTLs), coalescing of a hot session, a
// second server restoring sessions from Redis, Redis killed and hung (SIGSTOP) under load, and a
// server killed with -9 while Redis could take nothing (its journal replays the changes); beyond
// those, the queue over its byte bound with a small memory tier during a hang, and the SIGTERM
// flush.
//
// "Drained" below means info() reports wb_queue_depth == 0: every acknowledged change is in
// Redis. Every wait is a poll with short sleeps up to a bound; nothing sleeps for seconds.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/blackbox/server_process.h"
#include "tests/temp_dir.h"
#include "tests/unit/redis_server.h"

namespace sessionserver {
namespace {

using thrift::GetResult;
namespace ts = thrift;
using Counters = std::map<std::string, int64_t>;
using Clock = std::chrono::steady_clock;

constexpr int64_t kMinute = 60'000;  // ms
constexpr int kDrainTimeoutMs = 20'000;

Counters GetCounters(int port) {
  TestClient c(port);
  ts::ServerInfo info;
  c->info(info);
  return info.counters;
}

// Polls the server's counters every 20 ms until `done` holds or `timeout_ms` passes; returns
// whether it held. The last counters read are left in *last.
bool WaitFor(int port, const std::function<bool(Counters&)>& done, Counters* last,
             int timeout_ms = kDrainTimeoutMs) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    *last = GetCounters(port);
    if (done(*last)) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Waits (bounded) until every acknowledged change of the server is in Redis. On failure, says
// what the queue, Redis and journal counters were.
::testing::AssertionResult Drained(int port, int timeout_ms = kDrainTimeoutMs) {
  Counters c;
  if (WaitFor(
          port, [](Counters& now) { return now["wb_queue_depth"] == 0; }, &c, timeout_ms)) {
    return ::testing::AssertionSuccess();
  }
  std::string counters;
  for (const auto& [name, value] : c) {
    if (name.rfind("wb_", 0) == 0 || name.rfind("redis_", 0) == 0 ||
        name.rfind("journal_", 0) == 0) {
      counters += " " + name + "=" + std::to_string(value);
    }
  }
  return ::testing::AssertionFailure()
         << "write-behind queue not drained within " << timeout_ms << " ms:" << counters;
}

// Waits (bounded) until `cond` returns true, polling every 2 ms.
bool WaitUntil(const std::function<bool()>& cond, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!cond()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

int64_t ToInt(const std::string& s) {
  try {
    return std::stoll(s);
  } catch (...) {
    ADD_FAILURE() << "not an integer: \"" << s << "\"";
    return -1;
  }
}

// A value with binary bytes (NULs, high bytes), distinct per (id, round).
std::string BinaryValue(const std::string& id, int round) {
  std::string v = id + "#" + std::to_string(round) + '\0';
  for (int i = 0; i < 300; ++i) v.push_back(static_cast<char>((i * 7 + round) & 0xff));
  return v;
}

// Puts to `sessions` ids round-robin as fast as it can (with a small pause), from its own thread
// and connection, recording each session's last acknowledged value, until Stop() or a bound of
// puts. Any failure (a non-OK status, an exception such as a 5 s client timeout) ends it and is
// reported by error().
class Writer {
 public:
  Writer(int port, std::string prefix, int sessions)
      : port_(port), prefix_(std::move(prefix)), last_(sessions) {}
  ~Writer() { Stop(); }

  std::string Id(int i) const { return prefix_ + std::to_string(i); }
  int sessions() const { return static_cast<int>(last_.size()); }

  // Creates every session, sequentially from the caller's thread. Call it while Redis is up: the
  // server reads Redis before it creates an id it does not hold, and fails the request if Redis
  // cannot be read (so during an outage only sessions it holds can be written).
  void CreateAll() {
    TestClient c(port_);
    for (int i = 0; i < sessions(); ++i) {
      const std::string v = BinaryValue(Id(i), 0);
      ASSERT_EQ(c->put(Id(i), v, 30, 0, false), ts::Status::OK) << Id(i);
      last_[i] = v;
    }
  }
  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  int64_t puts() const { return puts_.load(); }
  bool failed() const { return failed_.load(); }
  std::string error() const {
    std::lock_guard<std::mutex> l(mu_);
    return error_;
  }
  int64_t max_latency_ms() const { return max_latency_ms_.load(); }
  // After Stop(): the last acknowledged value of session i.
  const std::string& last(int i) const { return last_[i]; }

  // Waits (bounded) until at least `n` puts were acknowledged; false if the writer failed or the
  // bound passed.
  bool WaitForPuts(int64_t n, int timeout_ms) {
    return WaitUntil([&] { return puts() >= n || failed(); }, timeout_ms) && !failed();
  }

 private:
  static constexpr int64_t kMaxPuts = 100'000;

  void Run() {
    try {
      TestClient c(port_);
      for (int64_t n = 0; !stop_ && n < kMaxPuts; ++n) {
        const int i = static_cast<int>(n % sessions());
        const std::string v = BinaryValue(Id(i), static_cast<int>(n / sessions()) + 1);
        const auto start = Clock::now();
        const ts::Status::type s = c->put(Id(i), v, 30, 0, false);
        const int64_t ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
        if (ms > max_latency_ms_) max_latency_ms_ = ms;
        if (s != ts::Status::OK) {
          Fail("put " + Id(i) + " answered " + std::to_string(s));
          return;
        }
        last_[i] = v;
        ++puts_;
        std::this_thread::sleep_for(std::chrono::microseconds(300));
      }
    } catch (const std::exception& e) {
      Fail(std::string("put failed: ") + e.what() + " after " + std::to_string(puts()) + " puts");
    }
  }
  void Fail(const std::string& why) {
    std::lock_guard<std::mutex> l(mu_);
    error_ = why;
    failed_ = true;
  }

  const int port_;
  const std::string prefix_;
  std::vector<std::string> last_;  // written by the thread only while it runs
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> puts_{0};
  std::atomic<int64_t> max_latency_ms_{0};
  std::atomic<bool> failed_{false};
  mutable std::mutex mu_;
  std::string error_;
};

// The start of a value, up to its first NUL, for messages.
std::string Head(const std::string& v) { return v.substr(0, std::min(v.find('\0'), size_t{40})); }

// Gets sessions id(0..count-1) from the server on `port`: each must be OK with value(i). Reports
// the first few that are not.
void ExpectServes(int port, int count, const std::function<std::string(int)>& id,
                  const std::function<std::string(int)>& value, const std::string& who) {
  TestClient c(port);
  int wrong = 0;
  for (int i = 0; i < count; ++i) {
    GetResult r;
    c->get(r, id(i));
    const std::string want = value(i);
    if (r.status == ts::Status::OK && r.data == want) continue;
    if (++wrong <= 5) {
      ADD_FAILURE() << who << ", " << id(i) << ": status " << r.status << ", got " << r.data.size()
                    << " bytes \"" << Head(r.data) << "\", want " << want.size() << " bytes \""
                    << Head(want) << "\"";
    }
  }
  EXPECT_EQ(wrong, 0) << "of " << count << " sessions " << who
                      << " does not serve with their last acknowledged value";
}

class RedisTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis_.Start()) << "redis-server did not start"; }

  std::string RedisFlag() const { return "--redis=127.0.0.1:" + std::to_string(redis_.port()); }
  // Flags of a server with its own data dir `name` under this test's temp dir.
  std::vector<std::string> Flags(const std::string& name,
                                 std::vector<std::string> extra = {}) const {
    std::vector<std::string> flags = {RedisFlag(), "--data_dir=" + dir_.path() + "/" + name};
    flags.insert(flags.end(), extra.begin(), extra.end());
    return flags;
  }
  // A second server with an empty data dir of its own, on the same Redis.
  std::unique_ptr<ServerProcess> StartFresh() {
    auto server = std::make_unique<ServerProcess>();
    const bool started = server->Start(Flags("fresh-" + std::to_string(++fresh_servers_)));
    EXPECT_TRUE(started);
    if (!started) return nullptr;
    return server;
  }
  std::string Key(const std::string& id) { return "ss:v1:" + id; }
  // Calls of a command Redis has run (INFO commandstats), 0 if never.
  int64_t RedisCalls(const std::string& command) {
    const std::string stats = redis_.Command("INFO commandstats");
    const std::string tag = "cmdstat_" + command + ":calls=";
    const size_t at = stats.find(tag);
    if (at == std::string::npos) return 0;
    return ToInt(stats.substr(at + tag.size(), stats.find(',', at) - at - tag.size()));
  }
  // Every session of `writer` is served by a server with an empty data dir with its last
  // acknowledged value.
  void ExpectServedByFreshServer(const Writer& writer) {
    auto b = StartFresh();
    ASSERT_NE(b, nullptr);
    ExpectServes(
        b->port(), writer.sessions(), [&](int i) { return writer.Id(i); },
        [&](int i) { return writer.last(i); }, "server B");
  }
  void KillNineWithPendingChangesThenRestart(const std::string& name,
                                             const std::vector<std::string>& before,
                                             const std::vector<std::string>& after);

  RedisServer redis_;
  TempDir dir_{"ss-redis"};
  int fresh_servers_ = 0;
};

// 1. What the write-behind leaves in Redis: ss:v1:<id> with v (the item's version) and r, its
// key's expiry the session's; a removal leaves a tombstone (t=1, no r) for at least an hour; a
// resetTimeout moves the key's expiry with the server's clock.
TEST_F(RedisTest, ContentsAndTtlsInRedis) {
  ServerProcess a;
  ASSERT_TRUE(a.Start(Flags("a", {"--enable_debug_clock"})));
  TestClient c(a.port());

  // put: the hash with v = the version get reports, r present, no t, PTTL = the 20 min timeout.
  ASSERT_EQ(c->put("live", "value-1", 20, 0, false), ts::Status::OK);
  GetResult r;
  c->get(r, "live");
  ASSERT_EQ(r.status, ts::Status::OK);
  ASSERT_TRUE(Drained(a.port()));
  EXPECT_EQ(redis_.Command("EXISTS " + Key("live")), "1");
  EXPECT_EQ(redis_.Command("TYPE " + Key("live")), "hash");
  EXPECT_EQ(redis_.Command("HGET " + Key("live") + " v"), std::to_string(r.version));
  EXPECT_EQ(redis_.Command("HEXISTS " + Key("live") + " r"), "1");
  EXPECT_EQ(redis_.Command("HEXISTS " + Key("live") + " t"), "0");
  const int64_t pttl = ToInt(redis_.Command("PTTL " + Key("live")));
  EXPECT_GE(pttl, 19 * kMinute);
  EXPECT_LE(pttl, 20 * kMinute + 6'000);

  // remove: a tombstone at a newer version, without r, kept at least an hour.
  ASSERT_EQ(c->put("gone", "value-2", 20, 0, false), ts::Status::OK);
  ASSERT_TRUE(Drained(a.port()));
  const int64_t put_version = ToInt(redis_.Command("HGET " + Key("gone") + " v"));
  ASSERT_EQ(c->remove("gone", 0), ts::Status::OK);
  ASSERT_TRUE(Drained(a.port()));
  EXPECT_EQ(redis_.Command("HGET " + Key("gone") + " t"), "1");
  EXPECT_EQ(redis_.Command("HEXISTS " + Key("gone") + " r"), "0");
  EXPECT_GT(ToInt(redis_.Command("HGET " + Key("gone") + " v")), put_version);
  EXPECT_GE(ToInt(redis_.Command("PTTL " + Key("gone"))), 59 * kMinute)
      << "a tombstone lives at least one hour (docs/REDIS_SCHEMA.md)";

  // resetTimeout after the server's clock moved 5 minutes: the key's expiry moves by about that.
  const int64_t before = ToInt(redis_.Command("PEXPIRETIME " + Key("live")));
  ASSERT_GT(before, 0);
  c->debugAdvanceClock(5 * kMinute);
  ASSERT_EQ(c->resetTimeout("live"), ts::Status::OK);
  ASSERT_TRUE(Drained(a.port()));
  const int64_t after = ToInt(redis_.Command("PEXPIRETIME " + Key("live")));
  EXPECT_GE(after - before, 5 * kMinute - 1'000);
  EXPECT_LE(after - before, 5 * kMinute + 10'000);
  EXPECT_EQ(redis_.Command("HGET " + Key("live") + " v"), std::to_string(r.version))
      << "a touch does not change the version";
}

// 2. 200 puts to one session in quick succession with a 500 ms window: a handful of Redis writes,
// and the last value is what another server restores.
// startSession creates and locks a new session without asking Redis (the id is fresh), and
// the new session reaches Redis like any other change.
TEST_F(RedisTest, StartSessionCreatesAndLocksWithoutReadingRedis) {
  ServerProcess a;
  ASSERT_TRUE(a.Start(Flags("a")));
  TestClient c(a.port());
  GetResult r;
  c->startSession(r, "fresh-session-1", 20);
  ASSERT_EQ(r.status, ts::Status::OK);
  EXPECT_TRUE(r.initializeItem);
  EXPECT_GT(r.lockCookie, 0);
  EXPECT_EQ(r.data, "");
  GetResult again;
  c->startSession(again, "fresh-session-1", 20);  // a retry: the lock is held
  EXPECT_EQ(again.status, ts::Status::LOCKED);
  EXPECT_EQ(again.lockCookie, r.lockCookie);
  EXPECT_THROW(c->startSession(again, "fresh-session-2", 0), ts::InvalidRequest);
  EXPECT_EQ(c->put("fresh-session-1", "cart=1", 20, r.lockCookie, false), ts::Status::OK);
  Counters counters;
  EXPECT_TRUE(WaitFor(
      a.port(), [](Counters& x) { return x["wb_queue_depth"] == 0; }, &counters));
  EXPECT_EQ(counters["redis_reads"], 0) << "a fresh id needs no read";
  EXPECT_EQ(counters["requests_start_session"], 3);
  EXPECT_NE(redis_.Command("HGET ss:v1:fresh-session-1 v"), "(nil)");
}

TEST_F(RedisTest, HotSessionCoalescesIntoFewWrites) {
  ServerProcess a;
  ASSERT_TRUE(a.Start(Flags("a", {"--write_behind_delay_ms=500"})));
  constexpr int kPuts = 200;
  const auto start = Clock::now();
  {
    TestClient c(a.port());
    for (int n = 0; n < kPuts; ++n) {
      ASSERT_EQ(c->put("hot", BinaryValue("hot", n), 20, 0, false), ts::Status::OK) << n;
    }
  }
  const int64_t put_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  ASSERT_TRUE(Drained(a.port()));
  Counters counters = GetCounters(a.port());
  EXPECT_GE(counters["redis_ops_applied"], 1);
  EXPECT_LE(counters["redis_ops_applied"], 5) << kPuts << " puts took " << put_ms << " ms";
  EXPECT_GE(counters["wb_coalesced"], kPuts - 5);
  EXPECT_LE(RedisCalls("evalsha"), 5) << "Redis's own count of script calls";

  auto b = StartFresh();
  ASSERT_NE(b, nullptr);
  TestClient c(b->port());
  GetResult r;
  c->get(r, "hot");
  ASSERT_EQ(r.status, ts::Status::OK);
  EXPECT_EQ(r.data, BinaryValue("hot", kPuts - 1));
  EXPECT_EQ(r.timeoutMinutes, 20);
}

// 3. Server B, with an empty data dir, serves every session server A wrote (data and timeout)
// from Redis; a session removed on A is NOT_FOUND on B.
TEST_F(RedisTest, SecondServerRestoresSessionsFromRedis) {
  constexpr int kSessions = 50;
  auto id = [](int i) { return "restore-" + std::to_string(i); };
  auto removed = [](int i) { return i == 7 || i == 31; };
  std::vector<int64_t> versions(kSessions);
  ServerProcess a;
  ASSERT_TRUE(a.Start(Flags("a")));
  {
    TestClient c(a.port());
    for (int i = 0; i < kSessions; ++i) {
      ASSERT_EQ(c->put(id(i), BinaryValue(id(i), 1), 10 + i, 0, false), ts::Status::OK) << i;
      GetResult r;
      c->get(r, id(i));
      versions[i] = r.version;
    }
    for (int i = 0; i < kSessions; ++i) {
      if (removed(i)) {
        ASSERT_EQ(c->remove(id(i), 0), ts::Status::OK) << i;
      }
    }
    // Uninitialized items (InitializeItem): one never read on A, one whose flag A's first read
    // cleared.
    ASSERT_EQ(c->put("uninit-unread", "", 15, 0, true), ts::Status::OK);
    ASSERT_EQ(c->put("uninit-read", "", 15, 0, true), ts::Status::OK);
    GetResult r;
    c->get(r, "uninit-read");
    ASSERT_EQ(r.status, ts::Status::OK);
    EXPECT_TRUE(r.initializeItem);
  }
  ASSERT_TRUE(Drained(a.port()));

  auto b = StartFresh();
  ASSERT_NE(b, nullptr);
  const int64_t restored_before = GetCounters(b->port())["restored_from_redis"];
  TestClient c(b->port());
  int served = 0;
  for (int i = 0; i < kSessions; ++i) {
    GetResult r;
    c->get(r, id(i));
    if (removed(i)) {
      EXPECT_EQ(r.status, ts::Status::NOT_FOUND) << id(i) << " was removed on server A";
      continue;
    }
    ASSERT_EQ(r.status, ts::Status::OK) << id(i);
    EXPECT_EQ(r.data, BinaryValue(id(i), 1)) << id(i);
    EXPECT_EQ(r.timeoutMinutes, 10 + i) << id(i);
    EXPECT_EQ(r.version, versions[i]) << id(i);
    EXPECT_FALSE(r.initializeItem) << id(i);
    ++served;
  }
  EXPECT_EQ(served, kSessions - 2);
  EXPECT_EQ(GetCounters(b->port())["restored_from_redis"] - restored_before, served);

  GetResult r;
  c->get(r, "uninit-unread");
  ASSERT_EQ(r.status, ts::Status::OK);
  EXPECT_TRUE(r.initializeItem) << "no server has reported the uninitialized item yet";
  EXPECT_EQ(r.timeoutMinutes, 15);
  c->get(r, "uninit-unread");
  EXPECT_FALSE(r.initializeItem) << "reported once";
  c->get(r, "uninit-read");
  ASSERT_EQ(r.status, ts::Status::OK);
  EXPECT_FALSE(r.initializeItem) << "server A already reported it";
}

// 4. Redis killed while a client keeps putting: every put is still acknowledged promptly (the
// server does not wait for Redis); Redis restarts empty (it keeps no data), and since every
// session is written again during the outage, every last acknowledged value must reach the new
// Redis: server B serves them all. Nothing acknowledged is lost.
TEST_F(RedisTest, RedisKilledUnderLoadLosesNoAcknowledgedChange) {
  ServerProcess a;
  ASSERT_TRUE(a.Start(Flags("a")));
  Writer writer(a.port(), "killed-", 100);
  ASSERT_NO_FATAL_FAILURE(writer.CreateAll());
  ASSERT_TRUE(Drained(a.port()));
  writer.Start();
  ASSERT_TRUE(writer.WaitForPuts(300, 20'000)) << writer.error();

  redis_.Kill();
  const int64_t at_kill = writer.puts();
  // Every session written twice after the kill (round-robin), puts acknowledged meanwhile.
  ASSERT_TRUE(writer.WaitForPuts(at_kill + 2 * writer.sessions() + 50, 30'000)) << writer.error();
  // The outage lasts a few failed rounds (backoff 50, 100, 200 ms ...).
  Counters counters;
  EXPECT_TRUE(WaitFor(
      a.port(), [](Counters& c) { return c["wb_queue_depth"] > 0 && c["wb_retries"] >= 3; },
      &counters, 20'000))
      << "wb_queue_depth=" << counters["wb_queue_depth"] << " wb_retries=" << counters["wb_retries"]
      << " redis_errors=" << counters["redis_errors"];
  EXPECT_GT(counters["redis_errors"], 0);

  ASSERT_TRUE(redis_.Start()) << "redis-server did not restart on port " << redis_.port();
  const int64_t at_restart = writer.puts();
  ASSERT_TRUE(writer.WaitForPuts(at_restart + writer.sessions(), 30'000)) << writer.error();
  writer.Stop();
  EXPECT_FALSE(writer.failed()) << writer.error();
  EXPECT_LT(writer.max_latency_ms(), 2'000) << "a put waited for the dead Redis";

  ASSERT_TRUE(Drained(a.port()));
  EXPECT_GE(GetCounters(a.port())["redis_reconnects"], 1) << "to the restarted Redis";
  ExpectServedByFreshServer(writer);
}

// 5. Redis hung (SIGSTOP) while a client keeps putting: puts keep completing, info() answers and
// shows the queue growing and the failed round trips; after SIGCONT everything drains and server
// B serves every last acknowledged value.
TEST_F(RedisTest, RedisPausedUnderLoadThenDrains) {
  ServerProcess a;
  ASSERT_TRUE(a.Start(Flags("a")));
  Writer writer(a.port(), "paused-", 100);
  ASSERT_NO_FATAL_FAILURE(writer.CreateAll());
  ASSERT_TRUE(Drained(a.port()));
  writer.Start();
  ASSERT_TRUE(writer.WaitForPuts(300, 20'000)) << writer.error();

  redis_.Pause();
  const int64_t at_pause = writer.puts();
  Counters counters;
  EXPECT_TRUE(WaitFor(
      a.port(),
      [](Counters& c) {
        return c["wb_queue_depth"] > 0 && c["wb_retries"] >= 2 && c["redis_errors"] > 0;
      },
      &counters, 20'000))
      << "wb_queue_depth=" << counters["wb_queue_depth"] << " wb_retries=" << counters["wb_retries"]
      << " redis_errors=" << counters["redis_errors"];
  EXPECT_GT(counters["wb_oldest_pending_age_ms"], 0);
  const bool wrote_during_pause = writer.WaitForPuts(at_pause + 2 * writer.sessions() + 50, 30'000);
  redis_.Resume();
  ASSERT_TRUE(wrote_during_pause) << writer.error();

  const int64_t at_resume = writer.puts();
  ASSERT_TRUE(writer.WaitForPuts(at_resume + writer.sessions(), 30'000)) << writer.error();
  writer.Stop();
  EXPECT_FALSE(writer.failed()) << writer.error();

  ASSERT_TRUE(Drained(a.port()));
  ExpectServedByFreshServer(writer);
}

// 6. Server A killed with -9 while Redis (hung) could take none of its last changes: restarted on
// the same data dir, A replays its journal into Redis, and server B then serves every session's
// last acknowledged value. `before` and `after` are A's extra flags before and after the restart;
// `name` its data dir.
void RedisTest::KillNineWithPendingChangesThenRestart(const std::string& name,
                                                      const std::vector<std::string>& before,
                                                      const std::vector<std::string>& after) {
  constexpr int kSessions = 300;
  constexpr int kRemoveEvery = 10;  // and every 10th session is removed while Redis hangs
  auto id = [](int i) { return "journal-" + std::to_string(i); };
  {
    ServerProcess a;
    ASSERT_TRUE(a.Start(Flags(name, before)));
    TestClient c(a.port());
    // Created while Redis is up (a put of an id the server does not hold reads Redis first).
    for (int i = 0; i < kSessions; ++i) {
      ASSERT_EQ(c->put(id(i), BinaryValue(id(i), 1), 30, 0, false), ts::Status::OK) << i;
    }
    ASSERT_TRUE(Drained(a.port()));

    redis_.Pause();
    for (int i = 0; i < kSessions; ++i) {
      ASSERT_EQ(c->put(id(i), BinaryValue(id(i), 2), 30, 0, false), ts::Status::OK) << i;
    }
    for (int i = 0; i < kSessions; i += kRemoveEvery) {
      ASSERT_EQ(c->remove(id(i), 0), ts::Status::OK) << i;
    }
    const Counters counters = GetCounters(a.port());
    EXPECT_GT(counters.at("wb_queue_depth"), 0);
    EXPECT_GE(counters.at("journal_appends"), 2 * kSessions);
    a.Stop(SIGKILL);
    redis_.Resume();
  }

  ServerProcess restarted;
  ASSERT_TRUE(restarted.Start(Flags(name, after)));
  Counters counters;
  EXPECT_TRUE(WaitFor(
      restarted.port(),
      [](Counters& c) { return c["wb_recovered"] > 0 && c["wb_queue_depth"] == 0; }, &counters))
      << "wb_recovered=" << counters["wb_recovered"]
      << " wb_queue_depth=" << counters["wb_queue_depth"];
  EXPECT_GE(counters["wb_recovered"], kSessions);

  // Sessions 1..9, 11..19, ...: the last put; 0, 10, 20, ...: removed.
  auto kept = [&](int i) { return id(i + 1 + i / (kRemoveEvery - 1)); };
  const int kept_count = kSessions - kSessions / kRemoveEvery;
  auto last = [&](int i) { return BinaryValue(kept(i), 2); };
  ExpectServes(restarted.port(), kept_count, kept, last, "restarted server A");
  auto b = StartFresh();
  ASSERT_NE(b, nullptr);
  ExpectServes(b->port(), kept_count, kept, last, "server B");
  TestClient c(b->port());
  for (int i = 0; i < kSessions; i += kRemoveEvery) {
    GetResult r;
    c->get(r, id(i));
    EXPECT_EQ(r.status, ts::Status::NOT_FOUND) << id(i) << " was removed on server A";
  }
}

TEST_F(RedisTest, KillNineWithPendingChangesReplaysJournal) {
  KillNineWithPendingChangesThenRestart("a", {}, {});
}

// The same across a change of --journal_format: the restarted server moves the other format's
// entries into its own journal first.
TEST_F(RedisTest, KillNineThenRestartWithTheOtherJournalFormat) {
  KillNineWithPendingChangesThenRestart("rocksdb-then-log", {"--journal_format=rocksdb"}, {});
  if (HasFatalFailure()) return;
  KillNineWithPendingChangesThenRestart("log-then-rocksdb", {}, {"--journal_format=rocksdb"});
}

// Beyond the brief's list: a hung Redis while the queue is over --max_pending_bytes (queued values
// live only in the journal) and the memory tier is small (sessions leave memory before Redis has
// them): server A still serves every last value (from memory, the queue, the journal or the disk
// tier), and after Redis resumes, server B serves them too.
TEST_F(RedisTest, QueueOverflowAndEvictionWhileRedisHangs) {
  constexpr int kSessions = 300;
  auto id = [](int i) { return "overflow-" + std::to_string(i); };
  auto value = [&](int i, int round) { return BinaryValue(id(i), round) + std::string(1700, 'p'); };
  ServerProcess a;
  ASSERT_TRUE(a.Start(Flags(
      "a", {"--memory_bytes=262144", "--max_value_bytes=16384", "--max_pending_bytes=65536"})));
  TestClient c(a.port());
  for (int i = 0; i < kSessions; ++i) {
    ASSERT_EQ(c->put(id(i), value(i, 1), 30, 0, false), ts::Status::OK) << i;
  }
  ASSERT_TRUE(Drained(a.port()));

  redis_.Pause();
  for (int round = 2; round <= 3; ++round) {
    for (int i = 0; i < kSessions; ++i) {
      ASSERT_EQ(c->put(id(i), value(i, round), 30, 0, false), ts::Status::OK) << round << " " << i;
    }
  }
  Counters counters = GetCounters(a.port());
  EXPECT_GT(counters["wb_overflowed"], 0) << "600 KB of changes over a 64 KiB queue bound";
  EXPECT_GT(counters["spills"], 0) << "600 KB of sessions in a 256 KiB memory tier";
  EXPECT_EQ(counters["wb_dropped"], 0);
  auto last = [&](int i) { return value(i, 3); };
  // Until the disk writer has taken everything staged: a session still staged would be pulled
  // back from there, not read from the queue (event loops do not wait for the writer).
  ASSERT_TRUE(WaitFor(
      a.port(), [](Counters& x) { return x["staged_items"] == 0; }, &counters));
  ExpectServes(a.port(), kSessions, id, last, "server A while Redis hangs");
  EXPECT_GT(GetCounters(a.port())["restored_from_queue"], 0)
      << "sessions that left memory before Redis had them come back from the queue";

  redis_.Resume();
  ASSERT_TRUE(Drained(a.port()));
  counters = GetCounters(a.port());
  EXPECT_EQ(counters["wb_dropped"], 0);
  EXPECT_EQ(counters["wb_journal_errors"], 0);
  auto b = StartFresh();
  ASSERT_NE(b, nullptr);
  ExpectServes(b->port(), kSessions, id, last, "server B");
}

// Beyond the brief's list: SIGTERM writes what is queued to Redis before exiting, even changes
// whose write-behind window (60 s) is far from over.
TEST_F(RedisTest, SigtermFlushesTheQueueToRedis) {
  constexpr int kSessions = 100;
  auto id = [](int i) { return "sigterm-" + std::to_string(i); };
  auto value = [&](int i) { return BinaryValue(id(i), 1); };
  {
    ServerProcess a;
    ASSERT_TRUE(a.Start(Flags("a", {"--write_behind_delay_ms=60000"})));
    {
      TestClient c(a.port());
      for (int i = 0; i < kSessions; ++i) {
        ASSERT_EQ(c->put(id(i), value(i), 30, 0, false), ts::Status::OK) << i;
      }
    }
    const Counters counters = GetCounters(a.port());
    EXPECT_EQ(counters.at("wb_queue_depth"), kSessions);
    EXPECT_EQ(counters.at("redis_ops_applied"), 0);
    const int status = a.Stop(SIGTERM);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  // Session keys only (the fleet registry lives in the same Redis under its own prefix).
  EXPECT_EQ(redis_.Command("EVAL return#redis.call('KEYS','ss:v1:*') 0"),
            std::to_string(kSessions));
  auto b = StartFresh();
  ASSERT_NE(b, nullptr);
  ExpectServes(b->port(), kSessions, id, value, "server B");
}

}  // namespace
}  // namespace sessionserver
