// The RocksDB disk tier behind OpenRocksDiskTier (contract in disk_tier.h).
//
// Two column families:
//   "default": session id -> record (docs/DISK_RECORD.md)
//   "spill_order": big-endian spill time (8 bytes) + id -> u32 record size + i64 expiry (LE)
// The second is the tier's LRU order: a record is written when memory evicts it, so the oldest
// spill time is the least recently used. EnforceCapacity consumes it from the front. Both column
// families drop expired entries in compaction (a compaction filter reading the injected Clock).
#include <glog/logging.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "storage/disk_record.h"
#include "storage/disk_tier.h"

namespace sessionserver {
namespace {

constexpr char kSpillOrderFamily[] = "spill_order";
constexpr size_t kSpillOrderValueBytes = 12;
// EnforceCapacity trims to this fraction of the capacity, so it does not run on every spill.
constexpr double kTrimTarget = 0.95;
// Every this many EnforceCapacity calls, the live-bytes estimate is rebuilt from spill_order.
constexpr uint64_t kRecomputeEvery = 256;

std::string SpillOrderKey(int64_t spill_time_us, std::string_view id) {
  std::string key(8, '\0');
  uint64_t t = static_cast<uint64_t>(spill_time_us);
  for (int i = 7; i >= 0; --i, t >>= 8) key[i] = static_cast<char>(t & 0xff);
  key.append(id);
  return key;
}

int64_t SpillTimeOf(const rocksdb::Slice& key) {
  uint64_t t = 0;
  for (int i = 0; i < 8; ++i) t = (t << 8) | static_cast<unsigned char>(key[i]);
  return static_cast<int64_t>(t);
}

std::string SpillOrderValue(uint32_t record_bytes, int64_t expires_at_us) {
  std::string v(kSpillOrderValueBytes, '\0');
  std::memcpy(v.data(), &record_bytes, 4);  // little-endian hosts only, as the record format
  std::memcpy(v.data() + 4, &expires_at_us, 8);
  return v;
}

bool ParseSpillOrderValue(const rocksdb::Slice& v, uint32_t* bytes, int64_t* expires_at_us) {
  if (v.size() != kSpillOrderValueBytes) return false;
  std::memcpy(bytes, v.data(), 4);
  std::memcpy(expires_at_us, v.data() + 4, 8);
  return true;
}

Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::OK();
  if (s.IsCorruption()) return Status::Corruption(s.ToString());
  return Status::IOError(s.ToString());
}

// Counters shared with the compaction filters, which run on RocksDB's threads.
struct SharedCounters {
  std::atomic<uint64_t> live_bytes{0};
  std::atomic<uint64_t> compaction_drops{0};

  void SubtractLive(uint64_t n) {
    uint64_t cur = live_bytes.load(std::memory_order_relaxed);
    while (
        !live_bytes.compare_exchange_weak(cur, cur > n ? cur - n : 0, std::memory_order_relaxed)) {
    }
  }
};

// Drops expired and undecodable records.
class RecordFilter : public rocksdb::CompactionFilter {
 public:
  RecordFilter(const Clock* clock, size_t max_value_bytes, SharedCounters* counters)
      : clock_(clock), max_value_bytes_(max_value_bytes), counters_(counters) {}
  bool Filter(int, const rocksdb::Slice& key, const rocksdb::Slice& value, std::string*,
              bool*) const override {
    ItemRecord item;
    int64_t spill_time = 0;
    Status s = DecodeDiskRecord(std::string_view(key.data(), key.size()),
                                std::string_view(value.data(), value.size()), max_value_bytes_,
                                &item, &spill_time);
    const bool drop = !s.ok() || item.expires_at_us <= clock_->NowMicros();
    if (drop) counters_->compaction_drops.fetch_add(1, std::memory_order_relaxed);
    return drop;
  }
  const char* Name() const override { return "sessionserver.RecordFilter"; }

 private:
  const Clock* clock_;
  const size_t max_value_bytes_;
  SharedCounters* counters_;
};

// Drops spill-order entries of expired records. It does not touch the live-bytes estimate: a
// compaction may see an older version of a key that a newer delete outside it already accounted
// for, so counting here could subtract twice. The writer recomputes the estimate instead.
class SpillOrderFilter : public rocksdb::CompactionFilter {
 public:
  explicit SpillOrderFilter(const Clock* clock) : clock_(clock) {}
  bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*,
              bool*) const override {
    uint32_t bytes = 0;
    int64_t expires_at = 0;
    if (!ParseSpillOrderValue(value, &bytes, &expires_at)) return true;
    return expires_at <= clock_->NowMicros();
  }
  const char* Name() const override { return "sessionserver.SpillOrderFilter"; }

 private:
  const Clock* clock_;
};

class RocksDiskTier : public DiskTier {
 public:
  RocksDiskTier(const RocksDiskTierOptions& options, Clock* clock)
      : options_(options),
        clock_(clock),
        record_filter_(clock, options.max_value_bytes, &shared_),
        spill_order_filter_(clock) {}

  ~RocksDiskTier() override {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    if (db_) db_->Close();
  }

  Status Open() {
    rocksdb::Options db_options;
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    db_options.IncreaseParallelism(2);
    rocksdb::ColumnFamilyOptions records;
    records.compaction_filter = &record_filter_;
    rocksdb::ColumnFamilyOptions order;
    order.compaction_filter = &spill_order_filter_;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, records}, {kSpillOrderFamily, order}};
    rocksdb::DB* db = nullptr;
    Status s = FromRocks(rocksdb::DB::Open(db_options, options_.path, families, &handles_, &db));
    if (!s.ok()) return s;
    db_.reset(db);
    return LoadLiveBytes();
  }

  Status Write(const std::vector<DiskOp>& ops) override;
  Status Read(std::string_view id, ItemRecord* item, bool* found) override;
  Status EnforceCapacity() override;
  Status Compact() override {
    for (auto* h : handles_) {
      Status s = FromRocks(db_->CompactRange(rocksdb::CompactRangeOptions(), h, nullptr, nullptr));
      if (!s.ok()) return Failed(s, "compaction");
    }
    return LoadLiveBytes();  // compaction dropped records the estimate still counts
  }

  DiskTierStats GetStats() const override {
    DiskTierStats s;
    s.live_bytes = shared_.live_bytes.load(std::memory_order_relaxed);
    s.capacity_bytes = options_.capacity_bytes;
    s.records_written = records_written_.load(std::memory_order_relaxed);
    s.records_deleted = records_deleted_.load(std::memory_order_relaxed);
    s.bytes_written = bytes_written_.load(std::memory_order_relaxed);
    s.reads = reads_.load(std::memory_order_relaxed);
    s.read_hits = read_hits_.load(std::memory_order_relaxed);
    s.expired_on_read = expired_on_read_.load(std::memory_order_relaxed);
    s.corrupt_records = corrupt_records_.load(std::memory_order_relaxed);
    s.capacity_evictions = capacity_evictions_.load(std::memory_order_relaxed);
    s.compaction_drops = shared_.compaction_drops.load(std::memory_order_relaxed);
    s.errors = errors_.load(std::memory_order_relaxed);
    s.stale_skipped = stale_skipped_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  rocksdb::ColumnFamilyHandle* records() const { return handles_[0]; }
  rocksdb::ColumnFamilyHandle* spill_order() const { return handles_[1]; }

  // Sums the spill-order entries of unexpired records (one small entry per record).
  Status LoadLiveBytes() {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), spill_order()));
    uint64_t total = 0;
    const int64_t now = clock_->NowMicros();
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      uint32_t bytes = 0;
      int64_t expires_at = 0;
      if (ParseSpillOrderValue(it->value(), &bytes, &expires_at) && expires_at > now) {
        total += bytes;
      }
    }
    shared_.live_bytes.store(total, std::memory_order_relaxed);
    return FromRocks(it->status());
  }

  // Where the id's current record sits in the spill order (found = false if no decodable record).
  struct Placement {
    bool found = false;  // a decodable record exists (expired or not)
    int64_t spill_time_us = 0;
    uint32_t bytes = 0;
    uint64_t version = 0;
    int64_t expires_at_us = 0;
  };
  Status CurrentPlacement(std::string_view id, Placement* p);

  Status Failed(Status s, const char* what) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    LOG(ERROR) << "disk tier " << what << ": " << s.ToString();
    return s;
  }

  const RocksDiskTierOptions options_;
  Clock* const clock_;
  SharedCounters shared_;
  RecordFilter record_filter_;
  SpillOrderFilter spill_order_filter_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;

  std::atomic<uint64_t> records_written_{0}, records_deleted_{0}, bytes_written_{0}, reads_{0},
      read_hits_{0}, expired_on_read_{0}, corrupt_records_{0}, capacity_evictions_{0}, errors_{0},
      stale_skipped_{0};
  uint64_t capacity_checks_ = 0;  // EnforceCapacity runs on the writer thread only
};

Status RocksDiskTier::CurrentPlacement(std::string_view id, Placement* p) {
  std::string bytes;
  rocksdb::Status rs = db_->Get(rocksdb::ReadOptions(), records(), rocksdb::Slice(id), &bytes);
  if (rs.IsNotFound()) return Status::OK();
  if (!rs.ok()) return FromRocks(rs);
  ItemRecord item;
  if (DecodeDiskRecord(id, bytes, options_.max_value_bytes, &item, &p->spill_time_us).ok()) {
    p->found = true;
    p->bytes = static_cast<uint32_t>(bytes.size());
    p->version = item.version;
    p->expires_at_us = item.expires_at_us;
  }
  return Status::OK();
}

Status RocksDiskTier::Write(const std::vector<DiskOp>& ops) {
  rocksdb::WriteBatch batch;
  // Placements of ids already written earlier in this batch (later ops must replace those).
  std::map<std::string, Placement, std::less<>> in_batch;
  const int64_t now = clock_->NowMicros();
  int64_t live_delta = 0;
  uint64_t written = 0, deleted = 0, bytes = 0, stale_skipped = 0;
  for (const DiskOp& op : ops) {
    const std::string& id = op.item.id;
    Placement old;
    auto it = in_batch.find(id);
    if (it != in_batch.end()) {
      old = it->second;
    } else {
      Status s = CurrentPlacement(id, &old);
      if (!s.ok()) return Failed(s, "read before write");
    }
    // Version guard: an older copy never replaces or deletes a newer one. An expired record is
    // dead (never served), so it does not count: a new session must not lose to it.
    if (old.found && old.expires_at_us > now && op.item.version < old.version) {
      ++stale_skipped;
      continue;
    }
    if (old.found) {
      batch.Delete(spill_order(), SpillOrderKey(old.spill_time_us, id));
      live_delta -= old.bytes;
    }
    Placement now_placed;
    if (op.remove) {
      batch.Delete(records(), id);
      ++deleted;
    } else {
      const std::string record = EncodeDiskRecord(id, op.item, now);
      batch.Put(records(), id, record);
      batch.Put(spill_order(), SpillOrderKey(now, id),
                SpillOrderValue(static_cast<uint32_t>(record.size()), op.item.expires_at_us));
      now_placed = Placement{true, now, static_cast<uint32_t>(record.size()), op.item.version,
                             op.item.expires_at_us};
      live_delta += static_cast<int64_t>(record.size());
      bytes += record.size();
      ++written;
    }
    in_batch[id] = now_placed;
  }
  Status s = FromRocks(db_->Write(rocksdb::WriteOptions(), &batch));
  if (!s.ok()) return Failed(s, "write");
  if (live_delta >= 0) {
    shared_.live_bytes.fetch_add(static_cast<uint64_t>(live_delta), std::memory_order_relaxed);
  } else {
    shared_.SubtractLive(static_cast<uint64_t>(-live_delta));
  }
  records_written_.fetch_add(written, std::memory_order_relaxed);
  records_deleted_.fetch_add(deleted, std::memory_order_relaxed);
  bytes_written_.fetch_add(bytes, std::memory_order_relaxed);
  stale_skipped_.fetch_add(stale_skipped, std::memory_order_relaxed);
  return Status::OK();
}

Status RocksDiskTier::Read(std::string_view id, ItemRecord* item, bool* found) {
  *found = false;
  reads_.fetch_add(1, std::memory_order_relaxed);
  std::string bytes;
  rocksdb::Status rs = db_->Get(rocksdb::ReadOptions(), records(), rocksdb::Slice(id), &bytes);
  if (rs.IsNotFound()) return Status::OK();
  if (!rs.ok()) return Failed(FromRocks(rs), "read");
  int64_t spill_time = 0;
  Status s = DecodeDiskRecord(id, bytes, options_.max_value_bytes, item, &spill_time);
  if (!s.ok()) {
    corrupt_records_.fetch_add(1, std::memory_order_relaxed);
    LOG(ERROR) << "disk tier: rejected record for a session (" << s.ToString() << ")";
    return Status::OK();
  }
  if (item->expires_at_us <= clock_->NowMicros()) {
    expired_on_read_.fetch_add(1, std::memory_order_relaxed);
    return Status::OK();
  }
  read_hits_.fetch_add(1, std::memory_order_relaxed);
  *found = true;
  return Status::OK();
}

Status RocksDiskTier::EnforceCapacity() {
  // Compaction drops expired records without adjusting the estimate; correct it now and then.
  if (++capacity_checks_ % kRecomputeEvery == 0) {
    Status s = LoadLiveBytes();
    if (!s.ok()) return Failed(s, "live bytes scan");
  }
  if (shared_.live_bytes.load(std::memory_order_relaxed) <= options_.capacity_bytes) {
    return Status::OK();
  }
  const auto target = static_cast<uint64_t>(options_.capacity_bytes * kTrimTarget);
  rocksdb::WriteBatch batch;
  uint64_t live = shared_.live_bytes.load(std::memory_order_relaxed);
  uint64_t freed = 0, evicted = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), spill_order()));
  for (it->SeekToFirst(); it->Valid() && freed + target < live; it->Next()) {
    const rocksdb::Slice key = it->key();
    if (key.size() < 8) {
      batch.Delete(spill_order(), key);
      continue;
    }
    const std::string id(key.data() + 8, key.size() - 8);
    uint32_t bytes = 0;
    int64_t expires_at = 0;
    ParseSpillOrderValue(it->value(), &bytes, &expires_at);
    Placement current;
    Status s = CurrentPlacement(id, &current);
    if (!s.ok()) return Failed(s, "capacity read");
    batch.Delete(spill_order(), key);
    if (current.found && current.spill_time_us == SpillTimeOf(key)) {
      batch.Delete(records(), id);
      ++evicted;
      freed += bytes;
    } else if (!current.found) {
      freed += bytes;  // compaction already dropped the record; correct the estimate
    }                  // else: a stale entry of a record spilled again later, already accounted for
  }
  if (!it->status().ok()) return Failed(FromRocks(it->status()), "capacity scan");
  Status s = FromRocks(db_->Write(rocksdb::WriteOptions(), &batch));
  if (!s.ok()) return Failed(s, "capacity write");
  shared_.SubtractLive(freed);
  capacity_evictions_.fetch_add(evicted, std::memory_order_relaxed);
  return Status::OK();
}

}  // namespace

std::unique_ptr<DiskTier> OpenRocksDiskTier(const RocksDiskTierOptions& options, Clock* clock,
                                            Status* status) {
  auto tier = std::make_unique<RocksDiskTier>(options, clock);
  *status = tier->Open();
  if (!status->ok()) return nullptr;
  return tier;
}

}  // namespace sessionserver
