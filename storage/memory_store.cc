// The segmented in-memory store behind NewMemoryStore (contract in session_store.h).
//
// Index choice: each segment indexes its items with an intrusive hash table under the segment's
// mutex rather than a concurrent map such as libcuckoo. Every protocol operation, reads included,
// mutates the item it touches (sliding expiry, LRU position, lock state), so there are no pure
// reads for a lock-free index to speed up, and the LRU list needs the segment lock anyway: a
// concurrent map would add a second synchronisation per request without removing the first.
// Contention is spread instead by hashing ids over many segments with a keyed hash.
#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "storage/backing_store.h"
#include "storage/disk_tier.h"
#include "storage/entry.h"
#include "storage/limits.h"
#include "storage/segment.h"
#include "storage/session_store.h"
#include "storage/spill_writer.h"
#include "storage/write_behind.h"
#include "util/blocking.h"
#include "util/hash.h"

namespace sessionserver {

const char* ReplicaResultName(ReplicaResult r) {
  switch (r) {
    case ReplicaResult::kApplied:
      return "applied";
    case ReplicaResult::kStale:
      return "stale";
    case ReplicaResult::kIgnored:
      return "ignored";
  }
  return "?";
}

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "OK";
    case Outcome::kNotFound:
      return "NOT_FOUND";
    case Outcome::kLocked:
      return "LOCKED";
  }
  return "?";
}

namespace {

// A segment must hold at least this many maximum-size values, so one large session cannot push
// everything else out of its segment.
constexpr size_t kMinItemsPerSegment = 8;
constexpr size_t kMinCapacityBytes = 64 << 10;
// Attempts of one operation at finding its item while it moves between memory, the staging area
// and the disk tier (each retry means the item was staged during the disk read; more than a few
// in a row means a pathological churn of that one id).
constexpr int kMaxLoadAttempts = 16;
constexpr size_t kDefaultMinStagedBytes = 8 << 20;
// The longest a request that staged past the soft bound waits for the disk writer.
constexpr int64_t kBackpressureWaitUs = 10'000;

class MemoryStore : public SessionStore {
 public:
  MemoryStore(const MemoryStoreOptions& options, size_t segment_count, Clock* clock)
      : options_(options), clock_(clock), segment_shift_(64 - Log2(segment_count)) {
    SegmentOptions so;
    so.capacity_bytes = options.capacity_bytes / segment_count;
    so.max_lock_age_us = options.max_lock_age_us;
    so.has_disk_tier = options.disk_tier != nullptr;
    so.write_behind = options.write_behind;
    so.replicator = options.replicator;
    const size_t staged =
        options.max_staged_bytes > 0
            ? options.max_staged_bytes
            : std::max<size_t>(options.capacity_bytes / 4, kDefaultMinStagedBytes);
    so.max_staged_bytes = staged / segment_count;
    std::vector<Segment*> raw;
    for (size_t i = 0; i < segment_count; ++i) {
      segments_.push_back(std::make_unique<Segment>(so));
      raw.push_back(segments_.back().get());
    }
    if (options.disk_tier != nullptr) {
      writer_ = std::make_unique<SpillWriter>(std::move(raw), options.disk_tier);
      writer_->Start();
    }
  }

  ~MemoryStore() override {
    if (writer_) writer_->Stop();
  }

  Status Get(std::string_view id, ReadResult* out) override { return Read(id, false, out); }
  Status GetExclusive(std::string_view id, ReadResult* out) override { return Read(id, true, out); }

  Status ReleaseExclusive(std::string_view id, int64_t cookie, WriteResult* out) override {
    return Mutate(id, [&](Segment* s, uint32_t h, int64_t now, Leftovers* lo, Load* load) {
      s->Release(id, h, cookie, now, out, lo, load);
    });
  }

  Status Remove(std::string_view id, int64_t cookie, WriteResult* out) override {
    return Mutate(id, [&](Segment* s, uint32_t h, int64_t now, Leftovers* lo, Load* load) {
      s->Remove(id, h, cookie, now, out, lo, load);
    });
  }

  Status ResetTimeout(std::string_view id, WriteResult* out) override {
    return Mutate(id, [&](Segment* s, uint32_t h, int64_t now, Leftovers* lo, Load* load) {
      s->ResetTimeout(id, h, now, out, lo, load);
    });
  }

  Status Put(std::string_view id, std::string_view data, int32_t timeout_minutes, int64_t cookie,
             bool create_uninitialized, WriteResult* out) override {
    // A create-uninitialized is how a client starts a session under an id it has just drawn
    // (128 random bits): it may go ahead while Redis cannot be read, so new sessions can start
    // during a Redis outage. (Any other op on an unknown id fails then; see ReadLower.)
    return Store(id, data, timeout_minutes, cookie, create_uninitialized,
                 create_uninitialized ? Lower::kAbsentIfUnreadable : Lower::kRead, out);
  }

  Status CreateFresh(std::string_view id, int32_t timeout_minutes, WriteResult* out) override {
    return Store(id, "", timeout_minutes, 0, /*create_uninitialized=*/true, Lower::kAbsent, out);
  }

 private:
  // How an op treats an id missing from memory: read the lower tiers (kRead); read them but take
  // an unreadable backing store as "absent" (kAbsentIfUnreadable); or take it as absent without
  // reading anything (kAbsent: an id the caller has just drawn cannot be anywhere).
  enum class Lower { kRead, kAbsentIfUnreadable, kAbsent };

  Status Store(std::string_view id, std::string_view data, int32_t timeout_minutes, int64_t cookie,
               bool create_uninitialized, Lower lower, WriteResult* out) {
    Status s = CheckSessionId(id);
    if (s.ok()) s = CheckTimeoutMinutes(timeout_minutes);
    if (s.ok()) s = CheckValueSize(data.size(), options_.max_value_bytes);
    if (!s.ok()) return s;
    if (options_.write_behind != nullptr && !options_.write_behind->HasRoom(data.size())) {
      return Status::Unavailable(
          "the queue of changes for Redis is full (Redis slow or down) and there is no journal; "
          "retry later");
    }
    const uint64_t h = hasher_(id);
    // The copy of the value happens here, before any lock is taken.
    Entry* fresh = NewEntry(id, static_cast<uint32_t>(h), data, timeout_minutes);
    if (fresh == nullptr) return Status::Internal("out of memory allocating a session item");
    bool consumed = false;
    s = WithDiskTier(
        id, h,
        [&](Segment* seg, uint32_t, int64_t now, Leftovers* lo, Load* load) {
          seg->Put(fresh, cookie, create_uninitialized, now, out, lo, load);
          consumed = !load->needed;
        },
        lower);
    if (!consumed) Unref(fresh);
    return s;
  }

 public:
  Status Revalidate(std::string_view id, WriteResult* out) override {
    Status s = CheckSessionId(id);
    if (!s.ok()) return s;
    out->outcome = Outcome::kNotFound;
    if (options_.backing_store == nullptr) return Status::OK();
    ItemRecord item;
    bool found = false;
    s = options_.backing_store->Get(id, &item, &found);
    if (!s.ok()) return Status::Unavailable("backing store read failed: " + s.ToString());
    if (!found && item.version == 0) return Status::OK();  // never there, or long gone
    const uint64_t h = hasher_(id);
    Entry* newer = found ? EntryFromRecord(id, static_cast<uint32_t>(h), item, item.data) : nullptr;
    if (found && newer == nullptr) return Status::Internal("out of memory loading a session item");
    bool consumed = false;
    s = WithDiskTier(id, h,
                     [&](Segment* seg, uint32_t hash, int64_t now, Leftovers* lo, Load* load) {
                       seg->Supersede(id, hash, newer, item.version, now, out, lo, load);
                       consumed = !load->needed;
                     });
    if (!consumed && newer != nullptr) Unref(newer);
    return s;
  }

  Status ApplyReplica(ReplicaKind kind, const ItemRecord& item, ReplicaResult* out) override {
    Status s = CheckSessionId(item.id);
    if (s.ok()) s = CheckTimeoutMinutes(item.timeout_minutes);
    if (s.ok() && kind == ReplicaKind::kPut) {
      s = CheckValueSize(item.data.size(), options_.max_value_bytes);
    }
    if (!s.ok()) return s;
    const uint64_t h = hasher_(item.id);
    if (kind == ReplicaKind::kPut && options_.write_behind != nullptr &&
        !options_.write_behind->HasRoom(item.data.size())) {
      return Status::Unavailable("the queue of changes for Redis is full; retry later");
    }
    // The id's removal version below memory. The queue is always asked (cheap, and a removal
    // here may race with this); Redis only if the id is not in memory.
    uint64_t floor = 0;
    if (kind != ReplicaKind::kTouch) {
      Location where;
      SegmentFor(h)->Peek(item.id, static_cast<uint32_t>(h), clock_->NowMicros(), &where);
      s = RemovalVersionBelow(item.id, /*ask_backing_store=*/!where.in_memory, &floor);
      if (!s.ok()) return s;
    }
    Entry* incoming = nullptr;
    if (kind == ReplicaKind::kPut) {
      incoming = EntryFromRecord(item.id, static_cast<uint32_t>(h), item, item.data);
      if (incoming == nullptr) return Status::Internal("out of memory loading a session item");
    }
    bool consumed = false;
    s = WithDiskTier(
        item.id, h, [&](Segment* seg, uint32_t hash, int64_t now, Leftovers* lo, Load* load) {
          seg->ApplyReplica(kind, item.id, hash, incoming, item, floor, now, out, lo, load);
          consumed = !load->needed;
        });
    if (!consumed && incoming != nullptr) Unref(incoming);
    if (s.ok()) replica_results_[static_cast<int>(*out)].fetch_add(1, std::memory_order_relaxed);
    return s;
  }

  bool IsLocked(std::string_view id) override {
    if (!CheckSessionId(id).ok()) return false;
    const uint64_t h = hasher_(id);
    Location where;
    SegmentFor(h)->Peek(id, static_cast<uint32_t>(h), clock_->NowMicros(), &where);
    return where.locked;
  }

  void Forget(std::string_view id) override {
    if (!CheckSessionId(id).ok()) return;
    const uint64_t h = hasher_(id);
    Leftovers lo;
    SegmentFor(h)->Forget(id, static_cast<uint32_t>(h), &lo);
    Dispose(&lo);
  }

  Status Locate(std::string_view id, Location* out) override {
    Status s = CheckSessionId(id);
    if (!s.ok()) return s;
    *out = Location();
    const uint64_t h = hasher_(id);
    SegmentFor(h)->Peek(id, static_cast<uint32_t>(h), clock_->NowMicros(), out);
    ItemRecord item;
    if (options_.disk_tier != nullptr) {
      s = options_.disk_tier->Read(id, &item, &out->on_disk);
      if (!s.ok()) return s;
      if (out->on_disk) out->disk_version = item.version;
    }
    if (options_.write_behind != nullptr) {
      BackingOp op;
      s = options_.write_behind->Lookup(id, &op, &out->queued);
      if (!s.ok()) return s;
      if (out->queued) {
        out->queued_version = op.item.version;
        out->queued_kind = op.kind == BackingOp::Kind::kPut      ? "put"
                           : op.kind == BackingOp::Kind::kRemove ? "remove"
                                                                 : "touch";
      }
    }
    return Status::OK();
  }

  size_t ReclaimExpired(size_t budget) override {
    size_t reclaimed = 0;
    // Visit every segment once at most, starting after the one the previous call ended on.
    for (size_t i = 0; i < segments_.size() && reclaimed < budget; ++i) {
      const size_t idx = next_reclaim_.fetch_add(1, std::memory_order_relaxed) % segments_.size();
      Leftovers lo;
      reclaimed += segments_[idx]->Reclaim(budget - reclaimed, clock_->NowMicros(), &lo);
      Dispose(&lo);
    }
    return reclaimed;
  }

  Status Flush(int64_t timeout_us) override {
    return writer_ ? writer_->Flush(timeout_us) : Status::OK();
  }

  Status PersistAll(int64_t timeout_us) override {
    if (!writer_) return Status::OK();
    for (auto& segment : segments_) {
      Leftovers lo;
      segment->StageAll(clock_->NowMicros(), &lo);
      Dispose(&lo);
    }
    return writer_->Flush(timeout_us);
  }

  StoreStats GetStats() const override {
    StoreStats stats;
    const int64_t now = clock_->NowMicros();
    for (const auto& s : segments_) s->AddStats(now, &stats);
    if (writer_) {
      stats.disk_write_errors = writer_->write_errors();
      stats.disk_write_failing = writer_->failing();
    }
    stats.blind_creates = blind_creates_.load(std::memory_order_relaxed);
    stats.replica_applied = replica_results_[0].load(std::memory_order_relaxed);
    stats.replica_stale = replica_results_[1].load(std::memory_order_relaxed);
    stats.replica_ignored = replica_results_[2].load(std::memory_order_relaxed);
    return stats;
  }

 private:
  static int Log2(size_t n) {
    int bits = 0;
    while ((size_t{1} << bits) < n) ++bits;
    return bits;
  }

  Segment* SegmentFor(uint64_t hash) const {
    // The top bits pick the segment and the low 32 bits the bucket, so the two are independent.
    return segment_shift_ >= 64 ? segments_[0].get() : segments_[hash >> segment_shift_].get();
  }

  Status Read(std::string_view id, bool exclusive, ReadResult* out) {
    return Mutate(id, [&](Segment* s, uint32_t h, int64_t now, Leftovers* lo, Load* load) {
      s->Read(id, h, exclusive, now, out, lo, load);
      if (lo->pinned != nullptr) out->data.assign(lo->pinned->value());  // Dispose runs after
    });
  }

  template <typename Op>
  Status Mutate(std::string_view id, Op op) {
    Status s = CheckSessionId(id);
    if (!s.ok()) return s;
    return WithDiskTier(id, hasher_(id), op);
  }

  // Runs `op` on the id's segment; when it stops because the id must be read from the lower
  // tiers, reads them (no lock held) and runs `op` again with what was found. Copying a read's
  // value out happens inside `op` but after the segment's lock is released (the entry is pinned).
  template <typename Op>
  Status WithDiskTier(std::string_view id, uint64_t h, Op op, Lower lower = Lower::kRead) {
    Segment* segment = SegmentFor(h);
    Load load;
    for (int attempt = 0; attempt < kMaxLoadAttempts; ++attempt) {
      Leftovers lo;
      load.needed = false;
      op(segment, static_cast<uint32_t>(h), clock_->NowMicros(), &lo, &load);
      Dispose(&lo);
      if (!load.needed) return Status::OK();
      if (lower == Lower::kAbsent) {  // nothing to read: run it again with "none below"
        load.done = true;
        load.entry = nullptr;
        load.floor_version = 0;
        continue;
      }
      if (!MayBlock()) {  // an event-loop thread: nothing has changed; run it where it may block
        Leftovers cancel;
        segment->CancelLoad(id, &load, &cancel);
        Dispose(&cancel);
        return Status::WouldBlock("the item must be read from a lower tier");
      }
      Status s = ReadLower(id, h, lower == Lower::kAbsentIfUnreadable, &load);
      if (!s.ok()) {
        Leftovers cancel;
        segment->CancelLoad(id, &load, &cancel);
        Dispose(&cancel);
        return s;
      }
    }
    Leftovers cancel;
    segment->CancelLoad(id, &load, &cancel);
    Dispose(&cancel);
    return Status::Unavailable("the session kept moving between memory and disk; retry");
  }

  // The version of a removal of `id` below memory: queued for the backing store, or (if
  // `ask_backing_store`) a tombstone there; 0 if neither.
  Status RemovalVersionBelow(std::string_view id, bool ask_backing_store, uint64_t* version) {
    *version = 0;
    if (options_.write_behind == nullptr) return Status::OK();
    BackingOp queued;
    bool found = false;
    Status s = options_.write_behind->Lookup(id, &queued, &found);
    if (!s.ok()) return s;
    if (found && queued.kind == BackingOp::Kind::kRemove) {
      *version = queued.item.version;
      return Status::OK();
    }
    if (!ask_backing_store) return Status::OK();
    ItemRecord item;
    s = options_.backing_store->Get(id, &item, &found);
    if (!s.ok()) return Status::Unavailable("backing store read failed: " + s.ToString());
    if (!found) *version = item.version;  // a tombstone's, or 0
    return Status::OK();
  }

  // Reads the id's newest copy below memory into load->entry (null if none) and marks the read
  // done. Order: the write-behind queue (a change that left memory before the backing store had
  // it; a queued removal means none), the disk tier, the backing store. A backing store that
  // cannot be read is an error, not "absent": a put acting on "absent" would create a version
  // that then replaces the real session in the backing store.
  Status ReadLower(std::string_view id, uint64_t h, bool backing_failure_is_absent, Load* load) {
    load->done = true;
    load->entry = nullptr;
    load->floor_version = 0;
    ItemRecord item;
    bool found = false;
    int64_t touched_until_us = 0;  // a queued touch's expiry, for the version it names
    uint64_t touched_version = 0;
    BackingOp queued;  // a queued put's value is read from here, pinned, not copied twice
    if (options_.write_behind != nullptr) {
      Status s = options_.write_behind->Lookup(id, &queued, &found);
      if (!s.ok()) return Status::Unavailable("write-behind queue read failed: " + s.ToString());
      if (found && queued.kind == BackingOp::Kind::kRemove) {
        load->floor_version = queued.item.version;  // a re-created session must be newer
        return Status::OK();
      }
      if (found && queued.kind == BackingOp::Kind::kTouch) {
        touched_until_us = queued.item.expires_at_us;
        touched_version = queued.item.version;
      }
      found = found && queued.kind == BackingOp::Kind::kPut;
      if (found) {
        item = std::move(queued.item);  // a pinned value stays in `queued`
        load->source = Load::Source::kQueue;
      }
    }
    if (!found && options_.disk_tier != nullptr && !load->skip_disk) {
      Status s = options_.disk_tier->Read(id, &item, &found);
      if (!s.ok()) return Status::Unavailable("disk tier read failed: " + s.ToString());
      load->source = Load::Source::kDiskTier;
    }
    if (!found && options_.backing_store != nullptr) {
      Status s = options_.backing_store->Get(id, &item, &found);
      if (!s.ok() && backing_failure_is_absent) {
        blind_creates_.fetch_add(1, std::memory_order_relaxed);
        found = false;
      } else if (!s.ok()) {
        return Status::Unavailable("backing store read failed: " + s.ToString());
      }
      if (!found) load->floor_version = item.version;  // a tombstone's version, or 0
      load->source = Load::Source::kBackingStore;
    }
    if (found && item.version == touched_version) {
      item.expires_at_us = std::max(item.expires_at_us, touched_until_us);
    }
    if (!found) return Status::OK();
    const std::string_view data = queued.value_owner ? queued.value : std::string_view(item.data);
    load->entry = EntryFromRecord(id, static_cast<uint32_t>(h), item, data);
    if (load->entry == nullptr) return Status::Internal("out of memory loading a session item");
    return Status::OK();
  }

  // A new entry (one reference) holding `item` with `data` as its value, or null (out of memory).
  static Entry* EntryFromRecord(std::string_view id, uint32_t h, const ItemRecord& item,
                                std::string_view data) {
    Entry* e = NewEntry(id, h, data, item.timeout_minutes);
    if (e == nullptr) return nullptr;
    e->version = item.version;
    e->last_access_us =
        item.expires_at_us - static_cast<int64_t>(item.timeout_minutes) * 60'000'000;
    if (item.uninitialized) e->flags |= Entry::kUninitialized;
    return e;
  }

  // Finishes, with no lock held, what a segment operation handed back.
  void Dispose(Leftovers* lo) {
    if (!lo->evicted.empty() && options_.eviction_listener != nullptr) {
      std::vector<ItemRecord> records;
      records.reserve(lo->evicted.size());
      lo->evicted.ForEach([&records](const Entry* e) {
        // Metadata of an unindexed entry no longer changes, so it is read here without a lock.
        records.push_back(ItemRecord{std::string(e->key()), std::string(e->value()),
                                     e->timeout_minutes, e->expires_at_us(), e->version,
                                     e->uninitialized()});
      });
      options_.eviction_listener->OnEvict(std::move(records));
    }
    if (lo->journal_seq != 0) options_.write_behind->Persist(lo->journal_op, lo->journal_seq);
    if (lo->staged && writer_) writer_->Kick();
    // Backpressure waits only where waiting may block (an event loop does not stall its other
    // connections; the staging area's hard bound still holds there).
    if (lo->over_soft_bound && writer_ && MayBlock()) writer_->WaitForProgress(kBackpressureWaitUs);
    if (lo->pinned != nullptr) Unref(lo->pinned);
    lo->released.ForEach(Unref);
    lo->evicted.ForEach(Unref);
  }

  const MemoryStoreOptions options_;
  Clock* const clock_;
  const KeyedHasher hasher_;
  const int segment_shift_;
  std::vector<std::unique_ptr<Segment>> segments_;
  std::atomic<size_t> next_reclaim_{0};
  std::atomic<uint64_t> blind_creates_{0};
  std::array<std::atomic<uint64_t>, 3> replica_results_{};  // by ReplicaResult
  std::unique_ptr<SpillWriter> writer_;  // with a disk tier only; declared last, stopped first
};

}  // namespace

std::unique_ptr<SessionStore> NewMemoryStore(const MemoryStoreOptions& options, Clock* clock,
                                             Status* status) {
  *status = Status::OK();
  if (clock == nullptr) *status = Status::InvalidArgument("clock is null");
  if (options.max_value_bytes > kMaxValueBytesCeiling) {
    *status =
        Status::InvalidArgument("max_value_bytes " + std::to_string(options.max_value_bytes) +
                                " exceeds the ceiling " + std::to_string(kMaxValueBytesCeiling));
  }
  const size_t max_item = options.max_value_bytes + kMaxSessionIdBytes + sizeof(Entry) + 64;
  const size_t min_capacity = std::max(kMinCapacityBytes, kMinItemsPerSegment * max_item);
  if (options.capacity_bytes < min_capacity) {
    *status = Status::InvalidArgument("memory capacity " + std::to_string(options.capacity_bytes) +
                                      " bytes is below " + std::to_string(min_capacity) +
                                      " (8 values of max_value_bytes, or 64 KiB)");
  }
  if (options.max_lock_age_us < 0) *status = Status::InvalidArgument("max lock age is negative");
  if ((options.write_behind == nullptr) != (options.backing_store == nullptr)) {
    *status = Status::InvalidArgument("write_behind and backing_store go together");
  }
  if (options.replicator != nullptr && options.write_behind == nullptr) {
    *status = Status::InvalidArgument("replication needs a backing store");
  }
  if (!status->ok()) return nullptr;

  size_t segments = 1;
  while (segments * 2 <= std::max<size_t>(1, options.segments)) segments *= 2;
  while (segments > 1 && options.capacity_bytes / segments < kMinItemsPerSegment * max_item) {
    segments /= 2;
  }
  return std::make_unique<MemoryStore>(options, segments, clock);
}

}  // namespace sessionserver
