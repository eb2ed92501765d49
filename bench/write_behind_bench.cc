// Write-behind to a real redis-server (started on a free loopback port): the three figures of
// BENCHMARKS.md for issue 4, each with its peer measured in the same run.
//   1. Redis writes per application write, hot-session workload (peer: a 0 ms window).
//   2. put latency p50/p99/p99.9 (peers: standalone, Redis without journal, each journal format
//      with and without fsync).
//   3. drain time of a backlog of pending changes after a Redis outage (SIGSTOP).
//
//   write_behind_bench [repetitions=3] [backlog=100000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "storage/backing_store.h"
#include "storage/journal.h"
#include "storage/session_store.h"
#include "storage/write_behind.h"
#include "tests/temp_dir.h"
#include "tests/unit/redis_server.h"
#include "util/clock.h"

namespace sessionserver {
namespace {

constexpr int64_t kFlushTimeoutUs = 600'000'000;

struct Setup {
  bool redis = true;
  bool journal = false;
  bool sync = false;
  int64_t delay_us = 100'000;
  size_t max_pending_bytes = 64u << 20;  // the server's default
  JournalFormat format = JournalFormat::kLog;
};

// A store as session_server builds it, over `redis`.
class Node {
 public:
  Node(const Setup& setup, int redis_port, const std::string& dir) {
    Status s;
    if (setup.redis) {
      RedisOptions ro;
      ro.port = redis_port;
      backing_ = NewRedisBackingStore(ro, SystemClock(), &s);
      WriteBehindOptions wo;
      wo.delay_us = setup.delay_us;
      wo.max_pending_bytes = setup.max_pending_bytes;
      if (setup.journal) {
        JournalOptions jo;
        jo.sync = setup.sync;
        journal_ = OpenJournalIn(dir, setup.format, jo, &s);
        if (!s.ok()) Die(s);
        wo.journal = journal_.get();
      }
      queue_ = std::make_unique<WriteBehind>(backing_.get(), SystemClock(), wo);
    }
    MemoryStoreOptions mo;
    mo.capacity_bytes = 1ull << 30;
    mo.write_behind = queue_.get();
    mo.backing_store = backing_.get();
    store_ = NewMemoryStore(mo, SystemClock(), &s);
    if (!s.ok()) Die(s);
  }
  SessionStore* store() { return store_.get(); }
  WriteBehind* queue() { return queue_.get(); }
  BackingStore* backing() { return backing_.get(); }

  static void Die(const Status& s) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    std::exit(1);
  }

 private:
  std::unique_ptr<BackingStore> backing_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<WriteBehind> queue_;
  std::unique_ptr<SessionStore> store_;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Percentile(std::vector<int64_t>* v, double p) {
  std::sort(v->begin(), v->end());
  return static_cast<double>((*v)[static_cast<size_t>(p * static_cast<double>(v->size() - 1))]);
}

std::string Id(int i) { return "bench-session-" + std::to_string(i); }

void Put(SessionStore* store, const std::string& id, const std::string& value) {
  WriteResult w;
  Status s = store->Put(id, value, 20, 0, false, &w);
  if (!s.ok()) Node::Die(s);
}

// 1. A web app's hot sessions: 100 sessions, every request reads its session and a third write
//    it, 100k requests as fast as one thread can; Redis writes counted by the Redis scripts.
double RedisWritesPerAppWrite(int redis_port, int64_t delay_us, const std::string& dir) {
  Setup setup;
  setup.delay_us = delay_us;
  Node node(setup, redis_port, dir);
  std::mt19937_64 rng(42);
  const std::string value(2048, 'v');
  uint64_t app_writes = 0;
  for (int i = 0; i < 100'000; ++i) {
    const std::string id = Id(static_cast<int>(rng() % 100));
    ReadResult r;
    node.store()->Get(id, &r);
    if (r.outcome != Outcome::kOk || rng() % 3 == 0) {
      Put(node.store(), id, value);
      ++app_writes;
    }
  }
  if (!node.queue()->Flush(kFlushTimeoutUs).ok()) Node::Die(Status::Internal("flush"));
  const BackingStoreStats b = node.backing()->GetStats();
  return static_cast<double>(b.ops_applied + b.ops_stale) / static_cast<double>(app_writes);
}

// 2. Latency of 50k puts (2 KiB) updating 10k existing sessions, one thread. (A put of a session
//    this server does not hold first asks Redis for it: one round trip, not measured here.)
std::vector<double> PutLatency(int redis_port, const Setup& setup, const std::string& dir) {
  Node node(setup, redis_port, dir);
  const std::string value(2048, 'p');
  for (int i = 0; i < 10'000; ++i) Put(node.store(), Id(i), value);
  std::vector<int64_t> us;
  us.reserve(50'000);
  for (int i = 0; i < 50'000; ++i) {
    const std::string id = Id(i % 10'000);
    const auto start = std::chrono::steady_clock::now();
    Put(node.store(), id, value);
    us.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::steady_clock::now() - start)
                     .count());
  }
  if (node.queue() != nullptr) node.queue()->Flush(kFlushTimeoutUs);
  return {Percentile(&us, 0.5) / 1000, Percentile(&us, 0.99) / 1000, Percentile(&us, 0.999) / 1000};
}

// 3. Redis stopped while `backlog` sessions (1 KiB) are written; seconds from its return until
//    the queue is empty.
double DrainSeconds(RedisServer* redis, int backlog, bool journal, JournalFormat format,
                    const std::string& dir) {
  Setup setup;
  setup.journal = journal;
  setup.format = format;
  // Without a journal the queue would drop what exceeds its bound: give it room for all.
  if (!journal) setup.max_pending_bytes = 1u << 30;
  Node node(setup, redis->port(), dir);
  const std::string value(1024, 'd');
  for (int i = 0; i < backlog; ++i) Put(node.store(), Id(i), value);  // sessions exist in Redis
  node.queue()->Flush(kFlushTimeoutUs);
  redis->Pause();
  for (int i = 0; i < backlog; ++i) Put(node.store(), Id(i), value + "2");
  redis->Resume();
  const auto start = std::chrono::steady_clock::now();
  if (!node.queue()->Flush(kFlushTimeoutUs).ok()) Node::Die(Status::Internal("drain"));
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int Main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 3;
  const int backlog = argc > 2 ? std::atoi(argv[2]) : 100'000;
  RedisServer redis;
  if (!redis.Start()) Node::Die(Status::Unavailable("redis-server did not start"));
  TempDir dir("ss-wb-bench");
  auto fresh_dir = [&](int n) {
    const std::string d = dir.path() + "/" + std::to_string(n);
    std::filesystem::create_directories(d);
    return d;
  };
  int run = 0;

  std::printf(
      "1. Redis writes per application write (100 hot sessions, 100k requests, 1/3 write)\n");
  for (int64_t delay_ms : {100, 0}) {
    std::vector<double> ratios;
    for (int r = 0; r < reps; ++r) {
      redis.Command("FLUSHALL");
      ratios.push_back(RedisWritesPerAppWrite(redis.port(), delay_ms * 1000, fresh_dir(++run)));
    }
    std::printf("   window %3lld ms: %.4f Redis writes per app write (median of %d)\n",
                static_cast<long long>(delay_ms), Median(ratios), reps);
  }

  std::printf("2. put latency, 2 KiB values, one thread, 50k puts (us; medians of %d runs)\n",
              reps);
  struct Mode {
    const char* name;
    Setup setup;
  };
  constexpr size_t kBound = 64u << 20;
  constexpr JournalFormat kLog = JournalFormat::kLog, kRocks = JournalFormat::kRocksDb;
  const Mode modes[] = {
      {"standalone (no Redis)", {false, false, false, 100'000, kBound, kLog}},
      {"Redis, journal off", {true, false, false, 100'000, kBound, kLog}},
      {"Redis, log journal (default)", {true, true, false, 100'000, kBound, kLog}},
      {"Redis, log journal, fsync", {true, true, true, 100'000, kBound, kLog}},
      {"Redis, rocksdb journal", {true, true, false, 100'000, kBound, kRocks}},
      {"Redis, rocksdb journal, fsync", {true, true, true, 100'000, kBound, kRocks}}};
  for (const Mode& m : modes) {
    std::vector<double> p50, p99, p999;
    for (int r = 0; r < reps; ++r) {
      redis.Command("FLUSHALL");
      const auto v = PutLatency(redis.port(), m.setup, fresh_dir(++run));
      p50.push_back(v[0]);
      p99.push_back(v[1]);
      p999.push_back(v[2]);
    }
    std::printf("   %-30s p50 %7.2f  p99 %8.2f  p99.9 %8.2f\n", m.name, Median(p50), Median(p99),
                Median(p999));
  }

  std::printf("3. drain of %d pending changes (1 KiB) after Redis returns (s; median of %d)\n",
              backlog, reps);
  struct DrainMode {
    const char* name;
    bool journal;
    JournalFormat format;
  };
  for (const DrainMode& m : {DrainMode{"log", true, JournalFormat::kLog},
                             DrainMode{"rocksdb", true, JournalFormat::kRocksDb},
                             DrainMode{"off", false, JournalFormat::kLog}}) {
    std::vector<double> secs;
    for (int r = 0; r < reps; ++r) {
      redis.Command("FLUSHALL");
      secs.push_back(DrainSeconds(&redis, backlog, m.journal, m.format, fresh_dir(++run)));
    }
    std::printf("   journal %-7s: %.2f s (%.0f changes/s)%s\n", m.name, Median(secs),
                backlog / Median(secs),
                m.journal ? " (values past 64 MiB read back from the journal)"
                          : " (queue bound raised to 1 GiB)");
  }
  return 0;
}

}  // namespace
}  // namespace sessionserver

int main(int argc, char** argv) { return sessionserver::Main(argc, argv); }
