#include "storage/handle_table.h"

#include <cassert>
#include <cstring>

namespace sessionserver {

HandleTable::HandleTable() : length_(0), elems_(0), list_(nullptr) { Resize(); }

HandleTable::~HandleTable() { delete[] list_; }

Entry** HandleTable::FindPointer(std::string_view key, uint32_t hash) {
  Entry** ptr = &list_[hash & (length_ - 1)];
  while (*ptr != nullptr && ((*ptr)->hash != hash || (*ptr)->key() != key)) {
    ptr = &(*ptr)->next_hash;
  }
  return ptr;
}

Entry* HandleTable::Insert(Entry* e) {
  Entry** ptr = FindPointer(e->key(), e->hash);
  Entry* old = *ptr;
  e->next_hash = (old == nullptr) ? nullptr : old->next_hash;
  *ptr = e;
  if (old == nullptr) {
    ++elems_;
    if (elems_ > length_) Resize();
  }
  return old;
}

Entry* HandleTable::Remove(Entry* e) {
  Entry** ptr = &list_[e->hash & (length_ - 1)];
  while (*ptr != e) {
    assert(*ptr != nullptr);
    ptr = &(*ptr)->next_hash;
  }
  *ptr = e->next_hash;
  --elems_;
  return e;
}

void HandleTable::Resize() {
  uint32_t new_length = 16;
  while (new_length < elems_) new_length *= 2;
  if (new_length <= length_) new_length = length_ * 2;
  Entry** new_list = new Entry*[new_length];
  std::memset(new_list, 0, sizeof(new_list[0]) * new_length);
  for (uint32_t i = 0; i < length_; i++) {
    Entry* h = list_[i];
    while (h != nullptr) {
      Entry* next = h->next_hash;
      Entry** ptr = &new_list[h->hash & (new_length - 1)];
      h->next_hash = *ptr;
      *ptr = h;
      h = next;
    }
  }
  delete[] list_;
  list_ = new_list;
  length_ = new_length;
}

}  // namespace sessionserver
