// Segment: one independently locked slice of the memory store. It owns a hash table and two
// lists of Entry, charges every entry's bytes against its capacity, implements the session
// protocol's rules for the ids that hash to it, and (when the store has a disk tier) a staging
// area through which items leave memory for the disk. Internal to storage/.
//
// Where an id can be, with a disk tier: indexed (in memory), staged (left memory, not yet known
// to be on disk: an entry or a tombstone), or on disk. Items move between these places only under
// mu_, so an op that looks at the index and then at the staging area sees every item that is not
// on disk: there is no moment in which a session being spilled or removed is invisible. The
// disk read itself happens without the lock (Load, below); a load ticket per id in flight lets
// any staging of that id during the read invalidate it, so an older disk copy is never installed
// over a newer state.
//
// Thread-safe: every public method takes mu_ for its whole duration and nothing else; no I/O, no
// copying of values and no callbacks run under mu_. Work that must happen without the lock
// (copying a value out, freeing entries, telling the eviction listener, reading the disk) is
// handed back to the caller in Leftovers or Load.
#ifndef SESSIONSERVER_STORAGE_SEGMENT_H_
#define SESSIONSERVER_STORAGE_SEGMENT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "storage/backing_store.h"
#include "storage/entry.h"
#include "storage/handle_table.h"
#include "storage/session_store.h"
#include "storage/write_behind.h"
#include "util/mutex.h"

namespace sessionserver {

// A list of entries that keeps the first few inline: a put usually hands back one replaced
// entry, and a heap allocation per request for it would cost more than the rest of the put.
class EntryList {
 public:
  void push_back(Entry* e) {
    if (inline_count_ < kInline) {
      inline_[inline_count_++] = e;
    } else {
      overflow_.push_back(e);
    }
  }
  bool empty() const { return inline_count_ == 0; }
  size_t size() const { return inline_count_ + overflow_.size(); }
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (size_t i = 0; i < inline_count_; ++i) fn(inline_[i]);
    for (Entry* e : overflow_) fn(e);
  }

 private:
  static constexpr size_t kInline = 4;
  Entry* inline_[kInline];
  size_t inline_count_ = 0;
  std::vector<Entry*> overflow_;
};

// References a segment operation hands back; the caller disposes of them after the lock is gone.
struct Leftovers {
  Entry* pinned = nullptr;       // a read's entry: copy its value, then Unref
  EntryList released;            // unindexed (replaced, removed, expired): Unref
  EntryList evicted;             // pushed out by capacity with no disk tier: report, then Unref
  bool staged = false;           // something was staged for the disk tier: wake the writer
  bool over_soft_bound = false;  // the staging area is past 1/4 of its bound: apply backpressure
  // A change queued for the backing store that must be journaled before the reply (seq != 0):
  // WriteBehind::Persist(journal_op, journal_seq).
  BackingOp journal_op;
  uint64_t journal_seq = 0;
};

// The lower-tier step of one operation. An op that finds its id neither indexed nor staged stops
// with `needed` set (and a load ticket registered); the caller reads the lower tiers (the
// write-behind queue, the disk tier, the backing store, in that order) without any lock and runs
// the op again with `done` set and `entry` holding what it found (or null). The op then installs
// `entry` itself, in the same critical section, unless the ticket was invalidated (by any
// staging or change of the id meanwhile), in which case it stops with `needed` again.
struct Load {
  enum class Source { kDiskTier, kQueue, kBackingStore };
  bool needed = false;                // out
  bool done = false;                  // in: this attempt has read the lower tiers
  Entry* entry = nullptr;             // in, owned: the copy found (null: none)
  Source source = Source::kDiskTier;  // in: where `entry` came from
  uint64_t floor_version = 0;      // in: the id's removal version below memory (new ones go above)
  bool skip_disk = false;          // out: the disk copy is known stale (dropped spill): skip it
  uint64_t ticket_generation = 0;  // the generation of the id when the ticket was taken
};

// A staged item as the spill writer sees it: a snapshot taken under the lock. The value bytes are
// read from `entry` (pinned; values never change); the metadata here is the state when staged.
struct StagedItem {
  std::string id;
  uint64_t seq = 0;  // identifies this staging; FinishStaged unstages only the same one
  bool tombstone = false;
  Entry* entry = nullptr;  // pinned (one reference owned by the snapshot); null for tombstones
  ItemRecord meta;         // id, timeout, expiry, version, uninitialized; data left empty
};

struct SegmentOptions {
  size_t capacity_bytes = 0;
  int64_t max_lock_age_us = 0;  // 0 disables the server-side lock age limit
  bool has_disk_tier = false;
  // Not owned; may be null. Changes made here (not those replicated from the other site) are
  // queued here too, for the other data centre (docs/TWO_SITES.md).
  WriteBehind* replicator = nullptr;
  // Not owned; may be null. Every change of an item's persisted state (put, remove, sliding
  // expiry, initialization) is queued here under mu_, so the queue sees each id's changes in
  // order and a lower-tier read in flight is invalidated by any of them.
  WriteBehind* write_behind = nullptr;
  // Past this, evictions are dropped (counted) instead of staged; past a quarter of it, requests
  // that stage wait briefly for the writer (backpressure).
  size_t max_staged_bytes = 0;
};

class Segment {
 public:
  explicit Segment(const SegmentOptions& options);
  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  // The protocol operations (contracts in session_store.h). `now_us` is the request's time.
  void Read(std::string_view key, uint32_t hash, bool exclusive, int64_t now_us, ReadResult* out,
            Leftovers* lo, Load* load) EXCLUDES(mu_);
  // Takes ownership of `fresh` (one reference, value filled in), except when it stops with
  // load->needed, when the caller keeps it for the next attempt.
  void Put(Entry* fresh, int64_t lock_cookie, bool create_uninitialized, int64_t now_us,
           WriteResult* out, Leftovers* lo, Load* load) EXCLUDES(mu_);
  void Release(std::string_view key, uint32_t hash, int64_t lock_cookie, int64_t now_us,
               WriteResult* out, Leftovers* lo, Load* load) EXCLUDES(mu_);
  void Remove(std::string_view key, uint32_t hash, int64_t lock_cookie, int64_t now_us,
              WriteResult* out, Leftovers* lo, Load* load) EXCLUDES(mu_);
  void ResetTimeout(std::string_view key, uint32_t hash, int64_t now_us, WriteResult* out,
                    Leftovers* lo, Load* load) EXCLUDES(mu_);

  // Revalidation (contract in session_store.h): `newer` is the backing store's copy (owned; null
  // for a removal there) of `remote_version`. Takes ownership of `newer` except when it stops
  // with load->needed, when the caller keeps it for the next attempt.
  void Supersede(std::string_view key, uint32_t hash, Entry* newer, uint64_t remote_version,
                 int64_t now_us, WriteResult* out, Leftovers* lo, Load* load) EXCLUDES(mu_);
  // ApplyReplica (contract in session_store.h). `incoming` (owned; puts only, else null) holds the
  // replica's value and metadata; `floor_version` is the id's removal version below memory (a
  // queued removal or a tombstone in Redis), which the caller looked up if the id was not in
  // memory. Takes ownership of `incoming` except when it stops with load->needed.
  void ApplyReplica(ReplicaKind kind, std::string_view key, uint32_t hash, Entry* incoming,
                    const ItemRecord& meta, uint64_t floor_version, int64_t now_us,
                    ReplicaResult* out, Leftovers* lo, Load* load) EXCLUDES(mu_);

  // After a hand-off (the backing store has every change of `key`): drops the copy in memory,
  // and the disk copy with a tombstone that leaves reads to the queue and the backing store,
  // unless a request holds the lock. (A copy only on disk or staged is left.) A later request here
  // then reads the backing store's current copy, not the one handed off.
  void Forget(std::string_view key, uint32_t hash, Leftovers* lo) EXCLUDES(mu_);

  // Where `key` is in this segment (memory fields of Location), without touching or loading it.
  void Peek(std::string_view key, uint32_t hash, int64_t now_us, Location* out) EXCLUDES(mu_);

  // Drops the load ticket of an attempt that will not run again (the disk read failed).
  void CancelLoad(std::string_view key, Load* load, Leftovers* lo) EXCLUDES(mu_);

  // Unindexes up to `budget` expired entries: first from the old end of the LRU list (the least
  // recently touched, so the first to expire among equal timeouts), then by sweeping a few hash
  // buckets from a cursor that persists across calls (for mixed timeouts). Returns the count.
  size_t Reclaim(size_t budget, int64_t now_us, Leftovers* lo) EXCLUDES(mu_);

  // ---- For the spill writer (only with a disk tier) ----
  // Snapshots up to `max_bytes` of staged items not already being written, oldest staging first
  // is not guaranteed; each id has at most one staged item. Marks them in flight.
  void TakeStaged(size_t max_bytes, std::vector<StagedItem>* out) EXCLUDES(mu_);
  // After the writer's attempt: unstages each item that is still the same staging (`seq`) if
  // `written`, or makes it available to the next TakeStaged if not. Drops the snapshots' pins
  // into `lo`.
  void FinishStaged(std::vector<StagedItem>* items, bool written, Leftovers* lo) EXCLUDES(mu_);
  // Stages every indexed item (locked ones too; their locks are dropped). For shutdown: after
  // this and a full flush, the disk tier holds everything the segment had.
  void StageAll(int64_t now_us, Leftovers* lo) EXCLUDES(mu_);

  // Adds this segment's figures; `now_us` tells live locks from ones past the age limit.
  void AddStats(int64_t now_us, StoreStats* stats) const EXCLUDES(mu_);

 private:
  struct Counters {
    uint64_t hits = 0, misses = 0, evictions = 0, expirations = 0, lock_conflicts = 0,
             locks_expired = 0, locks_acquired = 0, inserts = 0, updates = 0, removals = 0,
             disk_loads = 0, disk_hits = 0, staged_pullbacks = 0, spills = 0, spill_dropped = 0,
             tombstones = 0, queue_loads = 0, backing_loads = 0, superseded = 0;
  };
  struct Staged {
    Entry* entry = nullptr;  // null: tombstone
    // A tombstone for a spill dropped under pressure (not a removal): the disk copy is stale, but
    // the session lives on in the write-behind queue or the backing store.
    bool dropped_spill = false;
    uint64_t version = 0;  // the entry's, or the removed item's for a tombstone
    uint64_t seq = 0;
    bool in_flight = false;
  };
  struct LoadTicket {
    int holders = 0;
    uint64_t generation = 0;  // bumped by every staging of the id
  };

  // Finds the live entry for `key`: indexed, or pulled back from the staging area, or installed
  // from load->entry. Returns null if the id has no live item, or (load->needed) if the disk
  // tier must be read first. An expired entry is discarded on the spot.
  Entry* FindLive(std::string_view key, uint32_t hash, int64_t now_us, Leftovers* lo, Load* load)
      REQUIRES(mu_);
  // Finds the live entry for a change by the holder of `lock_cookie` (0 = none): an unlocked
  // entry, or one locked with that cookie. Returns null after answering NOT_FOUND or LOCKED.
  Entry* FindForHolder(std::string_view key, uint32_t hash, int64_t lock_cookie, int64_t now_us,
                       WriteResult* out, Leftovers* lo, Load* load) REQUIRES(mu_);
  // Drops the lock of `e` if it is older than the server-side limit.
  void ExpireOldLock(Entry* e, int64_t now_us) REQUIRES(mu_);
  // Clears a stale lock and moves `e` to the LRU list just before `before`.
  void DropStaleLock(Entry* e, Entry* before) REQUIRES(mu_);
  // Fills a LOCKED answer with the holder's cookie and lock age.
  void AnswerLocked(const Entry* e, int64_t now_us, WriteResult* out) REQUIRES(mu_);
  // Restarts the sliding timeout and makes `e` the most recently used.
  void Touch(Entry* e, int64_t now_us, Leftovers* lo) REQUIRES(mu_);
  // Queues a change of `e` for the backing store (`version`: the item's after the change), and
  // invalidates lower-tier reads of its id in flight.
  // `replicate`: also queue it for the other data centre (not for changes that came from there).
  void LogChange(BackingOp::Kind kind, Entry* e, uint64_t version, Leftovers* lo,
                 bool replicate = true) REQUIRES(mu_);
  // Queues `op` (built by LogChange, or a replicated removal of an id not held here).
  void LogOp(BackingOp op, Leftovers* lo, bool replicate) REQUIRES(mu_);
  // Invalidates lower-tier reads of `key` in flight.
  void InvalidateLoads(std::string_view key) REQUIRES(mu_);
  uint64_t NextVersion(uint64_t previous, int64_t now_us) REQUIRES(mu_);

  void Index(Entry* e) REQUIRES(mu_);
  void Unindex(Entry* e) REQUIRES(mu_);
  // Unindexes `e` for good (removed or expired); stages a tombstone if a copy may be on disk.
  void Discard(Entry* e, Leftovers* lo) REQUIRES(mu_);
  // Puts `e` (unindexed; its index reference moves here) or a tombstone for it in the staging
  // area, replacing what was staged for the id, and invalidates loads of the id.
  // `force` ignores max_staged_bytes (shutdown).
  // `lower_is_current`: a tombstone that only hides the disk copy: reads of the id go to the
  // write-behind queue and the backing store (as for a spill dropped under pressure).
  void Stage(Entry* e, bool tombstone, Leftovers* lo, bool force = false,
             bool lower_is_current = false) REQUIRES(mu_);
  // Drops stale locks, then evicts from the old end of the LRU list until usage fits; never
  // evicts locked entries or `keep`.
  void EvictOverCapacity(const Entry* keep, int64_t now_us, Leftovers* lo) REQUIRES(mu_);
  // Registers a load ticket for `key` and asks the caller to read the disk tier.
  void RequestLoad(std::string_view key, Load* load) REQUIRES(mu_);
  // Releases this attempt's ticket; true if no staging of `key` happened since it was taken.
  bool ReleaseTicket(std::string_view key, uint64_t generation) REQUIRES(mu_);
  // Makes a lower tier's copy an indexed entry.
  Entry* Install(Entry* loaded, Load::Source source, int64_t now_us, Leftovers* lo) REQUIRES(mu_);
  bool has_lower_tier() const { return options_.has_disk_tier || options_.write_behind; }

  // Takes the lock on `e` (new cookie, lock time) and moves it to the locked list.
  void LockEntry(Entry* e, int64_t now_us) REQUIRES(mu_);
  // Clears the lock and returns `e` to the new end of the LRU list.
  void UnlockEntry(Entry* e) REQUIRES(mu_);
  bool LockTooOld(const Entry* e, int64_t now_us) const;
  static void ListAppend(Entry* head, Entry* e);
  static void ListRemove(Entry* e);

  const SegmentOptions options_;

  mutable Mutex mu_;
  HandleTable table_ GUARDED_BY(mu_);
  // Every indexed entry is on exactly one of two lists (linked through lru_prev/lru_next):
  // unlocked entries on lru_, in last-access order (lru_.lru_next is the oldest), which eviction
  // and expiry consume from the old end; locked entries on locked_, in lock-time order, so
  // eviction never has to step over an item in use and stale locks are found at its head.
  Entry lru_ GUARDED_BY(mu_);
  Entry locked_ GUARDED_BY(mu_);
  size_t usage_ GUARDED_BY(mu_) = 0;
  uint64_t last_version_ GUARDED_BY(mu_) = 0;
  uint32_t sweep_cursor_ GUARDED_BY(mu_) = 0;
  Counters counters_ GUARDED_BY(mu_);
  // The staging area: at most one staged item per id, keyed by id.
  std::unordered_map<std::string, Staged> staged_ GUARDED_BY(mu_);
  size_t staged_bytes_ GUARDED_BY(mu_) = 0;
  uint64_t next_stage_seq_ GUARDED_BY(mu_) = 0;
  std::unordered_map<std::string, LoadTicket> loads_ GUARDED_BY(mu_);
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_STORAGE_SEGMENT_H_
