// The write-behind queue's pending index (issue 13): today's one mutex vs a sharded mutex map vs
// libcuckoo, under the access pattern of storage/write_behind.cc with the journal on (default).
//
// Request threads (->Threads) issue requests in visits of 8 to one session (a page and its
// calls); each request is, at random: 60% a get (enqueues a touch), 25% a put (enqueues the put,
// its value pinned by a shared_ptr as the memory tier does, then the journal's Persist
// acknowledges it), 10% a memory miss of an id nobody queued (Lookup, absent), 5% a memory miss
// of a session id (Lookup, maybe queued). 100,000 sessions, 43-character base64url ids, values
// 1-5 KiB. One flusher thread takes due changes in queue order in batches of up to 512,
// waits a simulated Redis round trip off-CPU, then settles the batch (erases what was written).
// The flush window is scaled with the request rate: 1 ms here at ~1-3 M requests/s holds about as
// many changes (1-2 thousand) as the default 100 ms at a server's ~10-20 k requests/s.
// A request thread that finds the queue over 16,384 changes waits for the flusher (`stalled`: the
// share of its time), so a flusher that falls behind costs throughput.
//
// Implementations (one template interface: Enqueue, Persisted, Lookup; TakeBatch, Finish):
//   OneMutex: today's: std::unordered_map + std::deque order under one Mutex.
//   Sharded:  16 copies of that, chosen by the id's hash; the flusher visits them in turn.
//   Cuckoo:   libcuckoo::cuckoohash_map for the index; 16 order queues (Mutex + deque) chosen by
//             the id's hash; a queue's lock is taken only when an id enters the index.
//
// Run each implementation in a process of its own (bench/pending_index_bench.sh does, in rounds):
//   build/release/bench/pending_index_bench --benchmark_filter='<Sharded>'
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <libcuckoo/cuckoohash_map.hh>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "storage/backing_store.h"
#include "storage/journal.h"
#include "util/clock.h"
#include "util/mutex.h"

namespace sessionserver {
namespace {

constexpr int64_t kDelayUs = 1'000;  // flush window (scaled, see above)
constexpr size_t kMaxBatchOps = 512;
constexpr auto kApplyTime = std::chrono::microseconds(50);  // a Redis round trip, off-CPU
constexpr auto kIdleTime = std::chrono::microseconds(100);
constexpr size_t kSessions = 100'000;
constexpr int kVisitRequests = 8;
constexpr size_t kMaxQueued = 16'384;  // ~10x the steady depth
constexpr uint64_t kCheckEvery = 1'024;
constexpr size_t kValues = 64;
constexpr int kShardBits = 4;
constexpr size_t kShards = size_t{1} << kShardBits;

size_t ShardOf(std::string_view id) {
  return std::hash<std::string_view>{}(id) >> (64 - kShardBits);
}

// ---- What all three share: WriteBehind's Pending, its coalescing and its batches ----

struct Pending {
  BackingOp op;
  int64_t first_enqueued_us = 0;
  uint64_t queued_seq = 0;  // identifies its order slot
  uint64_t seq = 0;         // changes with every change folded in
  bool in_flight = false;
  int unpersisted = 0;
  std::vector<uint64_t> journaled;
};

struct Slot {
  std::string id;
  uint64_t queued_seq;
};

struct Batch {
  std::vector<BackingOp> ops;
  std::vector<uint64_t> seqs;
  std::vector<uint8_t> parts;  // the shard or order queue each op came from
};

size_t Bytes(const BackingOp& op) { return op.item.id.size() + op.data().size() + 64; }

// A change of an id not queued (WriteBehind::Add); a put or remove is journaled under `seq`.
Pending NewPending(BackingOp op, uint64_t seq, int64_t now_us) {
  Pending p;
  p.first_enqueued_us = now_us;
  p.queued_seq = p.seq = seq;
  if (op.kind != BackingOp::Kind::kTouch) {
    p.unpersisted = 1;
    p.journaled.push_back(seq);
  }
  p.op = std::move(op);
  return p;
}

// Folds `op` into the change queued for its id (WriteBehind::Add's rules). Returns the change in
// queued bytes.
int64_t Fold(Pending* p, BackingOp op, uint64_t seq) {
  if (op.kind == BackingOp::Kind::kTouch) {
    if (op.item.version == p->op.item.version && p->op.kind != BackingOp::Kind::kRemove) {
      p->op.item.expires_at_us = std::max(p->op.item.expires_at_us, op.item.expires_at_us);
      p->seq = seq;
    } else if (p->op.kind == BackingOp::Kind::kTouch && op.item.version > p->op.item.version) {
      p->op = std::move(op);
      p->seq = seq;
    }
    return 0;
  }
  if (op.item.version < p->op.item.version) return 0;
  const int64_t delta = static_cast<int64_t>(Bytes(op)) - static_cast<int64_t>(Bytes(p->op));
  p->op = std::move(op);
  p->seq = seq;
  ++p->unpersisted;
  p->journaled.push_back(seq);
  return delta;
}

// WriteBehind::TakeBatch over one order queue. visit(slot, fn) calls fn with the slot's pending
// change, or null if the slot is stale, under whatever lock guards that change.
template <typename Visit>
void TakeDue(std::deque<Slot>* order, int64_t due_before, uint8_t part, Batch* batch, Visit visit) {
  const auto stale = [&](const Slot& slot) {
    bool gone = true;
    visit(slot, [&](Pending* p) { gone = p == nullptr; });
    return gone;
  };
  while (!order->empty() && stale(order->front())) order->pop_front();
  for (const Slot& slot : *order) {
    if (batch->ops.size() >= kMaxBatchOps) return;
    bool due = true;
    visit(slot, [&](Pending* p) {
      if (p == nullptr || p->in_flight || p->unpersisted > 0) return;
      if (p->first_enqueued_us > due_before) {
        due = false;  // the queue is in enqueue order
        return;
      }
      p->in_flight = true;
      batch->ops.push_back(p->op);
      batch->seqs.push_back(p->seq);
      batch->parts.push_back(part);
    });
    if (!due) return;
  }
}

// WriteBehind::Finish for one written op: whether its change leaves the queue.
bool Settle(Pending* p, const std::string& id, uint64_t seq, std::vector<JournalKey>* erase) {
  p->in_flight = false;
  if (p->seq != seq) return false;  // a newer change was folded in meanwhile
  for (uint64_t s : p->journaled) erase->emplace_back(s, id);
  return true;
}

using PendingMap = std::unordered_map<std::string, Pending>;

// The pending change of a queue slot, or null if the slot is stale (WriteBehind::Live).
Pending* Live(PendingMap* pending, const Slot& slot) {
  auto it = pending->find(slot.id);
  if (it == pending->end() || it->second.queued_seq != slot.queued_seq) return nullptr;
  return &it->second;
}

// ---- (a) Today's: one map and its queue order under one mutex ----

class alignas(64) Locked {
 public:
  // Seqs are part + k * stride (k = 1, 2, ...), unique across the parts of a Sharded.
  explicit Locked(uint8_t part = 0, uint64_t stride = 1) : part_(part), stride_(stride) {}

  void Enqueue(BackingOp op) EXCLUDES(mu_) {
    MutexLock l(&mu_);
    next_seq_ += stride_;
    const uint64_t seq = next_seq_;
    auto it = pending_.find(op.item.id);
    if (it == pending_.end()) {
      bytes_ += Bytes(op);
      order_.push_back(Slot{op.item.id, seq});
      pending_.emplace(order_.back().id,
                       NewPending(std::move(op), seq, SystemClock()->NowMicros()));
      return;
    }
    bytes_ += Fold(&it->second, std::move(op), seq);
  }

  // WriteBehind::Persist once the journal append is done.
  void Persisted(const std::string& id) EXCLUDES(mu_) {
    MutexLock l(&mu_);
    auto it = pending_.find(id);
    if (it != pending_.end() && it->second.unpersisted > 0) --it->second.unpersisted;
    cv_.SignalAll();
  }

  bool Lookup(std::string_view id, BackingOp* op) EXCLUDES(mu_) {
    MutexLock l(&mu_);
    auto it = pending_.find(std::string(id));
    if (it == pending_.end()) return false;
    *op = it->second.op;
    return true;
  }

  void TakeBatch(int64_t due_before, Batch* batch) EXCLUDES(mu_) {
    MutexLock l(&mu_);
    TakeDue(&order_, due_before, part_, batch,
            [pending = &pending_](const Slot& slot, auto fn) { fn(Live(pending, slot)); });
  }

  // Settles the ops of `batch` taken from this part.
  void Finish(const Batch& batch, std::vector<JournalKey>* erase) EXCLUDES(mu_) {
    if (std::find(batch.parts.begin(), batch.parts.end(), part_) == batch.parts.end()) return;
    MutexLock l(&mu_);
    for (size_t i = 0; i < batch.ops.size(); ++i) {
      if (batch.parts[i] != part_) continue;
      auto it = pending_.find(batch.ops[i].item.id);
      if (it == pending_.end() || !Settle(&it->second, it->first, batch.seqs[i], erase)) continue;
      bytes_ -= Bytes(it->second.op);
      pending_.erase(it);
    }
  }

  size_t Size() const EXCLUDES(mu_) {
    MutexLock l(&mu_);
    return pending_.size();
  }

 private:
  const uint8_t part_;
  const uint64_t stride_;
  mutable Mutex mu_;
  CondVar cv_;
  PendingMap pending_ GUARDED_BY(mu_);
  std::deque<Slot> order_ GUARDED_BY(mu_);
  int64_t bytes_ GUARDED_BY(mu_) = 0;
  uint64_t next_seq_ GUARDED_BY(mu_) = 0;
};

using OneMutex = Locked;

// ---- (b) Sharded: kShards copies of today's, by the id's hash ----

class Sharded {
 public:
  Sharded() {
    for (size_t i = 0; i < kShards; ++i)
      parts_[i] = std::make_unique<Locked>(static_cast<uint8_t>(i), kShards);
  }
  void Enqueue(BackingOp op) { PartOf(op.item.id).Enqueue(std::move(op)); }
  void Persisted(const std::string& id) { PartOf(id).Persisted(id); }
  bool Lookup(std::string_view id, BackingOp* op) { return PartOf(id).Lookup(id, op); }
  // Flusher thread only. Starts at another shard each round, so none waits behind the others.
  void TakeBatch(int64_t due_before, Batch* batch) {
    ++round_;
    for (size_t i = 0; i < kShards && batch->ops.size() < kMaxBatchOps; ++i) {
      parts_[(round_ + i) % kShards]->TakeBatch(due_before, batch);
    }
  }
  void Finish(const Batch& batch, std::vector<JournalKey>* erase) {
    for (auto& part : parts_) part->Finish(batch, erase);
  }
  size_t Size() const {
    size_t n = 0;
    for (const auto& part : parts_) n += part->Size();
    return n;
  }

 private:
  Locked& PartOf(std::string_view id) { return *parts_[ShardOf(id)]; }

  std::array<std::unique_ptr<Locked>, kShards> parts_;
  size_t round_ = 0;
};

// ---- (c) libcuckoo for the index; queue order in kShards queues by the id's hash ----

class Cuckoo {
 public:
  // Sized so that it never grows here: Debian's libcuckoo 0.3.1 can crash (a find reading freed
  // buckets) when the table grows under concurrent use, as it did once in ~14 runs of this
  // bench; fixed upstream in commit 91b9c2d (2024-11), in no release yet.
  Cuckoo() : index_(size_t{1} << 16) {}

  void Enqueue(BackingOp op) {
    const size_t q = ShardOf(op.item.id);
    Queue& queue = queues_[q];
    const uint64_t seq = (queue.next_seq.fetch_add(1, std::memory_order_relaxed) + 1) * kShards + q;
    int64_t delta = 0;
    const bool folded =
        index_.update_fn(op.item.id, [&](Owned& p) { delta = Fold(p.get(), std::move(op), seq); });
    if (!folded) {
      // Lock order: queue, then the index's bucket locks. The queue's lock keeps its slots in
      // enqueue order (first_enqueued_us is read under it).
      MutexLock l(&queue.mu);
      std::string id = op.item.id;
      auto fresh =
          std::make_unique<Pending>(NewPending(std::move(op), seq, SystemClock()->NowMicros()));
      const int64_t bytes = static_cast<int64_t>(Bytes(fresh->op));
      const bool inserted = index_.uprase_fn(
          id,
          [&](Owned& p) {  // another thread queued it meanwhile
            delta = Fold(p.get(), std::move(fresh->op), seq);
            return false;
          },
          std::move(fresh));
      if (inserted) {
        delta = bytes;
        queue.order.push_back(Slot{std::move(id), seq});
        queue.count.fetch_add(1, std::memory_order_relaxed);
      }
    }
    queue.bytes.fetch_add(delta, std::memory_order_relaxed);
  }

  void Persisted(const std::string& id) {
    index_.update_fn(id, [](Owned& p) {
      if (p->unpersisted > 0) --p->unpersisted;
    });
    // Lookup of a put still being journaled would wait on a condition variable of its own.
    if (lookup_waiters_.load(std::memory_order_acquire) > 0) {
      MutexLock l(&wait_mu_);
      wait_cv_.SignalAll();
    }
  }

  bool Lookup(std::string_view id, BackingOp* op) {
    return index_.find_fn(std::string(id), [&](const Owned& p) { *op = p->op; });
  }

  // Flusher thread only.
  void TakeBatch(int64_t due_before, Batch* batch) {
    ++round_;
    for (size_t i = 0; i < kShards && batch->ops.size() < kMaxBatchOps; ++i) {
      const size_t q = (round_ + i) % kShards;
      MutexLock l(&queues_[q].mu);
      TakeDue(&queues_[q].order, due_before, static_cast<uint8_t>(q), batch,
              [this](const Slot& slot, auto fn) {
                const bool found = index_.update_fn(slot.id, [&](Owned& p) {
                  fn(p->queued_seq == slot.queued_seq ? p.get() : nullptr);
                });
                if (!found) fn(nullptr);
              });
    }
  }

  void Finish(const Batch& batch, std::vector<JournalKey>* erase) {
    for (size_t i = 0; i < batch.ops.size(); ++i) {
      const std::string& id = batch.ops[i].item.id;
      int64_t freed = -1;
      index_.erase_fn(id, [&](Owned& p) {
        if (!Settle(p.get(), id, batch.seqs[i], erase)) return false;
        freed = static_cast<int64_t>(Bytes(p->op));
        return true;
      });
      if (freed < 0) continue;
      queues_[batch.parts[i]].bytes.fetch_sub(freed, std::memory_order_relaxed);
      queues_[batch.parts[i]].count.fetch_sub(1, std::memory_order_relaxed);
    }
  }

  // Not index_.size(): it reads the table's counters without their locks (a data race for TSan).
  size_t Size() const {
    int64_t n = 0;
    for (const Queue& queue : queues_) n += queue.count.load(std::memory_order_relaxed);
    return static_cast<size_t>(std::max<int64_t>(n, 0));
  }

 private:
  struct alignas(64) Queue {
    Mutex mu;
    std::deque<Slot> order GUARDED_BY(mu);
    std::atomic<uint64_t> next_seq{0};
    std::atomic<int64_t> bytes{0};  // HasRoom and overflow would bound each queue's share
    std::atomic<int64_t> count{0};  // its ids in the index
  };

  // Values by pointer: a bucket slot stays small, so cuckoo moves and resizes stay cheap.
  using Owned = std::unique_ptr<Pending>;
  libcuckoo::cuckoohash_map<std::string, Owned> index_;
  std::array<Queue, kShards> queues_;
  std::atomic<int> lookup_waiters_{0};
  Mutex wait_mu_;
  CondVar wait_cv_;
  size_t round_ = 0;
};

// ---- The workload ----

uint64_t Next(uint64_t* state) {  // splitmix64
  uint64_t z = (*state += 0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

struct Corpus {
  std::vector<std::string> sessions;  // the ids requests touch and put
  std::vector<std::string> absent;    // ids that are never queued
  std::vector<std::shared_ptr<const std::string>> values;
};

const Corpus& GetCorpus() {
  static const Corpus* corpus = [] {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    auto* c = new Corpus();
    uint64_t rng = 42;
    const auto make_id = [&] {
      std::string id(43, ' ');  // base64url of 32 random bytes, no padding
      for (char& ch : id) ch = kAlphabet[Next(&rng) % 64];
      return id;
    };
    for (size_t i = 0; i < kSessions; ++i) c->sessions.push_back(make_id());
    for (size_t i = 0; i < kSessions; ++i) c->absent.push_back(make_id());
    for (size_t i = 0; i < kValues; ++i) {
      c->values.push_back(std::make_shared<const std::string>(1024 + i * 64, 'v'));
    }
    return c;
  }();
  return *corpus;
}

// An index and the flusher thread that drains it.
template <typename Index>
class Harness {
 public:
  Harness() : flusher_([this] { Flush(); }) {}
  ~Harness() {
    stop_.store(true);
    flusher_.join();
  }
  Index& index() { return index_; }
  uint64_t flushed() const { return flushed_.load(); }
  // Whether the flusher empties the queue once requests stop (nothing is left behind).
  bool Drains() {
    for (int i = 0; i < 1000 && index_.Size() > 0; ++i) std::this_thread::sleep_for(kIdleTime * 20);
    return index_.Size() == 0;
  }

 private:
  void Flush() {
    while (!stop_.load()) {
      Batch batch;
      index_.TakeBatch(SystemClock()->NowMicros() - kDelayUs, &batch);
      if (batch.ops.empty()) {
        std::this_thread::sleep_for(kIdleTime);
        continue;
      }
      std::this_thread::sleep_for(kApplyTime);
      std::vector<JournalKey> erase;
      index_.Finish(batch, &erase);
      flushed_.fetch_add(batch.ops.size());
    }
  }

  Index index_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> flushed_{0};
  std::thread flusher_;
};

template <typename Index>
Harness<Index>* g_queue = nullptr;

template <typename Index>
void BM_PendingIndex(benchmark::State& state) {
  const Corpus& corpus = GetCorpus();
  if (state.thread_index() == 0) g_queue<Index> = new Harness<Index>();
  uint64_t rng = 1000 + state.thread_index();
  uint64_t version = 0;
  const std::string* session = nullptr;
  uint64_t session_version = 0;
  int visit_left = 0;
  uint64_t requests = 0;
  std::chrono::duration<double> stalled{0};
  for (auto _ : state) {
    Index& index = g_queue<Index>->index();
    if (++requests % kCheckEvery == 0 && index.Size() > kMaxQueued) {
      // Backpressure: a flusher that falls behind costs throughput, instead of turning the
      // workload into folds into an ever larger queue.
      const auto start = std::chrono::steady_clock::now();
      while (index.Size() > kMaxQueued) std::this_thread::sleep_for(kIdleTime);
      stalled += std::chrono::steady_clock::now() - start;
    }
    if (visit_left-- == 0) {
      session = &corpus.sessions[Next(&rng) % kSessions];
      session_version = 0;
      visit_left = kVisitRequests - 1;
    }
    const uint64_t r = Next(&rng);
    const uint64_t kind = r % 100;
    if (kind < 15) {  // a memory miss: is a change of the id queued?
      BackingOp op;
      const std::string& id = kind < 10 ? corpus.absent[(r >> 8) % kSessions] : *session;
      benchmark::DoNotOptimize(index.Lookup(id, &op));
      continue;
    }
    BackingOp op;
    op.item.id = *session;
    op.item.expires_at_us = static_cast<int64_t>(r >> 16);
    if (kind < 40) {
      op.kind = BackingOp::Kind::kPut;
      op.item.version = session_version = (++version << 8) | state.thread_index();
      const auto& value = corpus.values[(r >> 8) % kValues];
      op.value_owner = value;
      op.value = *value;
      index.Enqueue(op);
      index.Persisted(op.item.id);
    } else {
      op.kind = BackingOp::Kind::kTouch;
      op.item.version = session_version;
      index.Enqueue(std::move(op));
    }
  }
  state.SetItemsProcessed(state.iterations());
  // The share of the time request threads waited for the flusher.
  state.counters["stalled"] = benchmark::Counter(
      stalled.count(), benchmark::Counter::kIsRate | benchmark::Counter::kAvgThreads);
  if (state.thread_index() == 0) {
    state.counters["pending"] = static_cast<double>(g_queue<Index>->index().Size());
    state.counters["flushed"] = benchmark::Counter(static_cast<double>(g_queue<Index>->flushed()),
                                                   benchmark::Counter::kIsRate);
    if (!g_queue<Index>->Drains()) state.SkipWithError("changes left in the queue");
    delete g_queue<Index>;
    g_queue<Index> = nullptr;
  }
}

BENCHMARK_TEMPLATE(BM_PendingIndex, OneMutex)->ThreadRange(1, 8)->UseRealTime();
BENCHMARK_TEMPLATE(BM_PendingIndex, Sharded)->ThreadRange(1, 8)->UseRealTime();
BENCHMARK_TEMPLATE(BM_PendingIndex, Cuckoo)->ThreadRange(1, 8)->UseRealTime();

}  // namespace
}  // namespace sessionserver

BENCHMARK_MAIN();
