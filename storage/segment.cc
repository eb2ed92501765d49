#include "storage/segment.h"

#include <algorithm>

namespace sessionserver {
namespace {

// How many locked entries eviction may step over at the old end of the LRU list before it gives
// up for this round (locked items are in use and are never evicted; the segment may then run
// over its capacity until they unlock).
constexpr int kMaxLockedSkips = 64;

// How many hash buckets Reclaim sweeps per unit of budget.
constexpr uint32_t kBucketsPerBudgetUnit = 4;

}  // namespace

Segment::Segment(size_t capacity_bytes, int64_t max_lock_age_us)
    : capacity_(capacity_bytes), max_lock_age_us_(max_lock_age_us) {
  MutexLock l(&mu_);
  lru_.lru_next = &lru_;
  lru_.lru_prev = &lru_;
}

Segment::~Segment() {
  MutexLock l(&mu_);
  for (Entry* e = lru_.lru_next; e != &lru_;) {
    Entry* next = e->lru_next;
    Unref(e);
    e = next;
  }
}

void Segment::LruRemove(Entry* e) {
  e->lru_next->lru_prev = e->lru_prev;
  e->lru_prev->lru_next = e->lru_next;
}

void Segment::LruAppend(Entry* e) {
  e->lru_next = &lru_;
  e->lru_prev = lru_.lru_prev;
  e->lru_prev->lru_next = e;
  e->lru_next->lru_prev = e;
}

void Segment::Index(Entry* e) {
  Entry* old = table_.Insert(e);
  if (old != nullptr) {  // callers unindex first; keep the books right regardless
    LruRemove(old);
    usage_ -= old->charge;
    Unref(old);
  }
  LruAppend(e);
  usage_ += e->charge;
}

void Segment::Unindex(Entry* e, std::vector<Entry*>* sink) {
  table_.Remove(e);
  LruRemove(e);
  usage_ -= e->charge;
  sink->push_back(e);
}

Entry* Segment::FindLive(std::string_view key, uint32_t hash, int64_t now_us, Leftovers* lo) {
  Entry* e = table_.Lookup(key, hash);
  if (e != nullptr && e->ExpiredAt(now_us)) {
    ++counters_.expirations;
    Unindex(e, &lo->released);
    return nullptr;
  }
  return e;
}

void Segment::ExpireOldLock(Entry* e, int64_t now_us) {
  if (e->locked() && max_lock_age_us_ > 0 && now_us - e->lock_time_us >= max_lock_age_us_) {
    e->flags &= ~Entry::kLocked;
    ++counters_.locks_expired;
  }
}

void Segment::AnswerLocked(const Entry* e, int64_t now_us, WriteResult* out) {
  ++counters_.lock_conflicts;
  out->outcome = Outcome::kLocked;
  out->lock_cookie = e->lock_cookie;
  out->lock_age_ms = std::max<int64_t>(0, now_us - e->lock_time_us) / 1000;
}

void Segment::Touch(Entry* e, int64_t now_us) {
  e->last_access_us = now_us;
  LruRemove(e);
  LruAppend(e);
}

uint64_t Segment::NextVersion(uint64_t previous, int64_t now_us) {
  // A hybrid of a counter and the clock: strictly greater than anything this segment issued
  // before (so a removed-then-recreated id never reuses a version) and close to wall time (so
  // versions from different servers compare sensibly).
  uint64_t v = std::max({previous + 1, last_version_ + 1, static_cast<uint64_t>(now_us)});
  last_version_ = v;
  return v;
}

void Segment::Read(std::string_view key, uint32_t hash, bool exclusive, int64_t now_us,
                   ReadResult* out, Leftovers* lo) {
  MutexLock l(&mu_);
  Entry* e = FindLive(key, hash, now_us, lo);
  if (e == nullptr) {
    ++counters_.misses;
    out->outcome = Outcome::kNotFound;
    return;
  }
  ExpireOldLock(e, now_us);
  if (e->locked()) {
    WriteResult locked;
    AnswerLocked(e, now_us, &locked);
    out->outcome = Outcome::kLocked;
    out->lock_cookie = locked.lock_cookie;
    out->lock_age_ms = locked.lock_age_ms;
    return;
  }
  ++counters_.hits;
  if (exclusive) {
    ++e->lock_cookie;
    e->lock_time_us = now_us;
    e->flags |= Entry::kLocked;
    ++counters_.locks_acquired;
    out->lock_cookie = e->lock_cookie;
  }
  if (e->uninitialized()) {
    e->flags &= ~Entry::kUninitialized;
    e->version = NextVersion(e->version, now_us);
    out->initialize_item = true;
  }
  out->outcome = Outcome::kOk;
  out->timeout_minutes = e->timeout_minutes;
  out->version = e->version;
  Touch(e, now_us);
  Ref(e);
  lo->pinned = e;
}

void Segment::Put(Entry* fresh, int64_t lock_cookie, bool create_uninitialized, int64_t now_us,
                  WriteResult* out, Leftovers* lo) {
  MutexLock l(&mu_);
  Entry* old = FindLive(fresh->key(), fresh->hash, now_us, lo);
  if (old != nullptr) {
    ExpireOldLock(old, now_us);
    if (create_uninitialized) {  // the protocol ignores it silently when the item exists
      lo->released.push_back(fresh);
      out->outcome = Outcome::kOk;
      return;
    }
    if (old->locked() && lock_cookie != old->lock_cookie) {
      AnswerLocked(old, now_us, out);
      lo->released.push_back(fresh);
      return;
    }
    fresh->version = NextVersion(old->version, now_us);
    fresh->lock_cookie = old->lock_cookie;  // cookies keep increasing across puts
    Unindex(old, &lo->released);
    ++counters_.updates;
  } else {
    fresh->version = NextVersion(0, now_us);
    // Start cookies at the version so a removed-then-recreated item never reissues a cookie
    // that a stale client may still hold.
    fresh->lock_cookie = static_cast<int64_t>(fresh->version);
    if (create_uninitialized) fresh->flags |= Entry::kUninitialized;
    ++counters_.inserts;
  }
  fresh->last_access_us = now_us;
  Index(fresh);
  out->outcome = Outcome::kOk;
  EvictOverCapacity(lo);
}

void Segment::EvictOverCapacity(Leftovers* lo) {
  Entry* e = lru_.lru_next;
  int skipped = 0;
  while (usage_ > capacity_ && e != &lru_ && skipped < kMaxLockedSkips) {
    Entry* next = e->lru_next;
    if (e->locked()) {
      ++skipped;
    } else {
      ++counters_.evictions;
      Unindex(e, &lo->evicted);
    }
    e = next;
  }
}

void Segment::Release(std::string_view key, uint32_t hash, int64_t lock_cookie, int64_t now_us,
                      WriteResult* out, Leftovers* lo) {
  MutexLock l(&mu_);
  Entry* e = FindLive(key, hash, now_us, lo);
  if (e == nullptr) {
    out->outcome = Outcome::kNotFound;
    return;
  }
  ExpireOldLock(e, now_us);
  if (e->locked()) {
    if (lock_cookie != e->lock_cookie) {
      AnswerLocked(e, now_us, out);
      return;
    }
    e->flags &= ~Entry::kLocked;
  }
  Touch(e, now_us);
  out->outcome = Outcome::kOk;
}

void Segment::Remove(std::string_view key, uint32_t hash, int64_t lock_cookie, int64_t now_us,
                     WriteResult* out, Leftovers* lo) {
  MutexLock l(&mu_);
  Entry* e = FindLive(key, hash, now_us, lo);
  if (e == nullptr) {
    out->outcome = Outcome::kNotFound;
    return;
  }
  ExpireOldLock(e, now_us);
  if (e->locked() && lock_cookie != e->lock_cookie) {
    AnswerLocked(e, now_us, out);
    return;
  }
  ++counters_.removals;
  Unindex(e, &lo->released);
  out->outcome = Outcome::kOk;
}

void Segment::ResetTimeout(std::string_view key, uint32_t hash, int64_t now_us,
                           WriteResult* out, Leftovers* lo) {
  MutexLock l(&mu_);
  Entry* e = FindLive(key, hash, now_us, lo);
  if (e == nullptr) {
    out->outcome = Outcome::kNotFound;
    return;
  }
  Touch(e, now_us);
  out->outcome = Outcome::kOk;
}

size_t Segment::Reclaim(size_t budget, int64_t now_us, Leftovers* lo) {
  MutexLock l(&mu_);
  size_t reclaimed = 0;
  while (reclaimed < budget && lru_.lru_next != &lru_ && lru_.lru_next->ExpiredAt(now_us)) {
    Unindex(lru_.lru_next, &lo->released);
    ++reclaimed;
  }
  const uint32_t buckets = table_.bucket_count();
  const uint32_t sweep = static_cast<uint32_t>(
      std::min<size_t>(buckets, std::max<size_t>(1, budget) * kBucketsPerBudgetUnit));
  for (uint32_t i = 0; i < sweep && reclaimed < budget; ++i) {
    sweep_cursor_ = (sweep_cursor_ + 1) & (buckets - 1);
    for (Entry* e = table_.bucket(sweep_cursor_); e != nullptr && reclaimed < budget;) {
      Entry* next = e->next_hash;
      if (e->ExpiredAt(now_us)) {
        Unindex(e, &lo->released);
        ++reclaimed;
      }
      e = next;
    }
  }
  counters_.expirations += reclaimed;
  return reclaimed;
}

void Segment::AddStats(StoreStats* s) const {
  MutexLock l(&mu_);
  s->items += table_.size();
  s->bytes += usage_;
  s->capacity_bytes += capacity_;
  s->hits += counters_.hits;
  s->misses += counters_.misses;
  s->evictions += counters_.evictions;
  s->expirations += counters_.expirations;
  s->lock_conflicts += counters_.lock_conflicts;
  s->locks_expired += counters_.locks_expired;
  s->locks_acquired += counters_.locks_acquired;
  s->inserts += counters_.inserts;
  s->updates += counters_.updates;
  s->removals += counters_.removals;
}

}  // namespace sessionserver
