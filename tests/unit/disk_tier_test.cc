// The RocksDB disk tier against a real RocksDB in a temporary directory, with a fake clock.
#include "storage/disk_tier.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <stdlib.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/temp_dir.h"

namespace sessionserver {
namespace {

class DiskTierTest : public ::testing::Test {
 protected:
  DiskTierTest() {
    options_.path = dir_.path() + "/db";
    options_.capacity_bytes = 1 << 20;
    options_.max_value_bytes = 64 << 10;
    Open();
  }
  ~DiskTierTest() override { tier_.reset(); }

  void Open() {
    tier_.reset();
    Status s;
    tier_ = OpenRocksDiskTier(options_, &clock_, &s);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  ItemRecord Item(const std::string& id, const std::string& data, uint64_t version = 7,
                  int32_t timeout_minutes = 20) {
    return ItemRecord{
        id,      data, timeout_minutes, clock_.NowMicros() + timeout_minutes * 60'000'000LL,
        version, false};
  }
  void Put(const ItemRecord& item) { ASSERT_TRUE(tier_->Write({DiskOp{false, item}}).ok()); }
  bool Get(const std::string& id, ItemRecord* out) {
    bool found = false;
    EXPECT_TRUE(tier_->Read(id, out, &found).ok());
    return found;
  }

  TempDir dir_{"ss-disk"};
  FakeClock clock_;
  RocksDiskTierOptions options_;
  std::unique_ptr<DiskTier> tier_;
};

TEST_F(DiskTierTest, WriteThenReadReturnsEveryField) {
  ItemRecord in = Item("sid-1", std::string("bin\0ary", 7), 42, 30);
  in.uninitialized = true;
  Put(in);
  ItemRecord out;
  ASSERT_TRUE(Get("sid-1", &out));
  EXPECT_EQ(out.id, "sid-1");
  EXPECT_EQ(out.data, in.data);
  EXPECT_EQ(out.timeout_minutes, 30);
  EXPECT_EQ(out.expires_at_us, in.expires_at_us);
  EXPECT_EQ(out.version, 42u);
  EXPECT_TRUE(out.uninitialized);
  EXPECT_FALSE(Get("sid-2", &out));
}

TEST_F(DiskTierTest, RemoveDeletes) {
  Put(Item("a", "x", 7));
  ASSERT_TRUE(tier_->Write({DiskOp{true, ItemRecord{"a", "", 0, 0, 7, false}}}).ok());
  ItemRecord out;
  EXPECT_FALSE(Get("a", &out));
  EXPECT_EQ(tier_->GetStats().records_deleted, 1u);
  EXPECT_EQ(tier_->GetStats().live_bytes, 0u);
}

TEST_F(DiskTierTest, OlderVersionNeverReplacesOrDeletesANewerRecord) {
  Put(Item("a", "v9", 9));
  Put(Item("a", "v8", 8));
  ItemRecord out;
  ASSERT_TRUE(Get("a", &out));
  EXPECT_EQ(out.data, "v9");
  ASSERT_TRUE(tier_->Write({DiskOp{true, ItemRecord{"a", "", 0, 0, 8, false}}}).ok());
  ASSERT_TRUE(Get("a", &out)) << "a tombstone of an older version must not delete v9";
  EXPECT_EQ(tier_->GetStats().stale_skipped, 2u);
  Put(Item("a", "v10", 10));
  ASSERT_TRUE(Get("a", &out));
  EXPECT_EQ(out.data, "v10");
}

// Regression: an expired record with a higher version used to make the guard skip a new
// session's writes, which the writer then treated as written: the session was lost.
TEST_F(DiskTierTest, ExpiredRecordDoesNotWinTheVersionGuard) {
  Put(Item("a", "old", 900, 1));
  clock_.AdvanceMinutes(2);
  Put(Item("a", "new", 5, 20));
  ItemRecord out;
  ASSERT_TRUE(Get("a", &out));
  EXPECT_EQ(out.data, "new");
  EXPECT_EQ(tier_->GetStats().stale_skipped, 0u);
}

TEST_F(DiskTierTest, LaterOpsInOneBatchWin) {
  ASSERT_TRUE(
      tier_
          ->Write({DiskOp{false, Item("a", "first", 1)}, DiskOp{false, Item("a", "second", 2)},
                   DiskOp{true, Item("b", "", 3)}, DiskOp{false, Item("b", "b-last", 4)}})
          .ok());
  ItemRecord out;
  ASSERT_TRUE(Get("a", &out));
  EXPECT_EQ(out.data, "second");
  ASSERT_TRUE(Get("b", &out));
  EXPECT_EQ(out.data, "b-last");
}

TEST_F(DiskTierTest, ExpiredRecordIsNeverReturned) {
  Put(Item("a", "x", 1, 1));
  clock_.AdvanceSeconds(59);
  ItemRecord out;
  EXPECT_TRUE(Get("a", &out));
  clock_.AdvanceSeconds(1);
  EXPECT_FALSE(Get("a", &out));
  EXPECT_EQ(tier_->GetStats().expired_on_read, 1u);
}

TEST_F(DiskTierTest, CompactionDropsExpiredRecordsAndTheirBytes) {
  for (int i = 0; i < 50; ++i) Put(Item("short" + std::to_string(i), std::string(100, 's'), 1, 1));
  for (int i = 0; i < 50; ++i) Put(Item("long" + std::to_string(i), std::string(100, 'l'), 1, 60));
  const uint64_t before = tier_->GetStats().live_bytes;
  clock_.AdvanceMinutes(2);
  ASSERT_TRUE(tier_->Compact().ok());
  DiskTierStats stats = tier_->GetStats();
  EXPECT_GE(stats.compaction_drops, 50u);
  EXPECT_LT(stats.live_bytes, before * 6 / 10);
  ItemRecord out;
  EXPECT_TRUE(Get("long3", &out));
}

TEST_F(DiskTierTest, CapacityEvictsTheLeastRecentlySpilledFirst) {
  options_.capacity_bytes = 64 << 10;
  Open();
  const std::string value(1000, 'v');
  for (int i = 0; i < 100; ++i) {
    clock_.AdvanceMicros(1);
    Put(Item("k" + std::to_string(i), value));
  }
  // Spill k0 again: it becomes the most recent.
  clock_.AdvanceMicros(1);
  Put(Item("k0", value));
  ASSERT_TRUE(tier_->EnforceCapacity().ok());
  DiskTierStats stats = tier_->GetStats();
  EXPECT_LE(stats.live_bytes, options_.capacity_bytes);
  EXPECT_GT(stats.capacity_evictions, 30u);
  ItemRecord out;
  EXPECT_FALSE(Get("k1", &out)) << "oldest spill goes first";
  EXPECT_TRUE(Get("k0", &out)) << "re-spilled, so recent";
  EXPECT_TRUE(Get("k99", &out));
}

TEST_F(DiskTierTest, RecordsSurviveReopen) {
  Put(Item("persist", "me"));
  const uint64_t live = tier_->GetStats().live_bytes;
  Open();
  ItemRecord out;
  ASSERT_TRUE(Get("persist", &out));
  EXPECT_EQ(out.data, "me");
  EXPECT_EQ(tier_->GetStats().live_bytes, live) << "the live estimate is rebuilt on open";
}

TEST_F(DiskTierTest, CorruptRecordIsRejectedAndCounted) {
  Put(Item("good", "fine"));
  tier_.reset();
  {
    // Write garbage under a session id behind the tier's back.
    rocksdb::Options o;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"spill_order", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, options_.path, families, &handles, &db).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[0], "bad", "\x01garbage").ok());
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  Open();
  ItemRecord out;
  EXPECT_FALSE(Get("bad", &out));
  EXPECT_EQ(tier_->GetStats().corrupt_records, 1u);
  EXPECT_TRUE(Get("good", &out));
}

TEST(DiskTierOpenTest, UnusablePathIsAClearError) {
  FakeClock clock;
  RocksDiskTierOptions options;
  options.path = "/proc/definitely/not/writable";
  Status s;
  EXPECT_EQ(OpenRocksDiskTier(options, &clock, &s), nullptr);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(s.ToString().empty());
}

}  // namespace
}  // namespace sessionserver
