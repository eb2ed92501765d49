// A DiskTier wrapper that injects faults, for unit-level fault tests (LevelDB's
// fault_injection_test.cc idea). The integration tests use the real RocksDB tier underneath.
#ifndef SESSIONSERVER_TESTS_UNIT_FAULT_INJECTION_DISK_TIER_H_
#define SESSIONSERVER_TESTS_UNIT_FAULT_INJECTION_DISK_TIER_H_

#include <atomic>
#include <vector>

#include "storage/disk_tier.h"

namespace sessionserver {

class FaultInjectionDiskTier : public DiskTier {
 public:
  enum class WriteFault { kNone, kIOError, kDiskFull };

  explicit FaultInjectionDiskTier(DiskTier* base) : base_(base) {}

  void set_write_fault(WriteFault f) { write_fault_.store(f); }
  void set_fail_reads(bool fail) { fail_reads_.store(fail); }
  uint64_t failed_writes() const { return failed_writes_.load(); }

  Status Write(const std::vector<DiskOp>& ops) override {
    switch (write_fault_.load()) {
      case WriteFault::kNone:
        return base_->Write(ops);
      case WriteFault::kIOError:
        failed_writes_.fetch_add(1);
        return Status::IOError("injected write error");
      case WriteFault::kDiskFull:
        failed_writes_.fetch_add(1);
        return Status::IOError("injected: No space left on device");
    }
    return Status::Internal("unreachable");
  }
  Status Read(std::string_view id, ItemRecord* item, bool* found) override {
    if (fail_reads_.load()) return Status::IOError("injected read error");
    return base_->Read(id, item, found);
  }
  Status EnforceCapacity() override { return base_->EnforceCapacity(); }
  Status Compact() override { return base_->Compact(); }
  DiskTierStats GetStats() const override { return base_->GetStats(); }

 private:
  DiskTier* const base_;
  std::atomic<WriteFault> write_fault_{WriteFault::kNone};
  std::atomic<bool> fail_reads_{false};
  std::atomic<uint64_t> failed_writes_{0};
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_TESTS_UNIT_FAULT_INJECTION_DISK_TIER_H_
