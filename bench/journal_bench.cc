// The journal's hot path in both formats (issue 13: under load, the RocksDB journal took about a
// fifth of the server's CPU): AppendBatch of a group of 8 puts of 2 KiB (what an event loop
// appends per pass), alone and with the flusher's erases (steady state: every group is erased,
// 8 groups at a time, 64 groups after it was appended, as Redis takes the changes). Time is the
// CPU of the whole process (RocksDB's background flushes and compactions included) per group of
// 8; the journal is in a temp dir under /tmp, on the same disk as a data dir would be. Compare
// the formats as ratios.
//
// Also: the resident memory of the log format's index per live entry.
//
//   build/release/bench/journal_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "storage/journal.h"
#include "tests/temp_dir.h"

namespace sessionserver {
namespace {

constexpr int kGroupEntries = 8;
constexpr int kEraseAfterGroups = 64;

std::unique_ptr<Journal> OpenIn(const TempDir& dir, JournalFormat format) {
  JournalOptions options;
  options.path = dir.path() + "/journal";
  Status s;
  std::unique_ptr<Journal> journal = OpenJournal(format, options, &s);
  if (!s.ok()) std::abort();
  return journal;
}

// Groups of 8 puts of 2 KiB under growing sequence numbers.
class Groups {
 public:
  explicit Groups(size_t value_bytes) : value_(value_bytes, 'v') {}

  // The next group; valid until the next call.
  const std::vector<std::pair<uint64_t, const BackingOp*>>& Next() {
    ops_.clear();
    entries_.clear();
    for (int i = 0; i < kGroupEntries; ++i) {
      const uint64_t seq = ++seq_;
      ops_.emplace_back(BackingOp::Kind::kPut,
                        ItemRecord{"bench-session-" + std::to_string(seq % 100'000), value_, 20,
                                   1'000'000'000, seq, false});
    }
    for (int i = 0; i < kGroupEntries; ++i) entries_.emplace_back(seq_ - 7 + i, &ops_[i]);
    return entries_;
  }

 private:
  const std::string value_;
  uint64_t seq_ = 0;
  std::vector<BackingOp> ops_;
  std::vector<std::pair<uint64_t, const BackingOp*>> entries_;
};

void BM_AppendBatch(benchmark::State& state, JournalFormat format) {
  TempDir dir("ss-journal-bench");
  std::unique_ptr<Journal> journal = OpenIn(dir, format);
  Groups groups(2048);
  for (auto _ : state) {
    if (!journal->AppendBatch(groups.Next()).ok()) std::abort();
  }
  state.SetItemsProcessed(state.iterations() * kGroupEntries);
}

void BM_AppendAndErase(benchmark::State& state, JournalFormat format) {
  TempDir dir("ss-journal-bench");
  std::unique_ptr<Journal> journal = OpenIn(dir, format);
  Groups groups(2048);
  std::deque<JournalKey> appended;
  std::vector<JournalKey> erase;
  int64_t groups_appended = 0;
  for (auto _ : state) {
    const auto& group = groups.Next();
    if (!journal->AppendBatch(group).ok()) std::abort();
    for (const auto& [seq, op] : group) appended.emplace_back(seq, op->item.id);
    if (++groups_appended % 8 != 0 ||
        appended.size() < static_cast<size_t>(kEraseAfterGroups * kGroupEntries)) {
      continue;
    }
    erase.assign(appended.begin(), appended.begin() + 8 * kGroupEntries);
    appended.erase(appended.begin(), appended.begin() + 8 * kGroupEntries);
    if (!journal->Erase(erase).ok()) std::abort();
  }
  state.SetItemsProcessed(state.iterations() * kGroupEntries);
}

// Bytes the heap has handed out and not taken back (glibc).
int64_t HeapBytesInUse() { return static_cast<int64_t>(mallinfo2().uordblks); }

// Memory of the log format's index per live entry: 200k entries (session ids of 19-20 bytes,
// values of 64 bytes) kept, heap in use before and after. Run once.
void BM_LogIndexBytesPerEntry(benchmark::State& state) {
  constexpr int kGroups = 25'000;
  for (auto _ : state) {
    TempDir dir("ss-journal-bench");
    std::unique_ptr<Journal> journal = OpenIn(dir, JournalFormat::kLog);
    Groups groups(64);
    const int64_t before = HeapBytesInUse();
    for (int i = 0; i < kGroups; ++i) {
      if (!journal->AppendBatch(groups.Next()).ok()) std::abort();
    }
    state.counters["bytes_per_entry"] = static_cast<double>(HeapBytesInUse() - before) /
                                        (static_cast<double>(kGroups) * kGroupEntries);
  }
}

BENCHMARK_CAPTURE(BM_AppendBatch, log, JournalFormat::kLog)->MeasureProcessCPUTime();
BENCHMARK_CAPTURE(BM_AppendBatch, rocksdb, JournalFormat::kRocksDb)->MeasureProcessCPUTime();
BENCHMARK_CAPTURE(BM_AppendAndErase, log, JournalFormat::kLog)->MeasureProcessCPUTime();
BENCHMARK_CAPTURE(BM_AppendAndErase, rocksdb, JournalFormat::kRocksDb)->MeasureProcessCPUTime();
BENCHMARK(BM_LogIndexBytesPerEntry)->Iterations(1);

}  // namespace
}  // namespace sessionserver

BENCHMARK_MAIN();
