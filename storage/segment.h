// Segment: one independently locked slice of the memory store. It owns a hash table and an LRU
// list of Entry, charges every entry's bytes against its capacity, and implements the session
// protocol's rules for the ids that hash to it. Internal to storage/.
//
// Thread-safe: every public method takes mu_ for its whole duration and nothing else; no I/O, no
// allocation of values and no callbacks run under mu_. Work that must happen without the lock
// (copying a value out, freeing entries, telling the eviction listener) is handed back to the
// caller in Leftovers.
#ifndef SESSIONSERVER_STORAGE_SEGMENT_H_
#define SESSIONSERVER_STORAGE_SEGMENT_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "storage/entry.h"
#include "storage/handle_table.h"
#include "storage/session_store.h"
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
  Entry* pinned = nullptr;  // a read's entry: copy its value, then Unref
  EntryList released;       // unindexed (replaced, removed, expired): Unref
  EntryList evicted;        // pushed out by capacity: report, then Unref
};

class Segment {
 public:
  // `max_lock_age_us` 0 disables the server-side lock age limit.
  Segment(size_t capacity_bytes, int64_t max_lock_age_us);
  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  // The protocol operations (contracts in session_store.h). `now_us` is the request's time.
  void Read(std::string_view key, uint32_t hash, bool exclusive, int64_t now_us, ReadResult* out,
            Leftovers* lo) EXCLUDES(mu_);
  // Takes ownership of `fresh` (one reference, value filled in).
  void Put(Entry* fresh, int64_t lock_cookie, bool create_uninitialized, int64_t now_us,
           WriteResult* out, Leftovers* lo) EXCLUDES(mu_);
  void Release(std::string_view key, uint32_t hash, int64_t lock_cookie, int64_t now_us,
               WriteResult* out, Leftovers* lo) EXCLUDES(mu_);
  void Remove(std::string_view key, uint32_t hash, int64_t lock_cookie, int64_t now_us,
              WriteResult* out, Leftovers* lo) EXCLUDES(mu_);
  void ResetTimeout(std::string_view key, uint32_t hash, int64_t now_us, WriteResult* out,
                    Leftovers* lo) EXCLUDES(mu_);

  // Unindexes up to `budget` expired entries: first from the old end of the LRU list (the least
  // recently touched, so the first to expire among equal timeouts), then by sweeping a few hash
  // buckets from a cursor that persists across calls (for mixed timeouts). Returns the count.
  size_t Reclaim(size_t budget, int64_t now_us, Leftovers* lo) EXCLUDES(mu_);

  void AddStats(StoreStats* stats) const EXCLUDES(mu_);

 private:
  struct Counters {
    uint64_t hits = 0, misses = 0, evictions = 0, expirations = 0, lock_conflicts = 0,
             locks_expired = 0, locks_acquired = 0, inserts = 0, updates = 0, removals = 0;
  };

  // Finds the live entry for `key`; unindexes it instead if it has expired.
  Entry* FindLive(std::string_view key, uint32_t hash, int64_t now_us, Leftovers* lo)
      REQUIRES(mu_);
  // Finds the live entry for a change by the holder of `lock_cookie` (0 = none): an unlocked
  // entry, or one locked with that cookie. Returns null after answering NOT_FOUND or LOCKED.
  Entry* FindForHolder(std::string_view key, uint32_t hash, int64_t lock_cookie, int64_t now_us,
                       WriteResult* out, Leftovers* lo) REQUIRES(mu_);
  // Drops the lock of `e` if it is older than the server-side limit.
  void ExpireOldLock(Entry* e, int64_t now_us) REQUIRES(mu_);
  // Clears a stale lock and moves `e` to the LRU list just before `before`.
  void DropStaleLock(Entry* e, Entry* before) REQUIRES(mu_);
  // Fills a LOCKED answer with the holder's cookie and lock age.
  void AnswerLocked(const Entry* e, int64_t now_us, WriteResult* out) REQUIRES(mu_);
  // Restarts the sliding timeout and makes `e` the most recently used.
  void Touch(Entry* e, int64_t now_us) REQUIRES(mu_);
  uint64_t NextVersion(uint64_t previous, int64_t now_us) REQUIRES(mu_);

  void Index(Entry* e) REQUIRES(mu_);
  void Unindex(Entry* e, EntryList* sink) REQUIRES(mu_);
  // Drops stale locks, then evicts from the old end of the LRU list until usage fits; never
  // evicts locked entries or `keep`.
  void EvictOverCapacity(const Entry* keep, int64_t now_us, Leftovers* lo) REQUIRES(mu_);
  // Takes the lock on `e` (new cookie, lock time) and moves it to the locked list.
  void LockEntry(Entry* e, int64_t now_us) REQUIRES(mu_);
  // Clears the lock and returns `e` to the new end of the LRU list.
  void UnlockEntry(Entry* e) REQUIRES(mu_);
  bool LockTooOld(const Entry* e, int64_t now_us) const;
  static void ListAppend(Entry* head, Entry* e);
  static void ListRemove(Entry* e);

  const size_t capacity_;
  const int64_t max_lock_age_us_;

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
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_STORAGE_SEGMENT_H_
