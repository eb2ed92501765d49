// HandleTable: an intrusive chained hash table of Entry, as in LevelDB's util/cache.cc. Chains
// run through Entry::next_hash, so indexing an item costs one bucket pointer and no allocation.
// Grows (doubling) when it holds more entries than buckets; never shrinks.
//
// Not thread-safe: the owning Segment guards it with its mutex.
#ifndef SESSIONSERVER_STORAGE_HANDLE_TABLE_H_
#define SESSIONSERVER_STORAGE_HANDLE_TABLE_H_

#include <cstdint>
#include <string_view>

#include "storage/entry.h"

namespace sessionserver {

class HandleTable {
 public:
  HandleTable();
  ~HandleTable();
  HandleTable(const HandleTable&) = delete;
  HandleTable& operator=(const HandleTable&) = delete;

  Entry* Lookup(std::string_view key, uint32_t hash) { return *FindPointer(key, hash); }

  // Indexes `e`; returns the entry with the same key that it replaced, or null.
  Entry* Insert(Entry* e);

  // Unindexes `e` (which must be indexed). Returns `e`.
  Entry* Remove(Entry* e);

  uint32_t bucket_count() const { return length_; }
  Entry* bucket(uint32_t i) const { return list_[i]; }
  uint32_t size() const { return elems_; }

 private:
  Entry** FindPointer(std::string_view key, uint32_t hash);
  void Resize();

  uint32_t length_;
  uint32_t elems_;
  Entry** list_;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_STORAGE_HANDLE_TABLE_H_
