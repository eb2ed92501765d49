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
// Journal (optional): a put or remove that Enqueue accepts gets a sequence number; the caller
// appends it to the journal with Persist before answering its request. The entries folded into
// one pending change are erased from the journal once that change is written, and a pending
// change is only written once all of its entries are appended (so none outlives its erase).
// Touches are not journaled: a crash loses at most a flush window of expiry extensions.
//
// Bound: past max_pending_bytes, a queued put keeps only its metadata and its value is read back
// from the journal when it is written (overflow); without a journal, the caller refuses puts
// past the bound (HasRoom) while removes and touches (small) are always taken. A change is lost
// only if its journal entry cannot be read back (counted as dropped).
//
// Thread-safe: every public method may be called from any thread. Enqueue takes only mu_ and
// does no I/O, so it may be called under a caller's lock (the memory store's segment locks; lock
// order: segment, then mu_).
#ifndef SESSIONSERVER_STORAGE_WRITE_BEHIND_H_
#define SESSIONSERVER_STORAGE_WRITE_BEHIND_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "storage/backing_store.h"
#include "storage/journal.h"
#include "util/clock.h"
#include "util/latency_histogram.h"
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
  // Bytes of queued changes kept in memory (--max_pending_bytes). Default 64 MiB. Values shared
  // with the memory tier are counted too, so this is an upper bound on what the queue adds.
  size_t max_pending_bytes = 64u << 20;
  Journal* journal = nullptr;  // not owned; null: no journal
  // Past max_pending_bytes, a change of an id not already queued is dropped (counted in
  // `dropped`) instead of kept: for the replication queue to the other data centre, which must
  // never hold requests back or grow without bound while that site is unreachable.
  bool drop_when_full = false;
};

struct WriteBehindStats {
  uint64_t enqueued = 0;
  uint64_t coalesced = 0;  // enqueued changes folded into a pending one
  uint64_t flushed = 0;    // ops Redis applied or found stale (a newer version already there)
  uint64_t stale = 0;
  uint64_t retries = 0;     // failed round trips (every op in them is retried)
  uint64_t overflowed = 0;  // puts whose value was left in the journal (queue over its bound)
  uint64_t dropped = 0;     // changes lost: their journal entry could not be read back, or
                            // (drop_when_full) the queue was full
  uint64_t rejected = 0;    // changes Redis can never take (a foreign value under the key)
  uint64_t recovered = 0;   // changes replayed from the journal at start
  uint64_t journal_errors = 0;
  uint64_t conflicts = 0;  // writes that found another state in Redis (see SetConflictListener)
  uint64_t pending = 0;    // queue depth now
  uint64_t pending_bytes = 0;
  int64_t oldest_pending_age_us = 0;  // by the store's Clock
  // How long written changes had waited since their id entered the queue (Clock time): the
  // staleness of the store behind the queue. Percentiles over the queue's life.
  int64_t delay_p50_us = 0, delay_p99_us = 0, delay_max_us = 0;
};

class WriteBehind {
 public:
  // Not owned: `store` and `clock` must outlive this. Starts the flusher thread.
  WriteBehind(BackingStore* store, Clock* clock, const WriteBehindOptions& options);
  ~WriteBehind();  // stops the flusher; pending changes not yet written are left (see Flush)

  // Queues `op`. Returns the sequence number under which the caller must Persist it (a put or
  // remove accepted while a journal is configured), else 0.
  uint64_t Enqueue(BackingOp op) EXCLUDES(mu_);

  // Appends `op` (as passed to Enqueue, which returned `seq`) to the journal. Call with no lock
  // held, before answering the request that made the change. Failures are counted and logged; the
  // change stays queued (it is only missing from the journal). With a CommitGroup installed on
  // the calling thread, the append is left to that group's Commit (storage/commit_group.h).
  void Persist(const BackingOp& op, uint64_t seq) EXCLUDES(mu_);

  // Persist for several (seq, op) at once: one journal write.
  void PersistBatch(const std::vector<std::pair<uint64_t, const BackingOp*>>& entries)
      EXCLUDES(mu_);

  // Queues what the journal holds (changes acknowledged before a crash or an unfinished
  // shutdown) without journaling them again. Call once, before Enqueue is first called.
  Status Recover() EXCLUDES(mu_);

  // The change queued for `id`, if any (the newest state this server knows the backing store
  // may lack). A put's value is read back from the journal if it overflowed (IOError/Corruption
  // if that fails). *found = false if nothing is queued.
  Status Lookup(std::string_view id, BackingOp* op, bool* found) EXCLUDES(mu_);

  // Whether a put of `value_bytes` fits: always with a journal; without one, while the queue is
  // within max_pending_bytes. (Checked before the put is applied; a few concurrent puts may
  // pass it together, so the bound is exceeded by at most their size.)
  bool HasRoom(size_t value_bytes) const EXCLUDES(mu_);

  // Writes everything pending now (due or not) and waits until it is written, or `timeout_us` of
  // real time passes (then Unavailable with the number left).
  Status Flush(int64_t timeout_us) EXCLUDES(mu_);

  // Like Flush, but waits only until nothing is pending for `id` (its changes are written, or
  // found stale). Everything pending is written at once meanwhile. For a draining server handing
  // a session off to the fleet.
  Status FlushId(std::string_view id, int64_t timeout_us) EXCLUDES(mu_);

  // Called on the flusher thread, with no lock held, with the id of every session for which
  // Redis turned out to hold another state than this server's: a put found a newer version
  // there (stale), or a touch found another version or none. This server's copy is then out of
  // date (another server changed the session meanwhile, e.g. a restarted server replayed its
  // journal after a failover), and the listener can revalidate it. Setting another listener (or
  // none) waits until no call of the previous one is running, so whatever it uses may go then.
  void SetConflictListener(std::function<void(const std::string& id)> listener) EXCLUDES(mu_);

  WriteBehindStats GetStats() const EXCLUDES(mu_);

 private:
  struct Pending {
    BackingOp op;
    int64_t first_enqueued_us = 0;
    uint64_t queued_seq = 0;  // the seq when the id entered the queue: identifies its order_ slot
    uint64_t seq = 0;         // bumped by every change folded in
    bool in_flight = false;
    uint64_t data_seq = 0;            // non-zero: op's value is in the journal under this seq
    int unpersisted = 0;              // journal appends not yet done: not written until 0
    std::vector<uint64_t> journaled;  // journal entries to erase once this change is written
  };
  struct Slot {
    std::string id;
    uint64_t queued_seq;
  };

  void Run() EXCLUDES(mu_);
  struct Batch {
    std::vector<BackingOp> ops;
    std::vector<uint64_t> seqs;       // each op's seq when taken, to tell whether it changed since
    std::vector<uint64_t> data_seqs;  // non-zero: read the op's value from the journal first
  };
  // Adds `op` to the queue; `recovered_seq` is its journal entry when replaying, else 0.
  // Returns the seq to persist under (see Enqueue).
  uint64_t Add(BackingOp op, uint64_t recovered_seq) REQUIRES(mu_);
  // Moves a put's value out of memory (it is in the journal under `seq`).
  void Overflow(Pending* p, uint64_t seq) REQUIRES(mu_);
  // Takes up to max_batch_ops due (or, when `all`, any) changes in queue order, marking them in
  // flight.
  void TakeBatch(bool all, Batch* batch) REQUIRES(mu_);
  // Reads overflowed values back from the journal; an op whose value cannot be read is dropped
  // from the batch (and from the queue, counted) since it can never be written.
  void LoadValues(Batch* batch) EXCLUDES(mu_);
  // Settles a batch: written changes leave the queue unless something newer was folded in; their
  // journal entries are added to `erase`.
  void Finish(const Batch& batch, const std::vector<BackingOutcome>& outcomes, bool written,
              std::vector<JournalKey>* erase) REQUIRES(mu_);
  // The ids of a written batch whose outcome says Redis holds another state than this server.
  static std::vector<std::string> Conflicts(const Batch& batch,
                                            const std::vector<BackingOutcome>& outcomes);
  // Counts them and calls the conflict listener for each (no lock held).
  void NotifyConflicts(const std::vector<std::string>& ids) EXCLUDES(mu_);
  // The pending change of a queue slot, or null if the slot is stale.
  Pending* Live(const Slot& slot) REQUIRES(mu_);
  // Writes everything pending at once until `done` holds (checked under mu_) or `timeout_us` of
  // real time passes; returns whether it holds.
  template <typename Done>
  bool WriteAllUntil(Done done, int64_t timeout_us) REQUIRES(mu_) {
    ++flush_requests_;
    cv_.SignalAll();
    cv_.WaitFor(&mu_, timeout_us, done);
    --flush_requests_;
    return done();
  }
  static size_t Bytes(const BackingOp& op) { return op.item.id.size() + op.data().size() + 64; }

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
  int persist_waiters_ GUARDED_BY(mu_) = 0;  // Lookups waiting for a journal append
  bool stopping_ GUARDED_BY(mu_) = false;
  WriteBehindStats stats_ GUARDED_BY(mu_);
  LatencyHistogram delays_ GUARDED_BY(mu_);
  std::function<void(const std::string&)> conflict_listener_ GUARDED_BY(mu_);
  int listener_calls_ GUARDED_BY(mu_) = 0;  // calls of conflict_listener_ running
  std::thread thread_;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_STORAGE_WRITE_BEHIND_H_
