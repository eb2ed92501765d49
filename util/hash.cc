#include "util/hash.h"

#include <sys/random.h>

#include <cstring>

namespace sessionserver {
namespace {

inline uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct SipState {
  uint64_t v0, v1, v2, v3;
  void Round() {
    v0 += v1;
    v1 = Rotl(v1, 13);
    v1 ^= v0;
    v0 = Rotl(v0, 32);
    v2 += v3;
    v3 = Rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = Rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = Rotl(v1, 17);
    v1 ^= v2;
    v2 = Rotl(v2, 32);
  }
  void Absorb(uint64_t m) {
    v3 ^= m;
    Round();
    v0 ^= m;
  }
};

}  // namespace

KeyedHasher::KeyedHasher() {
  uint64_t key[2] = {0, 0};
  // getrandom(2) blocks only before the kernel's pool is initialised at boot.
  if (getrandom(key, sizeof(key), 0) != static_cast<ssize_t>(sizeof(key))) {
    key[0] = reinterpret_cast<uintptr_t>(this) * 0x9E3779B97F4A7C15ull;  // degraded, never zero
    key[1] = ~key[0];
  }
  k0_ = key[0];
  k1_ = key[1];
}

// SipHash-1-3 (one compression round, three finalisation rounds).
uint64_t KeyedHasher::operator()(std::string_view data) const {
  SipState s{k0_ ^ 0x736f6d6570736575ull, k1_ ^ 0x646f72616e646f6dull, k0_ ^ 0x6c7967656e657261ull,
             k1_ ^ 0x7465646279746573ull};
  const size_t n = data.size();
  const char* p = data.data();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t m;
    std::memcpy(&m, p + i, 8);  // little-endian hosts only (x86_64, aarch64)
    s.Absorb(m);
  }
  uint64_t last = static_cast<uint64_t>(n) << 56;
  for (size_t j = 0; i + j < n; ++j) {
    last |= static_cast<uint64_t>(static_cast<unsigned char>(p[i + j])) << (8 * j);
  }
  s.Absorb(last);
  s.v2 ^= 0xff;
  s.Round();
  s.Round();
  s.Round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

}  // namespace sessionserver
