// The segmented in-memory store behind NewMemoryStore (contract in session_store.h).
//
// Index choice: each segment indexes its items with an intrusive hash table under the segment's
// mutex rather than a concurrent map such as libcuckoo. Every protocol operation, reads included,
// mutates the item it touches (sliding expiry, LRU position, lock state), so there are no pure
// reads for a lock-free index to speed up, and the LRU list needs the segment lock anyway: a
// concurrent map would add a second synchronisation per request without removing the first.
// Contention is spread instead by hashing ids over many segments with a keyed hash.
#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "storage/entry.h"
#include "storage/limits.h"
#include "storage/segment.h"
#include "storage/session_store.h"
#include "util/hash.h"

namespace sessionserver {

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

class MemoryStore : public SessionStore {
 public:
  MemoryStore(const MemoryStoreOptions& options, size_t segment_count, Clock* clock)
      : options_(options), clock_(clock), segment_shift_(64 - Log2(segment_count)) {
    const size_t per_segment = options.capacity_bytes / segment_count;
    for (size_t i = 0; i < segment_count; ++i) {
      segments_.push_back(std::make_unique<Segment>(per_segment, options.max_lock_age_us));
    }
  }

  Status Get(std::string_view id, ReadResult* out) override { return Read(id, false, out); }
  Status GetExclusive(std::string_view id, ReadResult* out) override {
    return Read(id, true, out);
  }

  Status ReleaseExclusive(std::string_view id, int64_t cookie, WriteResult* out) override {
    return Mutate(id, [&](Segment* s, uint32_t h, int64_t now, Leftovers* lo) {
      s->Release(id, h, cookie, now, out, lo);
    });
  }

  Status Remove(std::string_view id, int64_t cookie, WriteResult* out) override {
    return Mutate(id, [&](Segment* s, uint32_t h, int64_t now, Leftovers* lo) {
      s->Remove(id, h, cookie, now, out, lo);
    });
  }

  Status ResetTimeout(std::string_view id, WriteResult* out) override {
    return Mutate(id, [&](Segment* s, uint32_t h, int64_t now, Leftovers* lo) {
      s->ResetTimeout(id, h, now, out, lo);
    });
  }

  Status Put(std::string_view id, std::string_view data, int32_t timeout_minutes, int64_t cookie,
             bool create_uninitialized, WriteResult* out) override {
    Status s = CheckSessionId(id);
    if (s.ok()) s = CheckTimeoutMinutes(timeout_minutes);
    if (s.ok()) s = CheckValueSize(data.size(), options_.max_value_bytes);
    if (!s.ok()) return s;
    const uint64_t h = hasher_(id);
    // The copy of the value happens here, before any lock is taken.
    Entry* fresh = NewEntry(id, static_cast<uint32_t>(h), data, timeout_minutes);
    if (fresh == nullptr) return Status::Internal("out of memory allocating a session item");
    Leftovers lo;
    SegmentFor(h)->Put(fresh, cookie, create_uninitialized, clock_->NowMicros(), out, &lo);
    Dispose(&lo);
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

  StoreStats GetStats() const override {
    StoreStats stats;
    for (const auto& s : segments_) s->AddStats(&stats);
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
    Status s = CheckSessionId(id);
    if (!s.ok()) return s;
    const uint64_t h = hasher_(id);
    Leftovers lo;
    SegmentFor(h)->Read(id, static_cast<uint32_t>(h), exclusive, clock_->NowMicros(), out, &lo);
    if (lo.pinned != nullptr) out->data.assign(lo.pinned->value());
    Dispose(&lo);
    return Status::OK();
  }

  template <typename Op>
  Status Mutate(std::string_view id, Op op) {
    Status s = CheckSessionId(id);
    if (!s.ok()) return s;
    const uint64_t h = hasher_(id);
    Leftovers lo;
    op(SegmentFor(h), static_cast<uint32_t>(h), clock_->NowMicros(), &lo);
    Dispose(&lo);
    return Status::OK();
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
};

}  // namespace

std::unique_ptr<SessionStore> NewMemoryStore(const MemoryStoreOptions& options, Clock* clock,
                                             Status* status) {
  *status = Status::OK();
  if (clock == nullptr) *status = Status::InvalidArgument("clock is null");
  if (options.max_value_bytes > kMaxValueBytesCeiling) {
    *status = Status::InvalidArgument("max_value_bytes " + std::to_string(options.max_value_bytes) +
                                      " exceeds the ceiling " +
                                      std::to_string(kMaxValueBytesCeiling));
  }
  const size_t max_item = options.max_value_bytes + kMaxSessionIdBytes + sizeof(Entry) + 64;
  const size_t min_capacity = std::max(kMinCapacityBytes, kMinItemsPerSegment * max_item);
  if (options.capacity_bytes < min_capacity) {
    *status = Status::InvalidArgument(
        "memory capacity " + std::to_string(options.capacity_bytes) + " bytes is below " +
        std::to_string(min_capacity) + " (8 values of max_value_bytes, or 64 KiB)");
  }
  if (options.max_lock_age_us < 0) *status = Status::InvalidArgument("max lock age is negative");
  if (!status->ok()) return nullptr;

  size_t segments = 1;
  while (segments * 2 <= std::max<size_t>(1, options.segments)) segments *= 2;
  while (segments > 1 && options.capacity_bytes / segments < kMinItemsPerSegment * max_item) {
    segments /= 2;
  }
  return std::make_unique<MemoryStore>(options, segments, clock);
}

}  // namespace sessionserver
