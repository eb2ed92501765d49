// The memory tier over the RocksDB disk tier with a working set ten times the memory tier and
// Zipf-like popularity: throughput, latency percentiles for memory hits and disk hits, the memory
// hit ratio and bytes written to disk per put. The same run with a memory tier large enough for
// everything is the peer.
//
//   tiered_bench [sessions=100000] [value_bytes=2048] [ops_per_thread=200000] [threads=2]
//                [write_percent=20] [zipf_s=0.99]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/disk_tier.h"
#include "storage/session_store.h"
#include "util/clock.h"

namespace sessionserver {
namespace {

struct Config {
  int sessions = 100'000;
  int value_bytes = 2048;
  int ops_per_thread = 200'000;
  int threads = 2;
  int write_percent = 20;
  double zipf_s = 0.99;
};

// Zipf over [0, n) by inverse transform on a precomputed CDF.
class Zipf {
 public:
  Zipf(int n, double s) : cdf_(n) {
    double sum = 0;
    for (int i = 0; i < n; ++i) cdf_[i] = (sum += 1.0 / std::pow(i + 1, s));
    for (double& c : cdf_) c /= sum;
  }
  int operator()(std::mt19937_64& rng) const {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return static_cast<int>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

double Percentile(std::vector<int64_t>* v, double p) {
  if (v->empty()) return 0;
  const size_t k = std::min(v->size() - 1, static_cast<size_t>(p * v->size()));
  std::nth_element(v->begin(), v->begin() + k, v->end());
  return (*v)[k] / 1000.0;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The session ids in popularity order are shuffled, so hot ids spread over segments.
std::string Id(int rank) { return "bench-" + std::to_string(rank * 2654435761u % 1000000007u); }

void Run(const Config& cfg, size_t memory_bytes, const char* label) {
  char tmpl[] = "/tmp/ss-tiered-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  RocksDiskTierOptions disk_options;
  disk_options.path = dir + "/db";
  disk_options.capacity_bytes = 16ull << 30;
  Status s;
  auto disk = OpenRocksDiskTier(disk_options, SystemClock(), &s);
  MemoryStoreOptions options;
  options.capacity_bytes = memory_bytes;
  options.disk_tier = disk.get();
  auto store = NewMemoryStore(options, SystemClock(), &s);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    std::exit(1);
  }
  const std::string value(cfg.value_bytes, 'v');
  for (int i = 0; i < cfg.sessions; ++i) {
    WriteResult w;
    store->Put(Id(i), value, 20, 0, false, &w);
  }
  store->Flush(60'000'000);
  const uint64_t disk_bytes_before = disk->GetStats().bytes_written;
  Zipf zipf(cfg.sessions, cfg.zipf_s);
  std::vector<std::vector<int64_t>> mem_lat(cfg.threads), disk_lat(cfg.threads),
      put_lat(cfg.threads);
  std::atomic<uint64_t> puts{0};
  const int64_t start = NowNs();
  std::vector<std::thread> threads;
  for (int t = 0; t < cfg.threads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t + 1);
      for (int i = 0; i < cfg.ops_per_thread; ++i) {
        const std::string id = Id(zipf(rng));
        const bool write = static_cast<int>(rng() % 100) < cfg.write_percent;
        const int64_t t0 = NowNs();
        if (write) {
          WriteResult w;
          store->Put(id, value, 20, 0, false, &w);
          put_lat[t].push_back(NowNs() - t0);
          puts.fetch_add(1, std::memory_order_relaxed);
        } else {
          ReadResult r;
          store->Get(id, &r);
          (r.from_disk_tier ? disk_lat[t] : mem_lat[t]).push_back(NowNs() - t0);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const double seconds = (NowNs() - start) / 1e9;
  store->Flush(60'000'000);
  const uint64_t disk_bytes = disk->GetStats().bytes_written - disk_bytes_before;
  std::vector<int64_t> mem, dsk, put;
  for (int t = 0; t < cfg.threads; ++t) {
    mem.insert(mem.end(), mem_lat[t].begin(), mem_lat[t].end());
    dsk.insert(dsk.end(), disk_lat[t].begin(), disk_lat[t].end());
    put.insert(put.end(), put_lat[t].begin(), put_lat[t].end());
  }
  const double total_ops = static_cast<double>(cfg.threads) * cfg.ops_per_thread;
  std::printf("%s: memory %zu MiB for %.0f MiB of sessions\n", label, memory_bytes >> 20,
              cfg.sessions * (cfg.value_bytes + 30.0) / (1 << 20));
  std::printf("  throughput            %.0f ops/s (%d threads)\n", total_ops / seconds,
              cfg.threads);
  std::printf("  memory hit ratio      %.3f of reads\n",
              mem.size() / static_cast<double>(mem.size() + dsk.size()));
  std::printf("  get, memory hit (us)  p50 %.2f  p99 %.2f  p99.9 %.2f  (%zu)\n",
              Percentile(&mem, 0.5), Percentile(&mem, 0.99), Percentile(&mem, 0.999), mem.size());
  std::printf("  get, disk hit (us)    p50 %.2f  p99 %.2f  p99.9 %.2f  (%zu)\n",
              Percentile(&dsk, 0.5), Percentile(&dsk, 0.99), Percentile(&dsk, 0.999), dsk.size());
  std::printf("  put (us)              p50 %.2f  p99 %.2f  p99.9 %.2f\n", Percentile(&put, 0.5),
              Percentile(&put, 0.99), Percentile(&put, 0.999));
  std::printf("  disk bytes per put    %.0f (value %d)\n",
              puts ? disk_bytes / static_cast<double>(puts) : 0.0, cfg.value_bytes);
  store.reset();
  disk.reset();
  std::system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace
}  // namespace sessionserver

int main(int argc, char** argv) {
  sessionserver::Config cfg;
  if (argc > 1) cfg.sessions = std::atoi(argv[1]);
  if (argc > 2) cfg.value_bytes = std::atoi(argv[2]);
  if (argc > 3) cfg.ops_per_thread = std::atoi(argv[3]);
  if (argc > 4) cfg.threads = std::atoi(argv[4]);
  if (argc > 5) cfg.write_percent = std::atoi(argv[5]);
  if (argc > 6) cfg.zipf_s = std::atof(argv[6]);
  const size_t working_set = static_cast<size_t>(cfg.sessions) * (cfg.value_bytes + 150);
  sessionserver::Run(cfg, std::max<size_t>(working_set / 10, 12 << 20), "tiered (1/10 in memory)");
  sessionserver::Run(cfg, working_set * 2, "all in memory (peer)");
  return 0;
}
