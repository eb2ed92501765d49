#include "storage/spill_writer.h"

#include <glog/logging.h>

#include <algorithm>

namespace sessionserver {
namespace {

constexpr size_t kBatchBytes = 4 << 20;
constexpr int64_t kIdleWaitUs = 20'000;
constexpr int64_t kFirstBackoffUs = 100'000;
constexpr int64_t kMaxBackoffUs = 2'000'000;

}  // namespace

SpillWriter::SpillWriter(std::vector<Segment*> segments, DiskTier* disk)
    : segments_(std::move(segments)), disk_(disk) {}

SpillWriter::~SpillWriter() { Stop(); }

void SpillWriter::Start() {
  thread_ = std::thread([this] { Run(); });
}

void SpillWriter::Kick() {
  MutexLock l(&mu_);
  kicked_ = true;
  cv_.SignalAll();
}

void SpillWriter::Stop() {
  {
    MutexLock l(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

size_t SpillWriter::StagedItems() const {
  size_t n = 0;
  for (Segment* s : segments_) {
    StoreStats stats;
    s->AddStats(/*now_us=*/0, &stats);
    n += stats.staged_items;
  }
  return n;
}

void SpillWriter::WaitForProgress(int64_t timeout_us) {
  MutexLock l(&mu_);
  kicked_ = true;
  cv_.SignalAll();
  const uint64_t start = rounds_;
  cv_.WaitFor(&mu_, timeout_us, [&]() REQUIRES(mu_) { return rounds_ != start || stopping_; });
}

Status SpillWriter::Flush(int64_t timeout_us) {
  const int64_t deadline = MonotonicMicros() + timeout_us;
  while (true) {
    const size_t left = StagedItems();
    if (left == 0) return Status::OK();
    if (MonotonicMicros() >= deadline) {
      return Status::IOError(std::to_string(left) + " items not yet written to the disk tier");
    }
    Kick();
    MutexLock l(&mu_);
    cv_.WaitFor(&mu_, 5'000);
  }
}

bool SpillWriter::WriteRound(bool* wrote_any) {
  for (Segment* segment : segments_) {
    std::vector<StagedItem> items;
    segment->TakeStaged(kBatchBytes, &items);
    if (items.empty()) continue;
    std::vector<DiskOp> ops;
    ops.reserve(items.size());
    for (const StagedItem& item : items) {
      DiskOp op;
      op.remove = item.tombstone;
      op.item = item.meta;
      if (item.entry != nullptr) op.item.data.assign(item.entry->value());
      ops.push_back(std::move(op));
    }
    Status s = disk_->Write(ops);
    // Health first: a Flush that sees the items unstaged must also see the writer healthy.
    failing_.store(!s.ok(), std::memory_order_relaxed);
    Leftovers lo;
    segment->FinishStaged(&items, s.ok(), &lo);
    lo.released.ForEach(Unref);
    if (!s.ok()) {
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      LOG(ERROR) << "spill writer: " << s.ToString() << "; " << items.size()
                 << " items stay staged, retrying with backoff";
      return false;
    }
    batches_.fetch_add(1, std::memory_order_relaxed);
    *wrote_any = true;
  }
  return true;
}

void SpillWriter::Run() {
  int64_t backoff_us = 0;
  while (true) {
    {
      MutexLock l(&mu_);
      if (backoff_us > 0) {
        // After a failed write, wait the whole backoff: kicks from requests must not turn it
        // into a retry per request against a failing disk. Only Stop ends it early.
        cv_.WaitFor(&mu_, backoff_us, [&]() REQUIRES(mu_) { return stopping_; });
      } else if (!kicked_) {
        cv_.WaitFor(&mu_, kIdleWaitUs);
      }
      if (stopping_) return;
      kicked_ = false;
    }
    bool wrote_any = false;
    if (!WriteRound(&wrote_any)) {
      backoff_us = backoff_us == 0 ? kFirstBackoffUs : std::min(2 * backoff_us, kMaxBackoffUs);
      continue;
    }
    backoff_us = 0;
    if (wrote_any) {
      Status s = disk_->EnforceCapacity();
      if (!s.ok()) LOG(ERROR) << "spill writer: disk capacity: " << s.ToString();
      MutexLock l(&mu_);
      ++rounds_;
      kicked_ = true;   // more may be staged than one batch per segment took
      cv_.SignalAll();  // wake Flush and WaitForProgress waiters
    }
  }
}

}  // namespace sessionserver
