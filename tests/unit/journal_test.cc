// The journal on a real RocksDB in a temp dir: entries come back in sequence order with their
// values, erased entries are gone, and entries that do not decode are dropped, not replayed.
#include "storage/journal.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/temp_dir.h"

namespace sessionserver {
namespace {

class JournalTest : public ::testing::Test {
 protected:
  void Open() {
    journal_.reset();
    JournalOptions o;
    o.path = dir_.path();
    Status s;
    journal_ = OpenJournal(o, &s);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  static BackingOp Put(const std::string& id, const std::string& data, uint64_t version) {
    return BackingOp{BackingOp::Kind::kPut,
                     ItemRecord{id, data, 20, 1'000'000'000, version, false}};
  }
  std::vector<std::pair<uint64_t, BackingOp>> ReplayAll(bool with_values) {
    std::vector<std::pair<uint64_t, BackingOp>> out;
    EXPECT_TRUE(
        journal_
            ->Replay(with_values, [&](uint64_t seq, BackingOp op) { out.emplace_back(seq, op); })
            .ok());
    return out;
  }

  TempDir dir_{"ss-journal"};
  std::unique_ptr<Journal> journal_;
};

TEST_F(JournalTest, ReplayFollowsSequenceOrderAcrossReopen) {
  Open();
  ASSERT_TRUE(journal_->Append(300, Put("b", "third", 3)).ok());
  ASSERT_TRUE(journal_->Append(2, Put("a", "first", 1)).ok());
  BackingOp remove = Put("a", "", 2);
  remove.kind = BackingOp::Kind::kRemove;
  ASSERT_TRUE(journal_->Append(17, remove).ok());
  Open();  // what a restart sees
  auto entries = ReplayAll(/*with_values=*/true);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].first, 2u);
  EXPECT_EQ(entries[0].second.item.data, "first");
  EXPECT_EQ(entries[1].first, 17u);
  EXPECT_EQ(entries[1].second.kind, BackingOp::Kind::kRemove);
  EXPECT_EQ(entries[2].first, 300u);
  EXPECT_EQ(entries[2].second.item.id, "b");
  EXPECT_EQ(entries[2].second.item.version, 3u);
  EXPECT_TRUE(ReplayAll(/*with_values=*/false)[0].second.item.data.empty());
  BackingOp read;
  ASSERT_TRUE(journal_->Read(300, "b", &read).ok());
  EXPECT_EQ(read.item.data, "third");
}

TEST_F(JournalTest, ErasedEntriesAreGone) {
  Open();
  ASSERT_TRUE(journal_->Append(1, Put("a", "x", 1)).ok());
  ASSERT_TRUE(journal_->Append(2, Put("a", "y", 2)).ok());
  ASSERT_TRUE(journal_->Erase({{1, "a"}}).ok());
  auto entries = ReplayAll(true);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].second.item.data, "y");
  BackingOp read;
  EXPECT_TRUE(journal_->Read(1, "a", &read).IsNotFound());
  EXPECT_FALSE(journal_->Append(3, BackingOp{BackingOp::Kind::kTouch, {}}).ok())
      << "touches are not journaled";
}

TEST_F(JournalTest, EntriesThatDoNotDecodeAreDroppedNotReplayed) {
  Open();
  ASSERT_TRUE(journal_->Append(1, Put("a", "good", 1)).ok());
  journal_.reset();
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_.path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string key(8, '\0');
    key[7] = 5;
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key + "b", "\x01\x01garbage").ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "short", "x").ok());
  }
  Open();
  auto entries = ReplayAll(true);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].second.item.data, "good");
  EXPECT_EQ(journal_->GetStats().corrupt, 2u);
  EXPECT_EQ(ReplayAll(true).size(), 1u);
  EXPECT_EQ(journal_->GetStats().corrupt, 2u) << "dropped for good the first time";
}

TEST_F(JournalTest, AppendBatchWritesAllOrNothing) {
  Open();
  const BackingOp a = Put("a", "one", 1), b = Put("b", "two", 2);
  const BackingOp touch{BackingOp::Kind::kTouch, ItemRecord{"c", "", 20, 1, 3, false}};
  EXPECT_TRUE(journal_->AppendBatch({{5, &a}, {6, &touch}}).IsInvalidArgument());
  EXPECT_TRUE(ReplayAll(true).empty()) << "a batch with a touch writes nothing";
  ASSERT_TRUE(journal_->AppendBatch({{7, &a}, {8, &b}}).ok());
  EXPECT_EQ(journal_->GetStats().appends, 2u);
  const auto entries = ReplayAll(true);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].first, 7u);
  EXPECT_EQ(entries[0].second.item.data, "one");
  EXPECT_EQ(entries[1].first, 8u);
  EXPECT_EQ(entries[1].second.item.data, "two");
}

}  // namespace
}  // namespace sessionserver
