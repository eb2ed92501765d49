// Memory tier micro-benchmarks: get and put of 1 KB and 8 KB values, 1 and 2 threads, hot keys
// (64 sessions, cache resident) and cold keys (64 MiB of sessions, far beyond the CPU caches).
//
// The peer measured in the same run is the obvious alternative an engineer would write: one
// std::unordered_map<std::string, Item> under one std::mutex (BM_Peer*), doing the same work per
// request (lookup, expiry check, copy out / copy in). Compare the two as ratios; absolute times
// on Debian's libbenchmark are indicative only.
//
//   build/bench/memory_store_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "storage/session_store.h"
#include "util/clock.h"

namespace sessionserver {
namespace {

constexpr size_t kHotKeys = 64;
constexpr size_t kColdBytes = 64 << 20;

size_t KeyCount(bool cold, size_t value_bytes) {
  return cold ? kColdBytes / value_bytes : kHotKeys;
}

std::vector<std::string> MakeIds(size_t n) {
  std::vector<std::string> ids;
  ids.reserve(n);
  for (size_t i = 0; i < n; ++i) ids.push_back("bench-session-" + std::to_string(i * 7919));
  return ids;
}

// Shared by all threads of one benchmark run; built by thread 0.
struct Fixture {
  std::unique_ptr<SessionStore> store;
  std::vector<std::string> ids;
  std::string value;
};
Fixture* g_fixture = nullptr;

void SetUpStore(size_t value_bytes, bool cold) {
  auto* f = new Fixture();
  MemoryStoreOptions options;
  options.capacity_bytes = 512u << 20;
  options.max_value_bytes = 64 << 10;
  Status s;
  f->store = NewMemoryStore(options, SystemClock(), &s);
  f->ids = MakeIds(KeyCount(cold, value_bytes));
  f->value.assign(value_bytes, 'v');
  WriteResult w;
  for (const auto& id : f->ids) f->store->Put(id, f->value, 20, 0, false, &w);
  g_fixture = f;
}

void FinishStore(benchmark::State& state) {
  state.SetBytesProcessed(state.iterations() * state.range(0));
  if (state.thread_index() == 0) {
    delete g_fixture;
    g_fixture = nullptr;
  }
}

// Args: value bytes, cold (0/1).
void BM_StoreGet(benchmark::State& state) {
  if (state.thread_index() == 0) SetUpStore(state.range(0), state.range(1));
  size_t i = state.thread_index() * 7;
  for (auto _ : state) {
    ReadResult r;
    g_fixture->store->Get(g_fixture->ids[i++ % g_fixture->ids.size()], &r);
    benchmark::DoNotOptimize(r.data.data());
  }
  FinishStore(state);
}

void BM_StorePut(benchmark::State& state) {
  if (state.thread_index() == 0) SetUpStore(state.range(0), state.range(1));
  size_t i = state.thread_index() * 7;
  for (auto _ : state) {
    WriteResult w;
    g_fixture->store->Put(g_fixture->ids[i++ % g_fixture->ids.size()], g_fixture->value, 20, 0,
                          false, &w);
  }
  FinishStore(state);
}

// ---- The peer: one map, one mutex ----
struct PeerItem {
  std::string data;
  int64_t expires_at_us;
  int32_t timeout_minutes;
};
struct PeerFixture {
  std::mutex mu;
  std::unordered_map<std::string, PeerItem> map;
  std::vector<std::string> ids;
  std::string value;
};
PeerFixture* g_peer = nullptr;

void SetUpPeer(size_t value_bytes, bool cold) {
  auto* f = new PeerFixture();
  f->ids = MakeIds(KeyCount(cold, value_bytes));
  f->value.assign(value_bytes, 'v');
  for (const auto& id : f->ids) f->map[id] = PeerItem{f->value, INT64_MAX, 20};
  g_peer = f;
}

void FinishPeer(benchmark::State& state) {
  state.SetBytesProcessed(state.iterations() * state.range(0));
  if (state.thread_index() == 0) {
    delete g_peer;
    g_peer = nullptr;
  }
}

void BM_PeerGet(benchmark::State& state) {
  if (state.thread_index() == 0) SetUpPeer(state.range(0), state.range(1));
  size_t i = state.thread_index() * 7;
  for (auto _ : state) {
    std::string out;
    const int64_t now = SystemClock()->NowMicros();
    {
      std::lock_guard<std::mutex> l(g_peer->mu);
      auto it = g_peer->map.find(g_peer->ids[i++ % g_peer->ids.size()]);
      if (it != g_peer->map.end() && it->second.expires_at_us > now) {
        it->second.expires_at_us = now + it->second.timeout_minutes * 60'000'000LL;
        out = it->second.data;
      }
    }
    benchmark::DoNotOptimize(out.data());
  }
  FinishPeer(state);
}

void BM_PeerPut(benchmark::State& state) {
  if (state.thread_index() == 0) SetUpPeer(state.range(0), state.range(1));
  size_t i = state.thread_index() * 7;
  for (auto _ : state) {
    const int64_t now = SystemClock()->NowMicros();
    PeerItem item{g_peer->value, now + 20 * 60'000'000LL, 20};
    std::lock_guard<std::mutex> l(g_peer->mu);
    g_peer->map[g_peer->ids[i++ % g_peer->ids.size()]] = std::move(item);
  }
  FinishPeer(state);
}

void Args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"bytes", "cold"});
  for (int bytes : {1024, 8192}) {
    for (int cold : {0, 1}) b->Args({bytes, cold});
  }
  b->Threads(1)->Threads(2)->UseRealTime();
}

BENCHMARK(BM_StoreGet)->Apply(Args);
BENCHMARK(BM_PeerGet)->Apply(Args);
BENCHMARK(BM_StorePut)->Apply(Args);
BENCHMARK(BM_PeerPut)->Apply(Args);

}  // namespace
}  // namespace sessionserver

BENCHMARK_MAIN();
