// Keyed hashing for in-memory indexes. Session ids come from clients, so an unkeyed hash would
// let anyone craft ids that all land in one bucket; SipHash-1-3 with a per-process random key
// (the choice of Redis and Rust's HashMap) makes collisions unpredictable.
// Thread-safe: a KeyedHasher is immutable after construction.
#ifndef SESSIONSERVER_UTIL_HASH_H_
#define SESSIONSERVER_UTIL_HASH_H_

#include <cstdint>
#include <string_view>

namespace sessionserver {

class KeyedHasher {
 public:
  // Random key from the OS CSPRNG.
  KeyedHasher();
  // Fixed key, for reproducible tests and benchmarks.
  KeyedHasher(uint64_t k0, uint64_t k1) : k0_(k0), k1_(k1) {}

  uint64_t operator()(std::string_view data) const;

 private:
  uint64_t k0_;
  uint64_t k1_;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_UTIL_HASH_H_
