#include "storage/disk_record.h"

#include "storage/limits.h"
#include "util/crc32c.h"

namespace sessionserver {
namespace {

constexpr size_t kVersionOffset = 0;
constexpr size_t kFlagsOffset = 1;
constexpr size_t kTimeoutOffset = 2;
constexpr size_t kExpiresAtOffset = 6;
constexpr size_t kItemVersionOffset = 14;
constexpr size_t kSpillTimeOffset = 22;
constexpr size_t kDataLenOffset = 30;
static_assert(kDataLenOffset + 4 == kDiskRecordHeaderBytes, "header layout");

// Explicit byte order, independent of the host's.
void PutFixed(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}

// REQUIRES offset + bytes <= in.size() (checked by the caller).
uint64_t GetFixed(std::string_view in, size_t offset, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(in[offset + i])) << (8 * i);
  }
  return v;
}

uint32_t RecordCrc(std::string_view id, std::string_view covered) {
  return Crc32c(Crc32c(0, id.data(), id.size()), covered.data(), covered.size());
}

}  // namespace

std::string EncodeDiskRecord(std::string_view id, const ItemRecord& item, int64_t spill_time_us) {
  return EncodeDiskRecord(id, item, item.data, spill_time_us);
}

std::string EncodeDiskRecord(std::string_view id, const ItemRecord& item, std::string_view data,
                             int64_t spill_time_us) {
  std::string out;
  out.reserve(kDiskRecordHeaderBytes + data.size() + kDiskRecordTrailerBytes);
  PutFixed(&out, kDiskRecordFormatV1, 1);
  PutFixed(&out, item.uninitialized ? kDiskRecordFlagUninitialized : 0, 1);
  PutFixed(&out, static_cast<uint32_t>(item.timeout_minutes), 4);
  PutFixed(&out, static_cast<uint64_t>(item.expires_at_us), 8);
  PutFixed(&out, item.version, 8);
  PutFixed(&out, static_cast<uint64_t>(spill_time_us), 8);
  PutFixed(&out, static_cast<uint32_t>(data.size()), 4);
  out.append(data);
  PutFixed(&out, RecordCrc(id, out), 4);
  return out;
}

Status DecodeDiskRecord(std::string_view id, std::string_view bytes, size_t max_value_bytes,
                        ItemRecord* item, int64_t* spill_time_us) {
  constexpr size_t kMinBytes = kDiskRecordHeaderBytes + kDiskRecordTrailerBytes;
  if (bytes.size() < kMinBytes) {
    return Status::Corruption("disk record too short: " + std::to_string(bytes.size()) +
                              " bytes, at least " + std::to_string(kMinBytes) + " needed");
  }
  const uint64_t format = GetFixed(bytes, kVersionOffset, 1);
  if (format != kDiskRecordFormatV1) {
    return Status::Corruption("disk record has unknown format version " + std::to_string(format));
  }
  const uint64_t flags = GetFixed(bytes, kFlagsOffset, 1);
  if ((flags & ~uint64_t{kDiskRecordFlagUninitialized}) != 0) {
    return Status::Corruption("disk record has unknown flag bits in flags " +
                              std::to_string(flags));
  }
  const uint64_t timeout = GetFixed(bytes, kTimeoutOffset, 4);
  if (timeout < static_cast<uint64_t>(kMinTimeoutMinutes) ||
      timeout > static_cast<uint64_t>(kMaxTimeoutMinutes)) {
    return Status::Corruption("disk record timeout " + std::to_string(timeout) +
                              " minutes is outside 1..525600");
  }
  // Compared with the size actually present, so no sum of untrusted values can overflow.
  const uint64_t data_len = GetFixed(bytes, kDataLenOffset, 4);
  if (data_len != bytes.size() - kMinBytes) {
    return Status::Corruption("disk record data length " + std::to_string(data_len) +
                              " does not match the record size " + std::to_string(bytes.size()) +
                              " (expected " + std::to_string(bytes.size() - kMinBytes) + ")");
  }
  if (data_len > max_value_bytes) {
    return Status::Corruption("disk record data is " + std::to_string(data_len) +
                              " bytes; longer than the limit " + std::to_string(max_value_bytes));
  }
  const size_t covered = kDiskRecordHeaderBytes + static_cast<size_t>(data_len);
  const uint32_t stored_crc = static_cast<uint32_t>(GetFixed(bytes, covered, 4));
  const uint32_t actual_crc = RecordCrc(id, bytes.substr(0, covered));
  if (stored_crc != actual_crc) {
    return Status::Corruption("disk record checksum mismatch (wrong key or damaged bytes)");
  }

  item->id.assign(id.data(), id.size());
  item->data.assign(bytes.data() + kDiskRecordHeaderBytes, static_cast<size_t>(data_len));
  item->timeout_minutes = static_cast<int32_t>(timeout);
  item->expires_at_us = static_cast<int64_t>(GetFixed(bytes, kExpiresAtOffset, 8));
  item->version = GetFixed(bytes, kItemVersionOffset, 8);
  item->uninitialized = (flags & kDiskRecordFlagUninitialized) != 0;
  *spill_time_us = static_cast<int64_t>(GetFixed(bytes, kSpillTimeOffset, 8));
  return Status::OK();
}

}  // namespace sessionserver
