#include "util/crc32c.h"

#include <array>

namespace sessionserver {
namespace {

constexpr uint32_t kCastagnoliReflected = 0x82F63B78u;

constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 1u) ? (crc >> 1) ^ kCastagnoliReflected : crc >> 1;
    }
    table[i] = crc;
  }
  return table;
}

// Built by the compiler: no run-time initialisation, nothing to race on.
constexpr std::array<uint32_t, 256> kTable = MakeTable();
static_assert(kTable[1] == 0xF26B8303u, "CRC-32C table");
static_assert(kTable[255] == 0xAD7D5351u, "CRC-32C table");

}  // namespace

uint32_t Crc32c(uint32_t init_crc, const char* data, size_t n) {
  uint32_t crc = ~init_crc;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    crc = kTable[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
  }
  return ~crc;
}

}  // namespace sessionserver
