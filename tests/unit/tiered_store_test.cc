// The memory tier with the RocksDB disk tier underneath: spill, promote, remove, expire, restart,
// faults and races. Real RocksDB in a temporary directory; a fake clock.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/disk_tier.h"
#include "tests/temp_dir.h"
#include "tests/unit/fault_injection_disk_tier.h"
#include "tests/unit/store_test_util.h"

namespace sessionserver {
namespace {

constexpr int64_t kFlushTimeoutUs = 20'000'000;

class TieredStoreTest : public ::testing::Test {
 protected:
  TieredStoreTest() {
    disk_options_.path = dir_.path() + "/db";
    disk_options_.max_value_bytes = 8192;
    options_.capacity_bytes = 64 << 10;
    options_.segments = 1;
    options_.max_value_bytes = 4096;
    OpenDisk();
    OpenStore();
  }
  ~TieredStoreTest() override {
    store_.reset();
    faulty_.reset();
    disk_.reset();
  }

  void OpenDisk() {
    Status s;
    disk_ = OpenRocksDiskTier(disk_options_, &clock_, &s);
    ASSERT_TRUE(s.ok()) << s.ToString();
    faulty_ = std::make_unique<FaultInjectionDiskTier>(disk_.get());
  }
  void OpenStore() {
    options_.disk_tier = faulty_.get();
    store_ = MustNewStore(options_, &clock_);
  }
  // A graceful restart: persist everything, drop memory, reopen RocksDB and the store.
  void Restart() {
    ASSERT_TRUE(store_->PersistAll(kFlushTimeoutUs).ok());
    store_.reset();
    faulty_.reset();
    disk_.reset();
    OpenDisk();
    OpenStore();
  }
  void Flush() { ASSERT_TRUE(store_->Flush(kFlushTimeoutUs).ok()); }
  static std::string Value(int i) { return "value-" + std::to_string(i) + std::string(900, 'x'); }
  void PutMany(int n, int32_t timeout = 20) {
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(PutValue(store_.get(), "s" + std::to_string(i), Value(i), timeout), Outcome::kOk);
    }
  }

  TempDir dir_{"ss-tiered"};
  FakeClock clock_;
  RocksDiskTierOptions disk_options_;
  MemoryStoreOptions options_;
  std::unique_ptr<DiskTier> disk_;
  std::unique_ptr<FaultInjectionDiskTier> faulty_;
  std::unique_ptr<SessionStore> store_;
};

TEST_F(TieredStoreTest, EvictedSessionsSpillAndComeBack) {
  PutMany(300);  // ~300 KB through a 64 KiB memory tier
  StoreStats stats = store_->GetStats();
  EXPECT_GT(stats.spills, 200u);
  EXPECT_LE(stats.bytes, stats.capacity_bytes);
  for (int i = 0; i < 300; ++i) {
    ReadResult r = GetValue(store_.get(), "s" + std::to_string(i));
    ASSERT_EQ(r.outcome, Outcome::kOk) << i;
    ASSERT_EQ(r.data, Value(i)) << i;
  }
  stats = store_->GetStats();
  EXPECT_GT(stats.disk_loads + stats.staged_pullbacks, 200u);
}

TEST_F(TieredStoreTest, FlushPutsEverythingEvictedOnDisk) {
  PutMany(300);
  Flush();
  EXPECT_EQ(store_->GetStats().staged_items, 0u);
  ItemRecord item;
  bool found = false;
  ASSERT_TRUE(disk_->Read("s0", &item, &found).ok());
  ASSERT_TRUE(found);
  EXPECT_EQ(item.data, Value(0));
}

TEST_F(TieredStoreTest, RemovalReachesTheDiskAndSurvivesRestart) {
  PutMany(300);
  Flush();
  WriteResult w;
  ASSERT_TRUE(store_->Remove("s1", 0, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kOk) << "a spilled item is removed like any other";
  EXPECT_EQ(GetValue(store_.get(), "s1").outcome, Outcome::kNotFound);
  ASSERT_TRUE(store_->Remove("s1", 0, &w).ok());
  EXPECT_EQ(w.outcome, Outcome::kNotFound);
  Restart();
  EXPECT_EQ(GetValue(store_.get(), "s1").outcome, Outcome::kNotFound);
  EXPECT_EQ(GetValue(store_.get(), "s2").data, Value(2));
}

TEST_F(TieredStoreTest, GracefulRestartServesEverySession) {
  PutMany(300);
  ReadResult held = Lock(store_.get(), "s299");
  ASSERT_EQ(held.outcome, Outcome::kOk);
  WriteResult w;
  ASSERT_TRUE(store_->Put("uninit", "", 20, 0, true, &w).ok());
  const uint64_t version = GetValue(store_.get(), "s5").version;
  Restart();
  for (int i = 0; i < 300; ++i) {
    ReadResult r = GetValue(store_.get(), "s" + std::to_string(i));
    ASSERT_EQ(r.outcome, Outcome::kOk) << i << " (locks do not survive a restart)";
    ASSERT_EQ(r.data, Value(i));
  }
  EXPECT_EQ(GetValue(store_.get(), "s5").version, version);
  EXPECT_TRUE(GetValue(store_.get(), "uninit").initialize_item);
  EXPECT_FALSE(GetValue(store_.get(), "uninit").initialize_item);
  PutValue(store_.get(), "s5", "newer");
  EXPECT_GT(GetValue(store_.get(), "s5").version, version) << "versions keep growing";
}

TEST_F(TieredStoreTest, ExpiryHoldsOnDisk) {
  PutMany(300, /*timeout=*/1);
  Flush();
  clock_.AdvanceMinutes(2);
  EXPECT_EQ(GetValue(store_.get(), "s0").outcome, Outcome::kNotFound);
  EXPECT_GT(disk_->GetStats().expired_on_read, 0u);
}

TEST_F(TieredStoreTest, SlidingExpiryCarriesTheRemainingLifetimeToDisk) {
  PutValue(store_.get(), "s", "v", 10);
  clock_.AdvanceMinutes(9);
  ASSERT_EQ(GetValue(store_.get(), "s").outcome, Outcome::kOk);  // slides: now 10 more minutes
  PutMany(300);                                                  // s spills
  Flush();
  clock_.AdvanceMinutes(9);
  EXPECT_EQ(GetValue(store_.get(), "s").outcome, Outcome::kOk);
}

// Regression: a shorter timeout in memory must not let an older, longer-lived disk copy return.
TEST_F(TieredStoreTest, ExpiredInMemoryDoesNotResurrectAnOlderDiskCopy) {
  PutValue(store_.get(), "s", "old", 60);
  PutMany(300);
  Flush();
  ASSERT_EQ(GetValue(store_.get(), "s").data, "old");  // loaded back
  PutValue(store_.get(), "s", "new", 1);
  clock_.AdvanceMinutes(2);
  EXPECT_EQ(GetValue(store_.get(), "s").outcome, Outcome::kNotFound);
  Flush();
  EXPECT_EQ(GetValue(store_.get(), "s").outcome, Outcome::kNotFound);
}

// Regression: a graceful shutdown dropped an expired item without a tombstone, so its older,
// longer-lived disk copy came back after the restart.
TEST_F(TieredStoreTest, ShutdownDoesNotResurrectAnExpiredItemsOlderDiskCopy) {
  PutValue(store_.get(), "s", "old", 60);
  PutMany(300);
  Flush();
  ASSERT_EQ(GetValue(store_.get(), "s").data, "old");  // loaded back into memory
  PutValue(store_.get(), "s", "new", 1);
  clock_.AdvanceMinutes(2);  // "new" expires in memory; nothing touches it before shutdown
  Restart();
  EXPECT_EQ(GetValue(store_.get(), "s").outcome, Outcome::kNotFound);
}

// Regression: an unchanged item read back from disk and then dropped (staging full, disk failing)
// used to leave a tombstone that deleted its good disk copy once the disk recovered.
TEST_F(TieredStoreTest, DroppedCleanItemsKeepTheirDiskCopy) {
  PutMany(300);
  ASSERT_TRUE(store_->PersistAll(kFlushTimeoutUs).ok());
  store_.reset();
  options_.max_staged_bytes = 16 << 10;
  OpenStore();  // memory empty; everything is on disk
  faulty_->set_write_fault(FaultInjectionDiskTier::WriteFault::kIOError);
  for (int i = 0; i < 300; ++i) {  // loads every item (clean), evicting the others
    ASSERT_EQ(GetValue(store_.get(), "s" + std::to_string(i)).data, Value(i));
  }
  EXPECT_GT(store_->GetStats().spill_dropped, 0u);
  faulty_->set_write_fault(FaultInjectionDiskTier::WriteFault::kNone);
  Flush();
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(GetValue(store_.get(), "s" + std::to_string(i)).data, Value(i)) << i;
  }
}

// Regression: every request's kick used to cut the writer's backoff short, so a failing disk was
// retried at the request rate.
TEST_F(TieredStoreTest, FailingDiskIsRetriedWithBackoffNotPerRequest) {
  faulty_->set_write_fault(FaultInjectionDiskTier::WriteFault::kIOError);
  for (int round = 0; round < 5; ++round) PutMany(300);  // ~1,500 stagings, each a kick
  EXPECT_LT(faulty_->failed_writes(), 30u);
  faulty_->set_write_fault(FaultInjectionDiskTier::WriteFault::kNone);
}

TEST_F(TieredStoreTest, LocksHoldWhateverTierAnItemIsIn) {
  PutMany(300);
  Flush();
  ReadResult lock = Lock(store_.get(), "s3");  // s3 comes back from disk and is locked
  ASSERT_EQ(lock.outcome, Outcome::kOk);
  EXPECT_EQ(lock.data, Value(3));
  for (int i = 300; i < 600; ++i) PutValue(store_.get(), "s" + std::to_string(i), Value(i));
  EXPECT_EQ(Lock(store_.get(), "s3").outcome, Outcome::kLocked) << "a locked item never spills";
  EXPECT_EQ(PutValue(store_.get(), "s3", "mine", 20, lock.lock_cookie), Outcome::kOk);
  EXPECT_EQ(GetValue(store_.get(), "s3").data, "mine");
}

TEST_F(TieredStoreTest, InitializeItemIsReportedOnceAcrossTiers) {
  WriteResult w;
  ASSERT_TRUE(store_->Put("u", "", 20, 0, true, &w).ok());
  PutMany(300);
  Flush();
  EXPECT_TRUE(Lock(store_.get(), "u").initialize_item);
  EXPECT_FALSE(GetValue(store_.get(), "u").initialize_item);
}

TEST_F(TieredStoreTest, WriteErrorsKeepItemsServedAndAreRetried) {
  faulty_->set_write_fault(FaultInjectionDiskTier::WriteFault::kIOError);
  PutMany(200);
  for (int i = 0; i < 200; ++i)
    ASSERT_EQ(GetValue(store_.get(), "s" + std::to_string(i)).data, Value(i));
  EXPECT_FALSE(store_->Flush(300'000).ok()) << "nothing can reach the disk";
  EXPECT_GT(faulty_->failed_writes(), 0u);
  EXPECT_EQ(store_->GetStats().disk_write_failing, 1u);
  EXPECT_GT(store_->GetStats().disk_write_errors, 0u);
  faulty_->set_write_fault(FaultInjectionDiskTier::WriteFault::kNone);
  Flush();
  EXPECT_EQ(store_->GetStats().staged_items, 0u);
  EXPECT_EQ(store_->GetStats().disk_write_failing, 0u);
}

TEST_F(TieredStoreTest, FullDiskDropsBeyondTheStagingBoundAndCountsIt) {
  store_.reset();
  options_.max_staged_bytes = 32 << 10;
  OpenStore();
  faulty_->set_write_fault(FaultInjectionDiskTier::WriteFault::kDiskFull);
  PutMany(400);
  StoreStats stats = store_->GetStats();
  EXPECT_GT(stats.spill_dropped, 0u);
  EXPECT_LE(stats.staged_bytes, options_.max_staged_bytes + 1024);
  EXPECT_EQ(GetValue(store_.get(), "s399").data, Value(399)) << "memory still serves";
}

TEST_F(TieredStoreTest, DiskReadErrorIsAnErrorNotAMiss) {
  PutMany(300);
  Flush();
  faulty_->set_fail_reads(true);
  ReadResult r;
  Status s = store_->Get("s0", &r);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(GetValue(store_.get(), "s299").data, Value(299)) << "memory still serves";
  faulty_->set_fail_reads(false);
  EXPECT_EQ(GetValue(store_.get(), "s0").data, Value(0));
}

// Concurrent exclusive increments and reads over a key space far larger than memory, so items
// are spilled, staged, pulled back and loaded while they are being used. No update may be lost
// and no reader may see a counter go backwards. Run under TSan in CI.
TEST_F(TieredStoreTest, NoLostOrStaleUpdatesWhileItemsMoveBetweenTiers) {
  constexpr int kKeys = 200, kWriters = 3, kReaders = 2, kIncrements = 300;
  for (int k = 0; k < kKeys; ++k) {
    PutValue(store_.get(), "k" + std::to_string(k), "0" + std::string(600, '.'));
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int done = 0; done < kIncrements;) {
        const std::string id = "k" + std::to_string(rng() % kKeys);
        ReadResult r;
        if (!store_->GetExclusive(id, &r).ok()) failures.fetch_add(1);
        if (r.outcome != Outcome::kOk) continue;
        const int n = std::stoi(r.data);
        WriteResult w;
        store_->Put(id, std::to_string(n + 1) + std::string(600, '.'), 20, r.lock_cookie, false,
                    &w);
        if (w.outcome != Outcome::kOk) failures.fetch_add(1);
        ++done;
      }
    });
  }
  for (int t = 0; t < kReaders; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(100 + t);
      std::map<int, int> last_seen;
      for (int i = 0; i < 3000; ++i) {
        const int k = static_cast<int>(rng() % kKeys);
        ReadResult r;
        if (!store_->Get("k" + std::to_string(k), &r).ok()) failures.fetch_add(1);
        if (r.outcome == Outcome::kLocked) continue;
        if (r.outcome != Outcome::kOk) {
          failures.fetch_add(1);  // every key always exists
          continue;
        }
        const int n = std::stoi(r.data);
        if (n < last_seen[k]) failures.fetch_add(1);  // stale read
        last_seen[k] = n;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  int total = 0;
  for (int k = 0; k < kKeys; ++k) {
    ReadResult r = GetValue(store_.get(), "k" + std::to_string(k));
    ASSERT_EQ(r.outcome, Outcome::kOk);
    total += std::stoi(r.data);
  }
  EXPECT_EQ(total, kWriters * kIncrements);
  StoreStats stats = store_->GetStats();
  EXPECT_GT(stats.spills, 0u);
  EXPECT_GT(stats.disk_loads + stats.staged_pullbacks, 0u);
}

}  // namespace
}  // namespace sessionserver
