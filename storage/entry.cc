#include "storage/entry.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace sessionserver {
namespace {

// glibc keeps an 8-byte size word in front of each chunk, and the hash table spends one bucket
// pointer per entry at full load (up to two right after growing): charge both, so the byte
// budget tracks what the process really holds.
constexpr size_t kMallocHeaderBytes = 8;
constexpr size_t kIndexBytesPerEntry = 2 * sizeof(void*);

}  // namespace

Entry* NewEntry(std::string_view key, uint32_t hash, std::string_view value,
                int32_t timeout_minutes) {
  const size_t bytes = sizeof(Entry) + key.size() + value.size();
  void* mem = std::malloc(bytes);
  if (mem == nullptr) return nullptr;
  Entry* e = new (mem) Entry();
  e->next_hash = e->lru_prev = e->lru_next = nullptr;
  e->version = 0;
  e->last_access_us = 0;
  e->lock_cookie = 0;
  e->lock_time_us = 0;
  e->hash = hash;
  e->value_len = static_cast<uint32_t>(value.size());
  e->charge =
      static_cast<uint32_t>(malloc_usable_size(mem) + kMallocHeaderBytes + kIndexBytesPerEntry);
  e->refs.store(1, std::memory_order_relaxed);
  e->timeout_minutes = timeout_minutes;
  e->key_len = static_cast<uint16_t>(key.size());
  e->flags = 0;
  std::memcpy(e->key_data(), key.data(), key.size());
  if (!value.empty()) std::memcpy(e->key_data() + key.size(), value.data(), value.size());
  return e;
}

void Unref(Entry* e) {
  if (e->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    e->~Entry();
    std::free(e);
  }
}

}  // namespace sessionserver
