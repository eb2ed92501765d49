// The backing store on a single redis-server vs a three-master Redis Cluster, both started on
// loopback by the bench, measured in the same run (BENCHMARKS.md):
//   1. write throughput: batches of 512 puts (1 KiB values, distinct sessions) through
//      BackingStore::Apply from one thread, as the write-behind flusher sends them;
//   2. read latency: BackingStore::Get of existing sessions, one thread.
//
//   cluster_bench [repetitions=3] [sessions=100000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "storage/backing_store.h"
#include "tests/unit/redis_cluster.h"
#include "tests/unit/redis_server.h"
#include "util/clock.h"

namespace sessionserver {
namespace {

using SteadyClock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void Die(const std::string& why) {
  std::fprintf(stderr, "cluster_bench: %s\n", why.c_str());
  std::exit(1);
}

std::unique_ptr<BackingStore> Open(const RedisOptions& options) {
  Status s;
  std::unique_ptr<BackingStore> store = NewRedisBackingStore(options, SystemClock(), &s);
  if (!s.ok()) Die(s.ToString());
  return store;
}

ItemRecord Item(int i, const std::string& value, uint64_t version) {
  return ItemRecord{"bench-" + std::to_string(i),
                    value,
                    20,
                    SystemClock()->NowMicros() + 20 * 60'000'000LL,
                    version,
                    false};
}

// Puts `sessions` sessions in batches of 512; returns puts per second.
double WriteRate(BackingStore* store, int sessions, uint64_t version) {
  const std::string value(1024, 'c');
  const auto start = SteadyClock::now();
  std::vector<BackingOutcome> outcomes;
  for (int first = 0; first < sessions; first += 512) {
    std::vector<BackingOp> ops;
    for (int i = first; i < std::min(sessions, first + 512); ++i) {
      ops.emplace_back(BackingOp::Kind::kPut, Item(i, value, version));
    }
    Status s = store->Apply(ops, &outcomes);
    if (!s.ok()) Die(s.ToString());
  }
  return sessions / std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// Reads 20k of the sessions; returns the median read latency in µs.
double ReadLatencyUs(BackingStore* store, int sessions) {
  std::vector<double> us;
  for (int n = 0; n < 20'000; ++n) {
    const std::string id = "bench-" + std::to_string((n * 7919) % sessions);
    ItemRecord item;
    bool found = false;
    const auto start = SteadyClock::now();
    Status s = store->Get(id, &item, &found);
    us.push_back(std::chrono::duration<double, std::micro>(SteadyClock::now() - start).count());
    if (!s.ok() || !found) Die("read of " + id + " failed: " + s.ToString());
  }
  return Median(us);
}

int Main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 3;
  const int sessions = argc > 2 ? std::atoi(argv[2]) : 100'000;
  RedisServer single;
  RedisCluster cluster;
  if (!single.Start() || !cluster.Start()) Die("redis-server did not start");
  RedisOptions single_options;
  single_options.port = single.port();
  RedisOptions cluster_options;
  if (!ParseHostPortList(cluster.Seeds(), &cluster_options.cluster_seeds).ok()) Die("seeds");

  std::vector<double> write[2], read[2];
  for (int r = 0; r < reps; ++r) {
    for (int c = 0; c < 2; ++c) {  // interleaved, so both see the same machine
      std::unique_ptr<BackingStore> store = Open(c == 0 ? single_options : cluster_options);
      write[c].push_back(WriteRate(store.get(), sessions, r + 1));
      read[c].push_back(ReadLatencyUs(store.get(), sessions));
      const BackingStoreStats st = store->GetStats();
      if (st.redirects_moved + st.redirects_ask + st.errors > 0 || st.slot_map_refreshes > 2) {
        Die("unexpected redirects, errors or map refreshes in a quiet cluster");
      }
    }
  }
  std::printf("%d sessions, 1 KiB values, batches of 512, one thread; medians of %d runs\n",
              sessions, reps);
  std::printf("                     puts/s   read p50 us\n");
  std::printf("single Redis      %9.0f   %8.1f\n", Median(write[0]), Median(read[0]));
  std::printf("cluster, 3 masters %8.0f   %8.1f\n", Median(write[1]), Median(read[1]));
  std::printf("cluster / single   %8.2fx  %8.2fx\n", Median(write[1]) / Median(write[0]),
              Median(read[1]) / Median(read[0]));
  return 0;
}

}  // namespace
}  // namespace sessionserver

int main(int argc, char** argv) { return sessionserver::Main(argc, argv); }
