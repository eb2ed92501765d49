// BackingStore: the fleet's shared store (Redis), through which a session survives the loss of its
// server and moves to another one. A narrow interface in front of hiredis, so the write-behind
// queue can be tested with injected faults while integration tests use a real redis-server.
//
// Every write carries the item's version and is applied by a server-side script only if the
// stored version is not newer (docs/REDIS_SCHEMA.md): failovers, restarts, retries and delayed
// writes can never resurrect stale data, and a removal (stored as a tombstone) is never undone by
// an older write.
//
// Thread-safety: Apply may be called from one thread at a time (the write-behind flusher); Get
// from any number of threads concurrently with it (it uses its own connections). GetStats from
// any thread.
#ifndef SESSIONSERVER_STORAGE_BACKING_STORE_H_
#define SESSIONSERVER_STORAGE_BACKING_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/session_store.h"
#include "util/clock.h"
#include "util/redis_connection.h"
#include "util/status.h"

namespace sessionserver {

// One change. `item.id` and `item.version` are always set.
//   kPut:    store item (data, timeout, expiry, flags); the key expires at item.expires_at_us.
//   kRemove: replace with a tombstone of item.version, kept until item.expires_at_us (at least
//            kMinTombstoneLifeUs from now), so older writes arriving later are rejected.
//   kTouch:  move the expiry of the stored item.version to item.expires_at_us (sliding expiry);
//            ignored if the stored version differs.
struct BackingOp {
  enum class Kind { kPut, kRemove, kTouch };
  BackingOp() = default;
  BackingOp(Kind k, ItemRecord i) : kind(k), item(std::move(i)) {}

  Kind kind = Kind::kPut;
  ItemRecord item;  // item.data holds a put's value unless `value_owner` is set
  // A put's value without a copy: `value` views bytes kept alive by `value_owner` (a pinned
  // entry of the memory tier), so a change is queued under a segment lock without copying it.
  std::shared_ptr<const void> value_owner;
  std::string_view value;

  std::string_view data() const { return value_owner ? value : std::string_view(item.data); }
  // Drops the value (a put whose value now lives only in the journal).
  void DropData() {
    value_owner.reset();
    value = {};
    item.data.clear();
  }
};

// What the script did with one op.
// kRejected: Redis can never take this op (the key holds another type or a value the script
// cannot read); retrying is pointless, and the other ops of the batch are unaffected.
enum class BackingOutcome { kApplied, kStale /* a newer version is stored */, kIgnored, kRejected };

struct BackingStoreStats {
  uint64_t ops_applied = 0;
  uint64_t ops_stale = 0;
  uint64_t round_trips = 0;  // pipelined batches sent
  uint64_t reads = 0;
  uint64_t read_hits = 0;
  uint64_t errors = 0;  // connection, timeout and reply errors
  uint64_t reconnects = 0;
  uint64_t script_reloads = 0;  // batches with NOSCRIPT answers (restart, SCRIPT FLUSH, new node)
  // Redis Cluster only (docs/REDIS_SCHEMA.md#redis-cluster):
  uint64_t redirects_moved = 0;     // MOVED answers followed (a slot had moved)
  uint64_t redirects_ask = 0;       // ASK answers followed (a slot was being migrated)
  uint64_t slot_map_refreshes = 0;  // CLUSTER SLOTS read (start, after MOVED or an error)
};

class BackingStore {
 public:
  virtual ~BackingStore() = default;

  // Sends `ops` in one pipelined round trip (on a cluster: one pipeline per master, all sent
  // before any reply is read; redirected ops follow one by one) and fills `outcomes` (one per
  // op) on success. A
  // non-OK Status (Redis down, timeout, error reply) means the outcome of every op is unknown:
  // the caller retries them all (every op is idempotent).
  virtual Status Apply(const std::vector<BackingOp>& ops,
                       std::vector<BackingOutcome>* outcomes) = 0;

  // Reads the live item for `id`. *found = false if none, a tombstone, or expired; for a
  // tombstone item->version is the removal's version (else 0 when not found). The expiry is the
  // later of the record's and the last touch's. Records that fail to decode are counted as
  // errors and reported as Corruption.
  virtual Status Get(std::string_view id, ItemRecord* item, bool* found) = 0;

  virtual BackingStoreStats GetStats() const = 0;
};

struct RedisOptions {
  std::string host = "127.0.0.1";  // a single Redis (unless cluster_seeds is set)
  int port = 6379;
  // Non-empty: the store is a Redis Cluster found through these seed nodes (any of its nodes;
  // host and port are unused). Commands go to the master of each key's hash slot, following
  // MOVED and ASK redirects (util/redis_cluster.h).
  std::vector<HostPort> cluster_seeds;
  int64_t connect_timeout_us = 200'000;
  // A hung Redis (SIGSTOP) costs a call at most twice this (a broken connection is retried once).
  int64_t command_timeout_us = 500'000;
  // After a read fails (Redis down or hung), reads fail at once for this long (real time), so a
  // hung Redis stalls a request thread at most once per interval instead of on every miss.
  int64_t read_retry_us = 1'000'000;
  size_t max_value_bytes = 1 << 20;
  std::string key_prefix = "ss:v1:";
};

inline constexpr int64_t kMinTombstoneLifeUs = 3'600'000'000;  // one hour

// Connects and loads the scripts (on every master of a cluster). Always returns a store: if the
// first connection fails, *status says why and the store connects (and loads the scripts) on
// first use, so a server can start while Redis is down and catch up when it returns.
std::unique_ptr<BackingStore> NewRedisBackingStore(const RedisOptions& options, Clock* clock,
                                                   Status* status);

}  // namespace sessionserver

#endif  // SESSIONSERVER_STORAGE_BACKING_STORE_H_
