// WriteBehind: the queue that carries every acknowledged change of a session to the backing store
// (Redis) behind the request. Changes to one session inside the flush window coalesce into one
// write; flushes are batched and pipelined; failures are retried with backoff, in order; the
// request thread only ever takes a short mutex to enqueue, so a slow or hung Redis never stalls it.
//
// Coalescing rules for a pending change of the same id (versions only grow):
//   put or remove: replaces whatever is pending (it is the newer state);
//   touch:         folds into a pending put or touch of the same version (moves its expiry);
//                  a touch of another version is dropped if a newer change is pending.
// A coalesced id keeps its place in the queue (its first enqueue time), so a hot session is
// written at most once per window.
//
// Time: which changes are due is decided by the injected Clock (tests move it); the flusher
// thread waits between rounds in real time.
//
// Thread-safe: Enqueue, Flush and GetStats from any thread.
#ifndef SESSIONSERVER_STORAGE_WRITE_BEHIND_H_
#define SESSIONSERVER_STORAGE_WRITE_BEHIND_H_

#include <cstdint>
#include <deque>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "storage/backing_store.h"
#include "util/clock.h"
#include "util/mutex.h"

namespace sessionserver {

struct WriteBehindOptions {
  // A change is written once it has been pending this long (--write_behind_delay_ms). Longer
  // coalesces more writes of hot sessions; shorter narrows the window a server crash can lose
  // (until the journal covers it). Default 100 ms.
  int64_t delay_us = 100'000;
  size_t max_batch_ops = 512;    // ops per pipelined round trip
  int64_t idle_wait_us = 5'000;  // real-time wait between rounds when nothing is due
  int64_t first_backoff_us = 50'000;
  int64_t max_backoff_us = 2'000'000;
};

struct WriteBehindStats {
  uint64_t enqueued = 0;
  uint64_t coalesced = 0;  // enqueued changes folded into a pending one
  uint64_t flushed = 0;    // ops Redis applied or found stale (a newer version already there)
  uint64_t stale = 0;
  uint64_t retries = 0;  // failed round trips (every op in them is retried)
  uint64_t pending = 0;  // queue depth now
  uint64_t pending_bytes = 0;
  int64_t oldest_pending_age_us = 0;  // by the store's Clock
};

class WriteBehind {
 public:
  // Not owned: `store` and `clock` must outlive this. Starts the flusher thread.
  WriteBehind(BackingStore* store, Clock* clock, const WriteBehindOptions& options);
  ~WriteBehind();  // stops the flusher; pending changes not yet written are left (see Flush)

  void Enqueue(BackingOp op) EXCLUDES(mu_);

  // Writes everything pending now (due or not) and waits until it is written, or `timeout_us` of
  // real time passes (then Unavailable with the number left).
  Status Flush(int64_t timeout_us) EXCLUDES(mu_);

  WriteBehindStats GetStats() const EXCLUDES(mu_);

 private:
  struct Pending {
    BackingOp op;
    int64_t first_enqueued_us = 0;
    uint64_t queued_seq = 0;  // the seq when the id entered the queue: identifies its order_ slot
    uint64_t seq = 0;         // bumped by every change folded in
    bool in_flight = false;
  };
  struct Slot {
    std::string id;
    uint64_t queued_seq;
  };

  void Run() EXCLUDES(mu_);
  // Takes up to max_batch_ops due (or, when `all`, any) changes in queue order, marking them in
  // flight. `seqs` receives each one's seq, to tell afterwards whether it changed meanwhile.
  void TakeBatch(bool all, std::vector<BackingOp>* ops, std::vector<uint64_t>* seqs) REQUIRES(mu_);
  // Settles a batch: written changes leave the queue unless something newer was folded in.
  void Finish(const std::vector<BackingOp>& ops, const std::vector<uint64_t>& seqs,
              const std::vector<BackingOutcome>& outcomes, bool written) REQUIRES(mu_);
  // The pending change of a queue slot, or null if the slot is stale.
  Pending* Live(const Slot& slot) REQUIRES(mu_);
  static size_t Bytes(const BackingOp& op) { return op.item.id.size() + op.item.data.size() + 64; }

  BackingStore* const store_;
  Clock* const clock_;
  const WriteBehindOptions options_;

  mutable Mutex mu_;
  CondVar cv_;
  std::unordered_map<std::string, Pending> pending_ GUARDED_BY(mu_);
  // Ids by first enqueue time. A slot whose queued_seq no longer matches its id's Pending is
  // stale (written, or re-queued later) and is skipped.
  std::deque<Slot> order_ GUARDED_BY(mu_);
  size_t pending_bytes_ GUARDED_BY(mu_) = 0;
  uint64_t next_seq_ GUARDED_BY(mu_) = 0;
  int flush_requests_ GUARDED_BY(mu_) = 0;
  bool stopping_ GUARDED_BY(mu_) = false;
  WriteBehindStats stats_ GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_STORAGE_WRITE_BEHIND_H_
