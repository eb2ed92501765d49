// The on-disk record of one session in the RocksDB disk tier (format: docs/DISK_RECORD.md).
// The RocksDB key is the session id; the value is the record below, whose CRC-32C covers the id
// too, so a record read under the wrong key is detected.
//
// Format v1, little-endian, fixed width:
//   0  u8  format version (1)        14  u64 version
//   1  u8  flags (bit 0 uninit.)     22  i64 spill_time_us
//   2  u32 timeout_minutes           30  u32 data_len
//   6  i64 expires_at_us             34  data, then u32 crc32c(id bytes, record bytes [0, 34+len))
//
// Decoding trusts nothing: every field is checked, every read is bounds-checked, nothing is
// allocated before the record is known to be well formed, and nothing throws. Encoding is
// canonical: a record that decodes re-encodes to the same bytes.
// Thread-safe: free functions without shared state.
#ifndef SESSIONSERVER_STORAGE_DISK_RECORD_H_
#define SESSIONSERVER_STORAGE_DISK_RECORD_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "storage/session_store.h"
#include "util/status.h"

namespace sessionserver {

inline constexpr uint8_t kDiskRecordFormatV1 = 1;
inline constexpr uint8_t kDiskRecordFlagUninitialized = 0x01;
inline constexpr size_t kDiskRecordHeaderBytes = 34;
inline constexpr size_t kDiskRecordTrailerBytes = 4;

// The value to store under key `id`. `item.id` is ignored (the key is `id`).
// REQUIRES item.timeout_minutes in 1..525600 and item.data.size() < 4 GiB (the store's limits
// guarantee both); a record violating the first is written but will not decode.
std::string EncodeDiskRecord(std::string_view id, const ItemRecord& item, int64_t spill_time_us);
// The same with the data taken from `data` (item.data is ignored).
std::string EncodeDiskRecord(std::string_view id, const ItemRecord& item, std::string_view data,
                             int64_t spill_time_us);

// Parses the value `bytes` read under key `id`. On success fills `*item` (item->id = id) and
// `*spill_time_us`. Otherwise returns Corruption with a message saying what is wrong (too short,
// unknown format version, unknown flag bits, timeout outside 1..525600, data length not matching
// the record size, data longer than `max_value_bytes`, checksum mismatch) and leaves `*item` and
// `*spill_time_us` unchanged.
Status DecodeDiskRecord(std::string_view id, std::string_view bytes, size_t max_value_bytes,
                        ItemRecord* item, int64_t* spill_time_us);

}  // namespace sessionserver

#endif  // SESSIONSERVER_STORAGE_DISK_RECORD_H_
