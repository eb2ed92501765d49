// Both journal formats on real files in a temp dir: entries come back in sequence order with their
// values, erased entries are gone, and entries that do not decode are dropped, not replayed.
// Then the log format's own cases: a torn tail, a corrupt record in the middle, segments rolled
// and unlinked once erased, erase records kept as long as what they erased, concurrent appends;
// and moving a journal from one format to the other.
#include "storage/journal.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "storage/disk_record.h"
#include "tests/temp_dir.h"
#include "util/crc32c.h"

namespace sessionserver {
namespace {

namespace fs = std::filesystem;

BackingOp Put(const std::string& id, const std::string& data, uint64_t version) {
  return BackingOp{BackingOp::Kind::kPut, ItemRecord{id, data, 20, 1'000'000'000, version, false}};
}

std::string FormatName(const ::testing::TestParamInfo<JournalFormat>& info) {
  return info.param == JournalFormat::kLog ? "log" : "rocksdb";
}

class JournalTestBase {
 protected:
  void Open(JournalFormat format, size_t segment_bytes = 64u << 20) {
    journal_.reset();
    JournalOptions o;
    o.path = dir_.path();
    o.segment_bytes = segment_bytes;
    Status s;
    journal_ = OpenJournal(format, o, &s);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  std::vector<std::pair<uint64_t, BackingOp>> ReplayAll(bool with_values) {
    std::vector<std::pair<uint64_t, BackingOp>> out;
    EXPECT_TRUE(
        journal_
            ->Replay(with_values, [&](uint64_t seq, BackingOp op) { out.emplace_back(seq, op); })
            .ok());
    return out;
  }
  std::vector<uint64_t> ReplayedSeqs() {
    std::vector<uint64_t> seqs;
    for (const auto& [seq, op] : ReplayAll(false)) seqs.push_back(seq);
    return seqs;
  }

  TempDir dir_{"ss-journal"};
  std::unique_ptr<Journal> journal_;
};

class JournalTest : public JournalTestBase, public ::testing::TestWithParam<JournalFormat> {
 protected:
  void Open() { JournalTestBase::Open(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Formats, JournalTest,
                         ::testing::Values(JournalFormat::kLog, JournalFormat::kRocksDb),
                         FormatName);

TEST_P(JournalTest, ReplayFollowsSequenceOrderAcrossReopen) {
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

TEST_P(JournalTest, ErasedEntriesAreGone) {
  Open();
  ASSERT_TRUE(journal_->Append(1, Put("a", "x", 1)).ok());
  ASSERT_TRUE(journal_->Append(2, Put("a", "y", 2)).ok());
  ASSERT_TRUE(journal_->Erase({{1, "a"}}).ok());
  auto entries = ReplayAll(true);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].second.item.data, "y");
  BackingOp read;
  EXPECT_TRUE(journal_->Read(1, "a", &read).IsNotFound());
  EXPECT_TRUE(journal_->Read(2, "b", &read).IsNotFound()) << "the id is part of the key";
  EXPECT_FALSE(journal_->Append(3, BackingOp{BackingOp::Kind::kTouch, {}}).ok())
      << "touches are not journaled";
  Open();
  EXPECT_EQ(ReplayedSeqs(), std::vector<uint64_t>{2});
  EXPECT_TRUE(journal_->Read(1, "a", &read).IsNotFound()) << "erased for good";
}

// Writes, behind the journal's back, an entry (5, "b") whose value does not decode and an entry
// whose key has no session id.
void WriteEntriesThatDoNotDecode(JournalFormat format, const std::string& path);

TEST_P(JournalTest, EntriesThatDoNotDecodeAreDroppedNotReplayed) {
  Open();
  ASSERT_TRUE(journal_->Append(1, Put("a", "good", 1)).ok());
  journal_.reset();
  WriteEntriesThatDoNotDecode(GetParam(), dir_.path());
  Open();
  auto entries = ReplayAll(true);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].second.item.data, "good");
  EXPECT_EQ(journal_->GetStats().corrupt, 2u);
  EXPECT_EQ(ReplayAll(true).size(), 1u);
  EXPECT_EQ(journal_->GetStats().corrupt, 2u) << "dropped for good the first time";
  BackingOp read;
  EXPECT_TRUE(journal_->Read(5, "b", &read).IsNotFound());
}

TEST_P(JournalTest, AppendBatchWritesAllOrNothing) {
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

// A server started with one --journal_format on a data dir holding the other format's journal.
TEST_P(JournalTest, EntriesOfTheOtherFormatAreMovedIn) {
  const JournalFormat other =
      GetParam() == JournalFormat::kLog ? JournalFormat::kRocksDb : JournalFormat::kLog;
  Status s;
  JournalOptions o;
  o.path = JournalPath(dir_.path(), other);
  journal_ = OpenJournal(other, o, &s);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(journal_->Append(3, Put("a", "old", 1)).ok());
  ASSERT_TRUE(journal_->Append(4, Put("b", "erased", 1)).ok());
  ASSERT_TRUE(journal_->Append(9, Put("c", "older", 1)).ok());
  ASSERT_TRUE(journal_->Erase({{4, "b"}}).ok());
  journal_.reset();
  journal_ = OpenJournalIn(dir_.path(), GetParam(), JournalOptions(), &s);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(fs::exists(JournalPath(dir_.path(), other)));
  ASSERT_TRUE(journal_->Append(10, Put("a", "new", 2)).ok());
  journal_.reset();
  journal_ = OpenJournalIn(dir_.path(), GetParam(), JournalOptions(), &s);
  ASSERT_TRUE(s.ok()) << s.ToString();
  const auto entries = ReplayAll(true);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].first, 3u);
  EXPECT_EQ(entries[0].second.item.data, "old");
  EXPECT_EQ(entries[1].first, 9u);
  EXPECT_EQ(entries[2].first, 10u);
  EXPECT_EQ(entries[2].second.item.data, "new");
}

// The log format as docs/JOURNAL.md describes it, written independently of storage/.
std::string U32(uint32_t v) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(v >> (8 * i));
  return out;
}
std::string LogKey(uint64_t seq, const std::string& id) {
  std::string key;
  for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>(seq >> (8 * i)));
  key += id;
  return U32(static_cast<uint32_t>(key.size())) + key;
}
std::string LogRecord(uint32_t salt, uint8_t type, const std::string& payload) {
  const std::string covered = U32(static_cast<uint32_t>(payload.size())) +
                              std::string(1, static_cast<char>(type)) + payload;
  return U32(Crc32c(salt, covered.data(), covered.size())) + covered;
}
std::string LogSegmentHeader(uint32_t salt) {
  const std::string covered = "SSJLOG01" + U32(salt);
  return covered + U32(Crc32c(0, covered.data(), covered.size()));
}

void WriteEntriesThatDoNotDecode(JournalFormat format, const std::string& path) {
  if (format == JournalFormat::kLog) {
    std::ofstream out(path + "/00000000000000000050.log", std::ios::binary);
    out << LogSegmentHeader(77);
    out << LogRecord(77, 1, LogKey(5, "b") + "\x01\x01garbage");
    out << LogRecord(77, 1, U32(8) + std::string(8, '\0') + "\x01\x01garbage");  // no id
    return;
  }
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), path, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string key(8, '\0');
  key[7] = 5;
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key + "b", "\x01\x01garbage").ok());
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "short", "x").ok());
}

class LogJournalTest : public JournalTestBase, public ::testing::Test {
 protected:
  void Open(size_t segment_bytes = 64u << 20) {
    JournalTestBase::Open(JournalFormat::kLog, segment_bytes);
  }
  // The segment files, oldest first.
  std::vector<std::string> Segments() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_.path())) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  std::string SegmentPath(int number) const {
    std::string name = std::to_string(number);
    return dir_.path() + "/" + std::string(20 - name.size(), '0') + name + ".log";
  }
};

TEST_F(LogJournalTest, RecordsAreWrittenAsDocumented) {
  Open();
  const BackingOp a = Put("a", "x", 1);
  ASSERT_TRUE(journal_->Append(1, a).ok());
  ASSERT_TRUE(journal_->Erase({{1, "a"}, {7, "b"}}).ok());
  journal_.reset();
  EXPECT_EQ(Segments(), std::vector<std::string>{"00000000000000000001.log"});
  std::string bytes(fs::file_size(SegmentPath(1)), '\0');
  std::ifstream(SegmentPath(1), std::ios::binary).read(bytes.data(), bytes.size());
  ASSERT_GT(bytes.size(), 16u);
  const uint32_t salt = static_cast<uint32_t>(static_cast<uint8_t>(bytes[8])) |
                        static_cast<uint32_t>(static_cast<uint8_t>(bytes[9])) << 8 |
                        static_cast<uint32_t>(static_cast<uint8_t>(bytes[10])) << 16 |
                        static_cast<uint32_t>(static_cast<uint8_t>(bytes[11])) << 24;
  EXPECT_EQ(bytes,
            LogSegmentHeader(salt) +
                LogRecord(salt, 1, LogKey(1, "a") + "\x01\x01" + EncodeDiskRecord("a", a.item, 0)) +
                LogRecord(salt, 2, LogKey(1, "a") + LogKey(7, "b")));
}

TEST_F(LogJournalTest, TornTailIsCutAndEarlierEntriesKept) {
  Open();
  ASSERT_TRUE(journal_->Append(1, Put("a", "one", 1)).ok());
  ASSERT_TRUE(journal_->Append(2, Put("b", "two", 1)).ok());
  ASSERT_TRUE(journal_->Append(3, Put("c", "three", 1)).ok());
  journal_.reset();
  const auto size = fs::file_size(SegmentPath(1));
  fs::resize_file(SegmentPath(1), size - 5);  // the last write got only part of the way
  Open();
  EXPECT_EQ(ReplayedSeqs(), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(journal_->GetStats().corrupt, 0u) << "a torn tail is not corruption";
  EXPECT_LT(fs::file_size(SegmentPath(1)), size - 5) << "cut back to the last whole record";
  BackingOp read;
  EXPECT_TRUE(journal_->Read(3, "c", &read).IsNotFound());
  ASSERT_TRUE(journal_->Append(4, Put("d", "four", 1)).ok());
  Open();
  EXPECT_EQ(ReplayedSeqs(), (std::vector<uint64_t>{1, 2, 4}));
  EXPECT_EQ(journal_->GetStats().corrupt, 0u);
}

TEST_F(LogJournalTest, CorruptRecordInTheMiddleIsCountedAndSkipped) {
  Open();
  for (uint64_t seq : {1, 2, 3}) {  // three records of the same size
    ASSERT_TRUE(
        journal_->Append(seq, Put("id" + std::to_string(seq), std::string(100, 'v'), 1)).ok());
  }
  journal_.reset();
  const auto record = (fs::file_size(SegmentPath(1)) - 16) / 3;  // after the segment header
  {
    std::fstream f(SegmentPath(1), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(16 + record + record / 2));  // inside the second record
    f.put('X');
  }
  Open();
  const auto entries = ReplayAll(true);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].first, 1u);
  EXPECT_EQ(entries[1].first, 3u);
  EXPECT_EQ(entries[1].second.item.data, std::string(100, 'v'));
  EXPECT_EQ(journal_->GetStats().corrupt, 1u);
  BackingOp read;
  EXPECT_TRUE(journal_->Read(2, "id2", &read).IsNotFound());
}

TEST_F(LogJournalTest, SegmentWithADamagedHeaderIsSetAside) {
  Open();
  ASSERT_TRUE(journal_->Append(1, Put("a", "one", 1)).ok());
  journal_.reset();
  {
    std::fstream f(SegmentPath(1), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(9);  // the salt
    f.put('X');
  }
  Open();
  EXPECT_TRUE(ReplayedSeqs().empty());
  EXPECT_EQ(journal_->GetStats().corrupt, 1u);
  EXPECT_TRUE(fs::exists(SegmentPath(1) + ".corrupt")) << "kept for a look, never read again";
  ASSERT_TRUE(journal_->Append(2, Put("b", "two", 1)).ok());
  Open();
  EXPECT_EQ(ReplayedSeqs(), std::vector<uint64_t>{2});
  EXPECT_EQ(journal_->GetStats().corrupt, 0u);
}

// A value that holds a well-formed record of its own (a client can choose a session's bytes) is
// not read as one when the scan looks past a damaged record: records are checksummed with a salt
// the client cannot know.
TEST_F(LogJournalTest, RecordInsideAValueIsNotTakenForOneAfterDamage) {
  Open();
  const std::string forged =
      LogRecord(0, 1,
                LogKey(99, "victim") + "\x01\x01" +
                    EncodeDiskRecord("victim", Put("victim", "evil", 9).item, 0));
  ASSERT_TRUE(journal_->Append(1, Put("a", "one", 1)).ok());
  ASSERT_TRUE(journal_->Append(2, Put("attacker", "xx" + forged + "yy", 1)).ok());
  ASSERT_TRUE(journal_->Append(3, Put("c", "three", 1)).ok());
  journal_.reset();
  std::string bytes(fs::file_size(SegmentPath(1)), '\0');
  std::ifstream(SegmentPath(1), std::ios::binary).read(bytes.data(), bytes.size());
  const size_t at = bytes.find(forged);
  ASSERT_NE(at, std::string::npos);
  {
    std::fstream f(SegmentPath(1), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(at - 40));  // damage the attacker's record before it
    f.put('X');
  }
  Open();
  EXPECT_EQ(ReplayedSeqs(), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(journal_->GetStats().corrupt, 1u);
}

TEST_F(LogJournalTest, SegmentsRollAndFullyErasedOnesAreUnlinked) {
  Open(/*segment_bytes=*/4096);
  const std::string value(2048, 'v');  // one entry per segment
  for (uint64_t seq = 1; seq <= 10; ++seq) {
    ASSERT_TRUE(journal_->Append(seq, Put("id" + std::to_string(seq), value, 1)).ok());
  }
  EXPECT_EQ(Segments().size(), 10u);
  std::vector<JournalKey> erase;
  for (uint64_t seq = 1; seq <= 9; ++seq) erase.emplace_back(seq, "id" + std::to_string(seq));
  ASSERT_TRUE(journal_->Erase(erase).ok());
  EXPECT_EQ(Segments().size(), 1u) << "only the active segment, holding entry 10 and the erase";
  EXPECT_EQ(ReplayedSeqs(), std::vector<uint64_t>{10});
  Open(4096);
  EXPECT_EQ(ReplayedSeqs(), std::vector<uint64_t>{10});
  ASSERT_TRUE(journal_->Erase({{10, "id10"}}).ok());
  EXPECT_EQ(Segments().size(), 1u) << "the new active segment";
  Open(4096);
  EXPECT_TRUE(ReplayedSeqs().empty());
  EXPECT_EQ(Segments().size(), 1u);
}

// An erase record may sit in a segment all of whose own entries are erased: that segment stays
// while the segment holding what it erased does, or the erased entry would come back.
TEST_F(LogJournalTest, EraseRecordsLastAsLongAsWhatTheyErased) {
  Open(/*segment_bytes=*/4096);
  const std::string value(2000, 'v');
  const BackingOp a = Put("a", value, 1), b = Put("b", value, 1);
  ASSERT_TRUE(journal_->AppendBatch({{1, &a}, {2, &b}}).ok());  // segment 1
  ASSERT_TRUE(journal_->Append(3, Put("c", value, 1)).ok());    // segment 2
  ASSERT_TRUE(journal_->Erase({{1, "a"}}).ok());                // segment 2
  ASSERT_TRUE(journal_->Append(4, Put("d", value, 1)).ok());    // segment 3
  ASSERT_TRUE(journal_->Erase({{3, "c"}}).ok());                // segment 3
  EXPECT_TRUE(fs::exists(SegmentPath(2))) << "its erase of entry 1 is still needed";
  Open(4096);  // segment 4
  EXPECT_EQ(ReplayedSeqs(), (std::vector<uint64_t>{2, 4}));
  ASSERT_TRUE(journal_->Erase({{2, "b"}}).ok());
  EXPECT_FALSE(fs::exists(SegmentPath(1)));
  EXPECT_FALSE(fs::exists(SegmentPath(2)));
  EXPECT_TRUE(fs::exists(SegmentPath(3)));
  Open(4096);
  EXPECT_EQ(ReplayedSeqs(), std::vector<uint64_t>{4});
}

TEST_F(LogJournalTest, ConcurrentAppendsAreEachReplayedOnce) {
  Open(/*segment_bytes=*/64 << 10);
  constexpr int kThreads = 4, kBatches = 200, kBatchEntries = 8;
  const std::string value(256, 'v');
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<BackingOp> ops;
        std::vector<std::pair<uint64_t, const BackingOp*>> batch;
        const uint64_t first = 1 + static_cast<uint64_t>((t * kBatches + b) * kBatchEntries);
        for (int i = 0; i < kBatchEntries; ++i)
          ops.push_back(Put("t" + std::to_string(t), value, 1));
        for (int i = 0; i < kBatchEntries; ++i) batch.emplace_back(first + i, &ops[i]);
        ASSERT_TRUE(journal_->AppendBatch(batch).ok());
        BackingOp read;
        ASSERT_TRUE(journal_->Read(first, "t" + std::to_string(t), &read).ok());
        EXPECT_EQ(read.item.data, value);
        if (b % 2 == 1) {  // every other batch is written to Redis and erased
          std::vector<JournalKey> erase;
          for (int i = 0; i < kBatchEntries; ++i)
            erase.emplace_back(first + i, "t" + std::to_string(t));
          ASSERT_TRUE(journal_->Erase(erase).ok());
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<uint64_t> expected;
  for (int t = 0; t < kThreads; ++t) {
    for (int b = 0; b < kBatches; b += 2) {
      for (int i = 0; i < kBatchEntries; ++i) {
        expected.push_back(1 + static_cast<uint64_t>((t * kBatches + b) * kBatchEntries + i));
      }
    }
  }
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(ReplayedSeqs(), expected);
  Open(64 << 10);
  EXPECT_EQ(ReplayedSeqs(), expected);
  EXPECT_EQ(journal_->GetStats().corrupt, 0u);
}

}  // namespace
}  // namespace sessionserver
