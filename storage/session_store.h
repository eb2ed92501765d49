// SessionStore: the session-state protocol (../shared/SESSION-PROTOCOL.md) over a store of
// items. This is the storage module's public surface; its users are the server (the Thrift
// handler, the expiry reaper, main) and the benchmarks (docs/MEMORY_TIER.md).
//
// Every operation on one session id is atomic with respect to every other operation on that id.
// Thread-safe: all methods may be called concurrently from any number of threads.
//
// Errors: a Status that is not OK means the request was invalid (InvalidArgument, with a message
// saying what) and nothing was changed. Protocol answers (NOT_FOUND, LOCKED) are not errors;
// they come back in `Outcome`.
#ifndef SESSIONSERVER_STORAGE_SESSION_STORE_H_
#define SESSIONSERVER_STORAGE_SESSION_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/clock.h"
#include "util/status.h"

namespace sessionserver {

enum class Outcome { kOk = 0, kNotFound = 1, kLocked = 2 };
const char* OutcomeName(Outcome o);

// What Get/GetExclusive return. Fields other than `outcome` are meaningful as noted.
struct ReadResult {
  Outcome outcome = Outcome::kNotFound;
  std::string data;              // kOk: the item's data
  int32_t timeout_minutes = 0;   // kOk: the item's timeout
  int64_t lock_cookie = 0;       // kOk from GetExclusive: the new cookie; kLocked: the holder's
  int64_t lock_age_ms = 0;       // kLocked: how long the holder has had the lock
  bool initialize_item = false;  // kOk: this request is the one that saw the uninitialized item
  uint64_t version = 0;          // kOk: the item's version
  bool from_disk_tier = false;   // kOk: the item was read back from the disk tier for this request
  bool from_backing_store = false;  // kOk: the item was restored from the backing store (Redis)
};

// Answer to the operations that return only a status. On kLocked, the holder's cookie and
// lock age (the protocol's LOCKED reply carries them).
struct WriteResult {
  Outcome outcome = Outcome::kNotFound;
  int64_t lock_cookie = 0;
  int64_t lock_age_ms = 0;
};

// Where one id is in one server (for support: sessionctl locate). Looking does not touch it.
struct Location {
  bool in_memory = false;       // indexed in the memory tier (and not expired)
  bool locked = false;          // ... and locked by a request
  bool staged = false;          // left memory, on its way to the disk tier
  bool staged_removal = false;  // ... as a removal (tombstone)
  uint64_t memory_version = 0;  // of the memory or staged copy
  bool on_disk = false;
  uint64_t disk_version = 0;
  bool queued = false;      // a change waits in the write-behind queue
  std::string queued_kind;  // "put", "remove" or "touch"
  uint64_t queued_version = 0;
};

// A change replicated from the other data centre (docs/TWO_SITES.md).
enum class ReplicaKind { kPut, kRemove, kTouch };
// kApplied; kStale: this site holds a newer state (or the same version with data that sorts
// higher: the tie rule), nothing changes; kIgnored: a touch of a version this site does not hold.
enum class ReplicaResult { kApplied, kStale, kIgnored };
const char* ReplicaResultName(ReplicaResult r);

// A copy of one item, handed to an EvictionListener.
struct ItemRecord {
  std::string id;
  std::string data;
  int32_t timeout_minutes = 0;
  int64_t expires_at_us = 0;  // absolute, Clock time
  uint64_t version = 0;
  bool uninitialized = false;
};

// Receives items pushed out of memory by capacity pressure (not expired or removed ones).
// Called with no store lock held, on the thread whose request caused the eviction, so an
// implementation must be quick (hand off to a queue) and thread-safe.
class EvictionListener {
 public:
  virtual ~EvictionListener() = default;
  virtual void OnEvict(std::vector<ItemRecord> items) = 0;
};

// Point-in-time counters, summed over segments. Each segment's counters are read under its lock,
// so the sum is exact per segment but not a global snapshot.
struct StoreStats {
  uint64_t items = 0;
  uint64_t bytes = 0;  // charged bytes, overhead included (compare with capacity)
  uint64_t capacity_bytes = 0;
  uint64_t hits = 0;            // reads that found a live item
  uint64_t misses = 0;          // reads that found nothing (or only an expired item)
  uint64_t evictions = 0;       // items pushed out by capacity
  uint64_t expirations = 0;     // items reclaimed because their timeout passed
  uint64_t lock_conflicts = 0;  // LOCKED answers
  uint64_t locks_expired = 0;   // locks dropped by the server-side maximum lock age
  uint64_t locks_acquired = 0;
  uint64_t inserts = 0;  // items created
  uint64_t updates = 0;  // puts that replaced an item
  uint64_t removals = 0;
  // With a disk tier:
  uint64_t disk_loads = 0;        // items read back from the disk tier into memory
  uint64_t disk_hits = 0;         // reads (of `hits`) whose item came from the disk tier
  uint64_t staged_pullbacks = 0;  // items taken back from the staging area before reaching disk
  uint64_t spills = 0;            // evicted items staged for the disk tier
  uint64_t spill_dropped = 0;     // evictions dropped because the disk writer was far behind
  uint64_t tombstones = 0;        // removals/expiries staged so the disk copy goes too
  uint64_t staged_items = 0;      // staged now, not yet written
  uint64_t staged_bytes = 0;
  uint64_t disk_write_errors = 0;   // failed batch writes of the spill writer
  uint64_t disk_write_failing = 0;  // 1 while the last batch write failed (retrying)
  // With a backing store:
  uint64_t queue_loads = 0;    // items brought back from the write-behind queue (left memory
                               // before the backing store had them)
  uint64_t backing_loads = 0;  // items restored from the backing store (Redis)
  uint64_t blind_creates = 0;  // create-uninitialized that went ahead while Redis was unreadable
  uint64_t locks_held = 0;     // items locked by a request now (locks past the age limit aside)
  uint64_t replica_applied = 0, replica_stale = 0, replica_ignored = 0;  // from the other site
  uint64_t superseded = 0;  // local copies replaced or dropped by Revalidate (newer in Redis)
};

class SessionStore {
 public:
  virtual ~SessionStore() = default;

  // Reads the item; never takes the lock. kLocked (holder cookie + age) if another request holds
  // the lock. An uninitialized item is returned once with initialize_item = true, which clears the
  // flag (exactly one request ever sees it). A successful read restarts the sliding timeout.
  virtual Status Get(std::string_view id, ReadResult* out) = 0;

  // Like Get, but on success locks the item: the item's cookie is incremented and returned, and
  // the lock time recorded. kLocked if already locked.
  virtual Status GetExclusive(std::string_view id, ReadResult* out) = 0;

  // Unlocks if `lock_cookie` matches the holder's; kOk if the item was not locked; kLocked on a
  // wrong cookie; kNotFound if there is no item.
  virtual Status ReleaseExclusive(std::string_view id, int64_t lock_cookie, WriteResult* out) = 0;

  // Stores data + timeout and releases the lock. kLocked, and nothing changes, if the item is
  // locked and `lock_cookie` (0 = none) is not the holder's, or if `lock_cookie` is non-zero and
  // not the item's latest cookie (the caller's lock was lost to a newer one). kNotFound, and
  // nothing is created, if `lock_cookie` is non-zero and the item is gone (removal wins). With
  // `create_uninitialized`, creates an uninitialized item if none exists and otherwise only
  // restarts the existing item's timeout (kOk); with a backing store that cannot be read, it
  // creates the item if this store does not hold it (a new session under a fresh random id),
  // whereas every other op on an id this store does not hold then fails (Unavailable).
  // REQUIRES timeout in 1..525600 and data.size() <= max_value_bytes (else InvalidArgument).
  virtual Status Put(std::string_view id, std::string_view data, int32_t timeout_minutes,
                     int64_t lock_cookie, bool create_uninitialized, WriteResult* out) = 0;

  // Put(id, "", timeout_minutes, 0, create_uninitialized=true) for an id the caller has just
  // drawn from at least 128 random bits (a new session): the lower tiers and the backing store
  // are not asked whether the id exists, since it cannot, so it never waits for I/O. An id that
  // is in memory after all is treated as Put would (its timeout restarts). Misused on an old id,
  // the item here shadows the backing store's copy until the write-behind finds the newer
  // version there (a conflict) and the server revalidates it.
  virtual Status CreateFresh(std::string_view id, int32_t timeout_minutes, WriteResult* out) = 0;

  // Deletes the item. kLocked if locked and `lock_cookie` is not the holder's.
  virtual Status Remove(std::string_view id, int64_t lock_cookie, WriteResult* out) = 0;

  // Restarts the item's sliding timeout, locked or not. kNotFound if there is no item.
  virtual Status ResetTimeout(std::string_view id, WriteResult* out) = 0;

  // Reclaims up to `budget` expired items, resuming where the previous call stopped, so that
  // calling it often with a small budget spreads expiry work evenly (no periodic full sweep).
  // Returns the number reclaimed. Expired items are never served whether or not this runs.
  virtual size_t ReclaimExpired(size_t budget) = 0;

  // For a session that moves between servers (a client fails over, or comes back after a
  // failover): makes this store's copy of `id` at least as new as the backing store's, since
  // another server may have changed or removed the session after this one last had it. An older
  // local copy is replaced by the backing store's (or dropped if the backing store holds a newer
  // removal). kOk: the local copy is now current; kNotFound: this store holds none (a read will
  // load the backing store's); kLocked: a request here holds the lock, so the copy is left as it
  // is. Without a backing store: kNotFound at once. Unavailable if the backing store cannot be
  // read (the local copy is then all there is).
  virtual Status Revalidate(std::string_view id, WriteResult* out) = 0;

  // Applies a change made in the other data centre, keeping its version. The rule, the same in
  // both sites so they converge: the higher version wins; on equal versions the data that sorts
  // higher (bytewise) wins; a removal stands against any put of a lower version (the removal's
  // version is kept in this site's Redis as a tombstone). A put replaces the local copy even if a
  // request holds its lock here (the lock stays; that request's own put, later and so newer,
  // wins in turn). The change is written behind to this site's Redis like a local one, but is
  // not replicated back. REQUIRES item.id valid, a put's data within max_value_bytes and its
  // timeout in range (else InvalidArgument).
  virtual Status ApplyReplica(ReplicaKind kind, const ItemRecord& item, ReplicaResult* out) = 0;

  // Whether a request holds the lock of `id` in memory now (a lock past the age limit does not
  // count). Cheap: no lower tier is read.
  virtual bool IsLocked(std::string_view id) = 0;

  // For a server that handed `id` off (its backing store has every change): drops the local
  // copy (memory, and the disk copy behind a tombstone that leaves reads to the backing store),
  // unless a request holds its lock here, so that a request that comes back here later (after
  // an undrain or a restart, with a cookie from before the hand-off) reads the current copy.
  virtual void Forget(std::string_view id) = 0;

  // Where `id` is: memory, staging area, disk tier, write-behind queue. Touches nothing.
  virtual Status Locate(std::string_view id, Location* out) = 0;

  virtual StoreStats GetStats() const = 0;

  // Waits until every item that has left memory so far is in the disk tier, or `timeout_us` of
  // real time passed (IOError). OK at once without a disk tier.
  virtual Status Flush(int64_t timeout_us) = 0;

  // Graceful shutdown: moves every item in memory (locked ones too; locks do not survive) to the
  // disk tier and waits until all is written. REQUIRES: no other call runs concurrently or later
  // except the destructor. Without a disk tier it does nothing.
  virtual Status PersistAll(int64_t timeout_us) = 0;
};

class DiskTier;
class WriteBehind;
class BackingStore;

struct MemoryStoreOptions {
  // Byte budget for items, per-item overhead included. Default 256 MiB. Larger keeps more
  // sessions hot; the process's resident size is about this plus a fixed few MiB.
  size_t capacity_bytes = 256u << 20;

  // Number of independently locked segments (rounded down to a power of two). More segments,
  // less contention; but each segment gets capacity/segments bytes, and the store lowers the count
  // so that a segment holds at least kMinItemsPerSegment maximum-size values. Default 64.
  size_t segments = 64;

  // Largest accepted value. Default 1 MiB; at most kMaxValueBytesCeiling.
  size_t max_value_bytes = 1 << 20;

  // A lock older than this is dropped by the server itself (the protocol's client force-release
  // still applies earlier). Default 120 s; 0 disables the server-side limit.
  int64_t max_lock_age_us = 120'000'000;

  // Not owned; may be null. Told about items evicted by capacity (memory-only stores: with a disk
  // tier, evicted items go there instead).
  EvictionListener* eviction_listener = nullptr;

  // Not owned; may be null (memory only). The second tier: evicted items are written there by a
  // background writer, and an id missing from memory is looked up there (and brought back).
  DiskTier* disk_tier = nullptr;

  // Not owned; both null or both set. The fleet's shared backing store (Redis) and the queue that
  // writes every change to it behind the requests (storage/write_behind.h). An id missing from
  // memory, the queue and the disk tier is read from the backing store (read-through), which is
  // how a session continues on this server after its own server is lost.
  WriteBehind* write_behind = nullptr;
  BackingStore* backing_store = nullptr;

  // Not owned; may be null; only with write_behind. The queue of changes for the other data
  // centre: every change made here (not those replicated from there) is queued to it too.
  WriteBehind* replicator = nullptr;

  // Bytes of evicted items waiting for the disk writer. Past a quarter of it, a request that
  // evicts waits up to 10 ms for the writer (backpressure, with no lock held); past all of it,
  // evictions are dropped (counted as spill_dropped): the bound on memory when the disk fails.
  // Default (0): a quarter of capacity_bytes, at least 8 MiB.
  size_t max_staged_bytes = 0;
};

// A segmented in-memory LRU store. `clock` is not owned and must outlive the store.
// Returns InvalidArgument through `status` (and null) if the options are unusable.
std::unique_ptr<SessionStore> NewMemoryStore(const MemoryStoreOptions& options, Clock* clock,
                                             Status* status);

}  // namespace sessionserver

#endif  // SESSIONSERVER_STORAGE_SESSION_STORE_H_
