// The disk tier's record format: round trips, the exact v1 layout, every Corruption check on its
// own, the checksum binding a record to its key, and 20,000 deterministic random mutations that
// must all be rejected. Also the CRC-32C it relies on.
#include "storage/disk_record.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "storage/limits.h"
#include "util/crc32c.h"

namespace sessionserver {
namespace {

constexpr size_t kMaxValue = 1 << 20;

uint32_t Crc(std::string_view s) { return Crc32c(0, s.data(), s.size()); }

TEST(Crc32cTest, StandardCheckValue) { EXPECT_EQ(Crc("123456789"), 0xE3069283u); }

TEST(Crc32cTest, EmptyInputIsZeroAndLeavesACrcUnchanged) {
  EXPECT_EQ(Crc32c(0, nullptr, 0), 0u);
  EXPECT_EQ(Crc(""), 0u);
  EXPECT_EQ(Crc32c(0xE3069283u, nullptr, 0), 0xE3069283u);
}

// RFC 3720 (iSCSI), appendix B.4.
TEST(Crc32cTest, MatchesIscsiVectors) {
  EXPECT_EQ(Crc(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(Crc(ascending), 0x46DD794Eu);
}

TEST(Crc32cTest, IncrementalEqualsOneShotAtEverySplit) {
  std::string s;
  for (int i = 0; i < 300; ++i) s.push_back(static_cast<char>((i * 131 + 7) & 0xFF));
  const uint32_t whole = Crc(s);
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    const uint32_t first = Crc32c(0, s.data(), cut);
    EXPECT_EQ(Crc32c(first, s.data() + cut, s.size() - cut), whole) << cut;
  }
  const uint32_t a = Crc32c(0, s.data(), 100);
  const uint32_t b = Crc32c(a, s.data() + 100, 100);
  EXPECT_EQ(Crc32c(b, s.data() + 200, 100), whole);
}

TEST(Crc32cTest, TheInstructionAndTheTableAgreeOnEveryLengthAndAlignment) {
  std::string s;
  for (int i = 0; i < 600; ++i) s.push_back(static_cast<char>((i * 197 + 11) & 0xFF));
  for (size_t start = 0; start < 9; ++start) {
    for (size_t n = 0; start + n <= s.size(); n += 7) {
      EXPECT_EQ(Crc32c(0x1234u, s.data() + start, n), Crc32cPortable(0x1234u, s.data() + start, n))
          << start << " " << n;
    }
  }
  EXPECT_EQ(Crc32cPortable(0, "123456789", 9), 0xE3069283u);
}

ItemRecord MakeItem(std::string data, int32_t timeout, int64_t expires_at_us, uint64_t version,
                    bool uninitialized) {
  ItemRecord item;
  item.data = std::move(data);
  item.timeout_minutes = timeout;
  item.expires_at_us = expires_at_us;
  item.version = version;
  item.uninitialized = uninitialized;
  return item;
}

void ExpectSameItem(const ItemRecord& got, std::string_view id, const ItemRecord& want) {
  EXPECT_EQ(got.id, id);
  EXPECT_EQ(got.data, want.data);
  EXPECT_EQ(got.timeout_minutes, want.timeout_minutes);
  EXPECT_EQ(got.expires_at_us, want.expires_at_us);
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.uninitialized, want.uninitialized);
}

bool IsCorruption(const Status& s) { return s.code() == Status::Code::kCorruption; }

// Overwrites `bytes` little-endian bytes at `offset`.
void SetField(std::string* rec, size_t offset, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) (*rec)[offset + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

// Recomputes the trailing checksum, so a test reaches the check it means to trigger.
void Reseal(std::string_view id, std::string* rec) {
  const size_t covered = rec->size() - kDiskRecordTrailerBytes;
  const uint32_t crc = Crc32c(Crc32c(0, id.data(), id.size()), rec->data(), covered);
  SetField(rec, covered, crc, 4);
}

TEST(DiskRecordTest, RoundTripsVariedRecords) {
  std::string binary("\0\x01\xff\0\x80zz\0", 8);
  const ItemRecord items[] = {
      MakeItem("", kDefaultTimeoutMinutes, 1'700'000'000'000'000, 1, false),
      MakeItem(binary, kMinTimeoutMinutes, 0, 2, false),
      MakeItem("cart=3;user=42", kMaxTimeoutMinutes, INT64_MAX, UINT64_MAX, false),
      MakeItem("", 20, 5, 0, true),
      MakeItem(std::string(kMaxValue, '\0'), 60, -1, uint64_t{1} << 63, true),
      MakeItem("v", 20, INT64_MIN, UINT64_MAX - 1, false),
  };
  const std::string ids[] = {"a", "session-0123456789abcdef", std::string(kMaxSessionIdBytes, '~')};
  int64_t spill = INT64_MIN;
  for (const ItemRecord& item : items) {
    for (const std::string& id : ids) {
      spill = spill / 2 + 12345;
      const std::string rec = EncodeDiskRecord(id, item, spill);
      ASSERT_EQ(rec.size(), kDiskRecordHeaderBytes + item.data.size() + kDiskRecordTrailerBytes);
      ItemRecord got;
      int64_t got_spill = 0;
      ASSERT_TRUE(DecodeDiskRecord(id, rec, kMaxValue, &got, &got_spill).ok());
      ExpectSameItem(got, id, item);
      EXPECT_EQ(got_spill, spill);
      EXPECT_EQ(EncodeDiskRecord(id, got, got_spill), rec);  // canonical
    }
  }
}

TEST(DiskRecordTest, EncodeIgnoresItemIdAndUsesTheKey) {
  ItemRecord item = MakeItem("d", 20, 9, 3, false);
  item.id = "other";
  const std::string rec = EncodeDiskRecord("key", item, 7);
  ItemRecord got;
  int64_t spill = 0;
  ASSERT_TRUE(DecodeDiskRecord("key", rec, kMaxValue, &got, &spill).ok());
  EXPECT_EQ(got.id, "key");
}

// Pins format v1 byte for byte: any change here needs a new format version.
TEST(DiskRecordTest, V1LayoutIsLittleEndianFixedWidth) {
  const ItemRecord item = MakeItem("xyz", 0x0001E240, 0x0102030405060708, 0x1112131415161718, true);
  const std::string rec = EncodeDiskRecord("id", item, 0x2122232425262728);
  const std::string header(
      "\x01\x01"
      "\x40\xE2\x01\x00"
      "\x08\x07\x06\x05\x04\x03\x02\x01"
      "\x18\x17\x16\x15\x14\x13\x12\x11"
      "\x28\x27\x26\x25\x24\x23\x22\x21"
      "\x03\x00\x00\x00",
      kDiskRecordHeaderBytes);
  ASSERT_EQ(rec.size(), kDiskRecordHeaderBytes + 3 + kDiskRecordTrailerBytes);
  EXPECT_EQ(rec.substr(0, kDiskRecordHeaderBytes), header);
  EXPECT_EQ(rec.substr(kDiskRecordHeaderBytes, 3), "xyz");
  const uint32_t crc = Crc("id" + header + "xyz");
  std::string trailer;
  for (int i = 0; i < 4; ++i) trailer.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
  EXPECT_EQ(rec.substr(kDiskRecordHeaderBytes + 3), trailer);
}

class DiskRecordCorruptionTest : public ::testing::Test {
 protected:
  DiskRecordCorruptionTest()
      : item_(MakeItem("session-data", 20, 1'000'000, 77, false)),
        rec_(EncodeDiskRecord(kId, item_, 555)) {}

  // Decodes `rec`; expects Corruption whose message contains `what`, and untouched outputs.
  void ExpectCorruption(const std::string& rec, const std::string& what,
                        size_t max_value_bytes = kMaxValue, std::string_view id = kId) {
    ItemRecord got = MakeItem("sentinel", 3, 4, 5, true);
    got.id = "sentinel-id";
    int64_t spill = -42;
    const Status s = DecodeDiskRecord(id, rec, max_value_bytes, &got, &spill);
    EXPECT_TRUE(IsCorruption(s)) << s.ToString();
    EXPECT_NE(s.message().find(what), std::string::npos) << s.ToString();
    EXPECT_EQ(got.id, "sentinel-id");
    EXPECT_EQ(got.data, "sentinel");
    EXPECT_EQ(got.version, 5u);
    EXPECT_EQ(spill, -42);
  }

  static constexpr std::string_view kId = "session-id-1";
  ItemRecord item_;
  std::string rec_;
};

TEST_F(DiskRecordCorruptionTest, TooShort) {
  for (size_t n = 0; n < kDiskRecordHeaderBytes + kDiskRecordTrailerBytes; ++n) {
    ExpectCorruption(rec_.substr(0, n), "too short");
  }
}

TEST_F(DiskRecordCorruptionTest, UnknownFormatVersion) {
  for (uint64_t v : {0, 2, 0x81, 0xFF}) {
    std::string rec = rec_;
    SetField(&rec, 0, v, 1);
    Reseal(kId, &rec);
    ExpectCorruption(rec, "unknown format version " + std::to_string(v));
  }
}

TEST_F(DiskRecordCorruptionTest, UnknownFlagBits) {
  for (uint64_t flags : {0x02, 0x03, 0x80, 0xFF}) {
    std::string rec = rec_;
    SetField(&rec, 1, flags, 1);
    Reseal(kId, &rec);
    ExpectCorruption(rec, "unknown flag bits");
  }
}

TEST_F(DiskRecordCorruptionTest, TimeoutOutsideOneMinuteToOneYear) {
  for (uint64_t t : {uint64_t{0}, uint64_t{525'601}, uint64_t{0x80000000}, uint64_t{0xFFFFFFFF}}) {
    std::string rec = rec_;
    SetField(&rec, 2, t, 4);
    Reseal(kId, &rec);
    ExpectCorruption(rec, "timeout " + std::to_string(t));
  }
}

TEST_F(DiskRecordCorruptionTest, DataLengthNotMatchingTheRecordSize) {
  const uint64_t actual = item_.data.size();
  for (uint64_t len : {uint64_t{0}, actual - 1, actual + 1, uint64_t{0xFFFFFFFF}}) {
    std::string rec = rec_;
    SetField(&rec, 30, len, 4);
    Reseal(kId, &rec);
    ExpectCorruption(rec, "data length " + std::to_string(len));
  }
  std::string longer = rec_;
  longer.insert(kDiskRecordHeaderBytes, "extra");
  Reseal(kId, &longer);
  ExpectCorruption(longer, "does not match");
}

TEST_F(DiskRecordCorruptionTest, DataLongerThanTheValueLimit) {
  const size_t n = item_.data.size();
  ItemRecord got;
  int64_t spill = 0;
  EXPECT_TRUE(DecodeDiskRecord(kId, rec_, n, &got, &spill).ok());
  ExpectCorruption(rec_, "longer than the limit", n - 1);
  ExpectCorruption(rec_, "longer than the limit", 0);
}

TEST_F(DiskRecordCorruptionTest, ChecksumMismatch) {
  std::string rec = rec_;
  rec[kDiskRecordHeaderBytes] ^= 0x20;  // one bit of the data
  ExpectCorruption(rec, "checksum mismatch");
  rec = rec_;
  rec.back() ^= 0x01;  // one bit of the checksum itself
  ExpectCorruption(rec, "checksum mismatch");
  rec = rec_;
  SetField(&rec, 14, 78, 8);  // the version, a plausible value
  ExpectCorruption(rec, "checksum mismatch");
}

// A record stored or read under the wrong key (a bug, or a swapped RocksDB value) is detected.
TEST_F(DiskRecordCorruptionTest, ChecksumBindsTheRecordToItsKey) {
  for (std::string_view other :
       {"session-id-2", "session-id-", "session-id-11", "", "Session-id-1"}) {
    ExpectCorruption(rec_, "checksum mismatch", kMaxValue, other);
  }
}

// 20,000 deterministic random mutations of valid records: each must come back as Corruption
// (a changed record cannot decode, since decoding and re-encoding give back the same bytes).
TEST(DiskRecordPropertyTest, RandomMutationsAreRejectedNeverServed) {
  std::mt19937_64 rng(20240601);
  auto below = [&rng](uint64_t n) { return n == 0 ? 0 : rng() % n; };
  std::vector<std::pair<std::string, std::string>> originals;  // (id, record)
  for (int i = 0; i < 16; ++i) {
    std::string data;
    const size_t len = i == 0 ? 0 : below(200);
    for (size_t j = 0; j < len; ++j) data.push_back(static_cast<char>(rng()));
    const int32_t timeout = static_cast<int32_t>(1 + below(kMaxTimeoutMinutes));
    const ItemRecord item = MakeItem(data, timeout, static_cast<int64_t>(rng()), rng(), i % 3 == 0);
    std::string id = "sess-" + std::to_string(rng());
    originals.emplace_back(id, EncodeDiskRecord(id, item, static_cast<int64_t>(rng())));
  }
  int changed = 0;
  for (int iter = 0; iter < 20'000; ++iter) {
    const auto& [id, original] = originals[below(originals.size())];
    std::string rec = original;
    const int mutations = 1 + static_cast<int>(below(3));
    for (int m = 0; m < mutations; ++m) {
      switch (below(5)) {
        case 0:  // flip one bit
          if (!rec.empty()) rec[below(rec.size())] ^= static_cast<char>(1u << below(8));
          break;
        case 1:  // truncate
          rec.resize(below(rec.size() + 1));
          break;
        case 2:  // extend with random bytes
          for (uint64_t k = 1 + below(8); k > 0; --k) rec.push_back(static_cast<char>(rng()));
          break;
        case 3:  // overwrite a few random bytes
          for (uint64_t k = 1 + below(8); k > 0 && !rec.empty(); --k) {
            rec[below(rec.size())] = static_cast<char>(rng());
          }
          break;
        default:  // insert or delete a byte in the middle
          if (below(2) == 0 || rec.empty()) {
            rec.insert(rec.begin() + static_cast<ptrdiff_t>(below(rec.size() + 1)),
                       static_cast<char>(rng()));
          } else {
            rec.erase(rec.begin() + static_cast<ptrdiff_t>(below(rec.size())));
          }
          break;
      }
    }
    ItemRecord got;
    int64_t spill = 0;
    const Status s = DecodeDiskRecord(id, rec, kMaxValue, &got, &spill);
    if (rec == original) {
      ASSERT_TRUE(s.ok()) << "iteration " << iter << ": " << s.ToString();
      ASSERT_EQ(EncodeDiskRecord(id, got, spill), original) << "iteration " << iter;
    } else {
      ++changed;
      ASSERT_TRUE(IsCorruption(s)) << "iteration " << iter << ": a changed record decoded";
    }
  }
  EXPECT_GT(changed, 19'000);
}

}  // namespace
}  // namespace sessionserver
