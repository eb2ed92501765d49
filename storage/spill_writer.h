// SpillWriter: the background thread that moves staged items (evictions and tombstones) from the
// segments' staging areas to the disk tier, in batches, off every request's path. Internal to
// storage/.
//
// A batch is a snapshot taken under one segment's lock; the RocksDB write happens with no lock
// held; then the segment unstages exactly the stagings that were written (a staging replaced or
// pulled back meanwhile stays as it is). On a write error the items stay staged and visible, the
// writer backs off (100 ms doubling to 2 s) and retries; the staging area's bound turns a long
// outage into counted drops instead of unbounded memory.
//
// Thread-safe: Kick, Flush and Stop may be called from any thread.
#ifndef SESSIONSERVER_STORAGE_SPILL_WRITER_H_
#define SESSIONSERVER_STORAGE_SPILL_WRITER_H_

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "storage/disk_tier.h"
#include "storage/segment.h"
#include "util/mutex.h"

namespace sessionserver {

class SpillWriter {
 public:
  // Not owned: `segments` (must outlive the writer), `disk`.
  SpillWriter(std::vector<Segment*> segments, DiskTier* disk);
  ~SpillWriter();  // Stop()

  void Start();
  // Wakes the writer: something was staged.
  void Kick();
  // Waits until the writer finishes its next round, or `timeout_us` of real time passes.
  void WaitForProgress(int64_t timeout_us);
  // Waits until everything staged before the call has been written, or `timeout_us` of real time
  // passed (IOError then, with the number of items still staged).
  Status Flush(int64_t timeout_us);
  void Stop();

  uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }
  // True from a failed write until the next successful one.
  bool failing() const { return failing_.load(std::memory_order_relaxed); }
  uint64_t batches() const { return batches_.load(std::memory_order_relaxed); }

 private:
  void Run();
  // Writes one batch from every segment that has staged items; false if a write failed.
  bool WriteRound(bool* wrote_any);
  size_t StagedItems() const;

  const std::vector<Segment*> segments_;
  DiskTier* const disk_;
  std::thread thread_;
  std::atomic<uint64_t> write_errors_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<bool> failing_{false};

  Mutex mu_;
  CondVar cv_;
  bool stopping_ GUARDED_BY(mu_) = false;
  bool kicked_ GUARDED_BY(mu_) = false;
  uint64_t rounds_ GUARDED_BY(mu_) = 0;  // completed rounds that wrote something
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_STORAGE_SPILL_WRITER_H_
