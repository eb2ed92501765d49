#include "storage/segment.h"

#include <algorithm>

namespace sessionserver {
namespace {

// How many hash buckets Reclaim sweeps per unit of budget.
constexpr uint32_t kBucketsPerBudgetUnit = 4;

}  // namespace

Segment::Segment(size_t capacity_bytes, int64_t max_lock_age_us)
    : capacity_(capacity_bytes), max_lock_age_us_(max_lock_age_us) {
  MutexLock l(&mu_);
  for (Entry* head : {&lru_, &locked_}) head->lru_next = head->lru_prev = head;
}

Segment::~Segment() {
  MutexLock l(&mu_);
  for (Entry* head : {&lru_, &locked_}) {
    for (Entry* e = head->lru_next; e != head;) {
      Entry* next = e->lru_next;
      Unref(e);
      e = next;
    }
  }
}

void Segment::ListRemove(Entry* e) {
  e->lru_next->lru_prev = e->lru_prev;
  e->lru_prev->lru_next = e->lru_next;
}

void Segment::ListAppend(Entry* head, Entry* e) {
  e->lru_next = head;
  e->lru_prev = head->lru_prev;
  e->lru_prev->lru_next = e;
  e->lru_next->lru_prev = e;
}

void Segment::Index(Entry* e) {
  Entry* old = table_.Insert(e);
  if (old != nullptr) {  // callers unindex first; keep the books right regardless
    ListRemove(old);
    usage_ -= old->charge;
    Unref(old);
  }
  ListAppend(&lru_, e);
  usage_ += e->charge;
}

void Segment::Unindex(Entry* e, EntryList* sink) {
  table_.Remove(e);
  ListRemove(e);
  usage_ -= e->charge;
  sink->push_back(e);
}

void Segment::LockEntry(Entry* e, int64_t now_us) {
  ++e->lock_cookie;
  e->lock_time_us = now_us;
  e->flags |= Entry::kLocked;
  ListRemove(e);
  ListAppend(&locked_, e);  // lock times only grow, so the locked list stays in lock order
  ++counters_.locks_acquired;
}

void Segment::UnlockEntry(Entry* e) {
  e->flags &= ~Entry::kLocked;
  ListRemove(e);
  ListAppend(&lru_, e);
}

bool Segment::LockTooOld(const Entry* e, int64_t now_us) const {
  return max_lock_age_us_ > 0 && now_us - e->lock_time_us >= max_lock_age_us_;
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
  if (e->locked() && LockTooOld(e, now_us)) DropStaleLock(e, lru_.lru_next);
}

void Segment::DropStaleLock(Entry* e, Entry* before) {
  // Unused for at least the lock-age limit, so it goes to the old end of the LRU list, in front
  // of `before`. A caller that goes on to use it touches it.
  e->flags &= ~Entry::kLocked;
  ListRemove(e);
  ListAppend(before, e);
  ++counters_.locks_expired;
}

void Segment::AnswerLocked(const Entry* e, int64_t now_us, WriteResult* out) {
  ++counters_.lock_conflicts;
  out->outcome = Outcome::kLocked;
  out->lock_cookie = e->lock_cookie;
  out->lock_age_ms = e->locked() ? std::max<int64_t>(0, now_us - e->lock_time_us) / 1000 : 0;
}

void Segment::Touch(Entry* e, int64_t now_us) {
  e->last_access_us = now_us;
  if (!e->locked()) {  // a locked entry keeps its place in the locked list (lock order)
    ListRemove(e);
    ListAppend(&lru_, e);
  }
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
    LockEntry(e, now_us);
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
      Touch(old, now_us);
      lo->released.push_back(fresh);
      out->outcome = Outcome::kOk;
      return;
    }
    // A cookie that is not the item's latest means a newer lock was issued since the caller's
    // (its lock was dropped by age or force-released): the caller's copy is stale. Without this
    // check an unlocked item would take the stale write and lose the newer one.
    if (lock_cookie != old->lock_cookie && (old->locked() || lock_cookie != 0)) {
      AnswerLocked(old, now_us, out);
      lo->released.push_back(fresh);
      return;
    }
    fresh->version = NextVersion(old->version, now_us);
    fresh->lock_cookie = old->lock_cookie;  // cookies keep increasing across puts
    Unindex(old, &lo->released);
    ++counters_.updates;
  } else if (lock_cookie != 0 && !create_uninitialized) {
    // The caller held a lock on an item that is gone (removed, e.g. by sign-out, or expired).
    // Re-creating it would undo the removal: removal wins.
    lo->released.push_back(fresh);
    out->outcome = Outcome::kNotFound;
    return;
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
  EvictOverCapacity(fresh, now_us, lo);
}

void Segment::EvictOverCapacity(const Entry* keep, int64_t now_us, Leftovers* lo) {
  if (usage_ <= capacity_) return;
  // Abandoned locks (crashed clients) must not pin memory: drop the stale ones, oldest first,
  // which returns their entries to the LRU list and makes them evictable.
  Entry* const oldest_unlocked = lru_.lru_next;  // all go in front of it, in lock order
  while (locked_.lru_next != &locked_ && LockTooOld(locked_.lru_next, now_us)) {
    DropStaleLock(locked_.lru_next, oldest_unlocked);
  }
  // Locked entries are not on the LRU list, so nothing here is in use except `keep`, the entry
  // just written, which sits at the new end: stopping there may leave the segment over budget
  // until locked neighbours unlock, but never evicts what the caller was just told is stored.
  while (usage_ > capacity_ && lru_.lru_next != &lru_ && lru_.lru_next != keep) {
    Entry* e = lru_.lru_next;
    if (e->ExpiredAt(now_us)) {
      ++counters_.expirations;  // dead anyway: reclaim it rather than spill it
      Unindex(e, &lo->released);
    } else {
      ++counters_.evictions;
      Unindex(e, &lo->evicted);
    }
  }
}

Entry* Segment::FindForHolder(std::string_view key, uint32_t hash, int64_t lock_cookie,
                              int64_t now_us, WriteResult* out, Leftovers* lo) {
  Entry* e = FindLive(key, hash, now_us, lo);
  if (e == nullptr) {
    out->outcome = Outcome::kNotFound;
    return nullptr;
  }
  ExpireOldLock(e, now_us);
  if (e->locked() && lock_cookie != e->lock_cookie) {
    AnswerLocked(e, now_us, out);
    return nullptr;
  }
  return e;
}

void Segment::Release(std::string_view key, uint32_t hash, int64_t lock_cookie, int64_t now_us,
                      WriteResult* out, Leftovers* lo) {
  MutexLock l(&mu_);
  Entry* e = FindForHolder(key, hash, lock_cookie, now_us, out, lo);
  if (e == nullptr) return;
  if (e->locked()) UnlockEntry(e);
  Touch(e, now_us);
  out->outcome = Outcome::kOk;
}

void Segment::Remove(std::string_view key, uint32_t hash, int64_t lock_cookie, int64_t now_us,
                     WriteResult* out, Leftovers* lo) {
  MutexLock l(&mu_);
  Entry* e = FindForHolder(key, hash, lock_cookie, now_us, out, lo);
  if (e == nullptr) return;
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
