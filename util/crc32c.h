// CRC-32C (Castagnoli): the checksum of on-disk records (storage/disk_record.h). Reflected
// polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF, so that
// Crc32c(0, "123456789", 9) == 0xE3069283 (the standard check value, as in iSCSI, ext4, RocksDB).
//
// Incremental: the result of one call is the `init_crc` of the next, so
//   Crc32c(Crc32c(0, a, na), b, nb) == Crc32c(0, a followed by b, na + nb).
// The SSE4.2 crc32 instruction (8 bytes a step) where the CPU has it, else a byte-at-a-time table
// lookup: the same results (tests/unit/disk_record_test.cc checks the standard vectors). The
// journal checksums every acknowledged value, so the speed shows in the server's CPU per request.
// Thread-safe: a pure function.
#ifndef SESSIONSERVER_UTIL_CRC32C_H_
#define SESSIONSERVER_UTIL_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace sessionserver {

// Extends `init_crc` (0 to start) with `n` bytes at `data`. `data` may be null when `n` is 0.
uint32_t Crc32c(uint32_t init_crc, const char* data, size_t n);

// The same with the table lookup only, whatever the CPU (tests compare the two).
uint32_t Crc32cPortable(uint32_t init_crc, const char* data, size_t n);

}  // namespace sessionserver

#endif  // SESSIONSERVER_UTIL_CRC32C_H_
