// DiskTier: the second tier, where sessions evicted from memory live until they expire. A narrow
// interface in front of RocksDB, so tests can wrap it with fault injection
// (tests/unit/fault_injection_disk_tier.h) while integration tests use the real RocksDB.
//
// Records are ItemRecords in the versioned format of docs/DISK_RECORD.md, keyed by session id.
// Expiry is enforced on every read (an expired record is never returned) and expired or corrupt
// records are dropped by RocksDB's compaction (a compaction filter), never by scans on the
// request path. The tier is bounded by `capacity_bytes`: EnforceCapacity deletes the records
// spilled longest ago first (the least recently used: a record is spilled when memory evicts it).
//
// Thread-safety: Read, Compact and GetStats may be called from any thread at any time. Write and
// EnforceCapacity read a record's placement before changing it, so they must be called from one
// thread at a time (the spill writer).
#ifndef SESSIONSERVER_STORAGE_DISK_TIER_H_
#define SESSIONSERVER_STORAGE_DISK_TIER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/session_store.h"
#include "util/clock.h"
#include "util/status.h"

namespace sessionserver {

// One change: store `item` under `item.id`, or delete the id's record.
struct DiskOp {
  bool remove = false;
  ItemRecord item;  // item.id always set; the rest only when !remove
};

struct DiskTierStats {
  uint64_t live_bytes = 0;  // encoded bytes of the records written and not deleted (estimate)
  uint64_t capacity_bytes = 0;
  uint64_t records_written = 0;
  uint64_t records_deleted = 0;  // by removal
  uint64_t bytes_written = 0;    // encoded record bytes handed to RocksDB
  uint64_t reads = 0;
  uint64_t read_hits = 0;
  uint64_t expired_on_read = 0;
  uint64_t corrupt_records = 0;  // records that failed to decode (never served)
  uint64_t capacity_evictions = 0;
  uint64_t compaction_drops = 0;  // expired or corrupt records dropped by compaction
  uint64_t errors = 0;            // RocksDB errors from reads and writes
  uint64_t stale_skipped = 0;     // ops older than the stored record's version, not applied
};

class DiskTier {
 public:
  virtual ~DiskTier() = default;

  // Applies `ops` atomically and in order (a later op on the same id wins). Version guard: an op
  // whose item.version is older than the stored record's is skipped (counted), so a stale copy
  // never replaces a newer record and a tombstone never deletes a newer one.
  virtual Status Write(const std::vector<DiskOp>& ops) = 0;

  // Reads the live record for `id`. *found = false if there is none, or it has expired, or it is
  // corrupt (counted). A non-OK Status is an I/O error (the record's presence is unknown).
  virtual Status Read(std::string_view id, ItemRecord* item, bool* found) = 0;

  // Deletes the least recently spilled records until the live bytes fit the capacity.
  virtual Status EnforceCapacity() = 0;

  // Compacts the whole tier now, dropping expired and corrupt records (RocksDB also compacts in
  // the background on its own schedule), then rebuilds the live-bytes estimate. For operations
  // and tests. (EnforceCapacity also rebuilds the estimate every 256 calls.)
  virtual Status Compact() = 0;

  virtual DiskTierStats GetStats() const = 0;
};

struct RocksDiskTierOptions {
  std::string path;                      // the RocksDB directory (--data_dir); created if missing
  uint64_t capacity_bytes = 4ull << 30;  // --disk_bytes: default 4 GiB
  size_t max_value_bytes = 1 << 20;      // records with longer data are corrupt
};

// Opens (or creates) the RocksDB disk tier. `clock` is not owned and must outlive the tier; it
// decides expiry on reads and in compaction. On failure returns null and the reason.
std::unique_ptr<DiskTier> OpenRocksDiskTier(const RocksDiskTierOptions& options, Clock* clock,
                                            Status* status);

}  // namespace sessionserver

#endif  // SESSIONSERVER_STORAGE_DISK_TIER_H_
