// Entry: one session item in memory, in a single allocation: this header, then the id bytes,
// then the value bytes. Internal to storage/.
//
// Ownership: an Entry is reference counted. The segment's index holds one reference while the
// entry is indexed; a reader pins the entry (Ref) under the segment lock and copies the value out
// after releasing the lock, so large values are never copied while a segment is locked. The value
// bytes never change after creation (a put builds a new Entry); the metadata fields are guarded by
// the owning segment's mutex while the entry is indexed.
#ifndef SESSIONSERVER_STORAGE_ENTRY_H_
#define SESSIONSERVER_STORAGE_ENTRY_H_

#include <atomic>
#include <cstdint>
#include <string_view>

namespace sessionserver {

struct Entry {
  // kMaybeBelow: a copy of this item may exist in the disk tier (it was loaded from there, or
  // spilled, or replaced an item that was), so removing or expiring it must reach the disk too.
  // kDataDirty: its data, timeout or flags may differ from the disk copy (set by puts and by
  // clearing InitializeItem; clear only on an item just loaded from disk). A clean item that must
  // be dropped can go without a tombstone: the disk copy holds the same data.
  enum Flags : uint8_t { kLocked = 1, kUninitialized = 2, kMaybeBelow = 4, kDataDirty = 8 };

  Entry* next_hash;  // chain in the segment's hash table
  Entry* lru_prev;   // LRU list: lru_next points toward newer entries
  Entry* lru_next;
  uint64_t version;        // grows with every change of persisted state; never goes back
  int64_t last_access_us;  // sliding expiry: expires at last_access_us + timeout
  int64_t lock_cookie;     // last cookie issued; the holder's cookie while kLocked
  int64_t lock_time_us;    // when the current lock was taken (valid while kLocked)
  uint32_t hash;           // low 32 bits of the id's keyed hash
  uint32_t value_len;
  uint32_t charge;  // bytes charged to the segment for this entry
  std::atomic<uint32_t> refs;
  int32_t timeout_minutes;
  uint16_t key_len;
  uint8_t flags;

  char* key_data() { return reinterpret_cast<char*>(this + 1); }
  const char* key_data() const { return reinterpret_cast<const char*>(this + 1); }
  std::string_view key() const { return {key_data(), key_len}; }
  std::string_view value() const { return {key_data() + key_len, value_len}; }

  bool locked() const { return flags & kLocked; }
  bool uninitialized() const { return flags & kUninitialized; }
  bool maybe_below() const { return flags & kMaybeBelow; }
  bool data_dirty() const { return flags & kDataDirty; }
  int64_t expires_at_us() const {
    return last_access_us + static_cast<int64_t>(timeout_minutes) * 60'000'000;
  }
  bool ExpiredAt(int64_t now_us) const { return now_us >= expires_at_us(); }
};

// The per-item overhead is part of the product (Redis spends ~400 B on a 1 KB session with a
// TTL): keep this header small.
static_assert(sizeof(Entry) == 80,
              "Entry grew: update docs/MEMORY_TIER.md and the overhead figure");

// Allocates an entry holding copies of `key` and `value`, with one reference (the caller's) and
// all metadata zero except hash, lengths, timeout and charge. Returns null if allocation fails.
Entry* NewEntry(std::string_view key, uint32_t hash, std::string_view value,
                int32_t timeout_minutes);

inline void Ref(Entry* e) { e->refs.fetch_add(1, std::memory_order_relaxed); }

// Drops one reference; frees the entry when it was the last.
void Unref(Entry* e);

}  // namespace sessionserver

#endif  // SESSIONSERVER_STORAGE_ENTRY_H_
