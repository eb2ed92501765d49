#include "storage/segment.h"

#include <algorithm>

namespace sessionserver {
namespace {

// How many hash buckets Reclaim sweeps per unit of budget.
constexpr uint32_t kBucketsPerBudgetUnit = 4;
// What a staged tombstone is counted as against max_staged_bytes.
constexpr size_t kTombstoneBytes = 64;

}  // namespace

Segment::Segment(const SegmentOptions& options) : options_(options) {
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
  for (auto& [id, staged] : staged_) {
    if (staged.entry != nullptr) Unref(staged.entry);
  }
}

// ---- Lists, index, locks ----

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

void Segment::Unindex(Entry* e) {
  table_.Remove(e);
  ListRemove(e);
  usage_ -= e->charge;
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
  return options_.max_lock_age_us > 0 && now_us - e->lock_time_us >= options_.max_lock_age_us;
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

void Segment::Touch(Entry* e, int64_t now_us, Leftovers* lo) {
  e->last_access_us = now_us;
  LogChange(BackingOp::Kind::kTouch, e, e->version, lo);
  if (!e->locked()) {  // a locked entry keeps its place in the locked list (lock order)
    ListRemove(e);
    ListAppend(&lru_, e);
  }
}

void Segment::InvalidateLoads(std::string_view key) {
  auto ticket = loads_.find(std::string(key));
  if (ticket != loads_.end()) ++ticket->second.generation;
}

void Segment::LogChange(BackingOp::Kind kind, Entry* e, uint64_t version, Leftovers* lo,
                        bool replicate) {
  if (options_.write_behind == nullptr) return;
  BackingOp op;
  op.kind = kind;
  op.item.id.assign(e->key());
  op.item.timeout_minutes = e->timeout_minutes;
  op.item.expires_at_us = e->expires_at_us();
  op.item.version = version;
  op.item.uninitialized = e->uninitialized();
  if (kind == BackingOp::Kind::kPut) {
    Ref(e);  // values never change: the queue and the journal read them without a lock
    op.value_owner = std::shared_ptr<const void>(e, [](Entry* pinned) { Unref(pinned); });
    op.value = e->value();
  }
  LogOp(std::move(op), lo, replicate);
}

void Segment::LogOp(BackingOp op, Leftovers* lo, bool replicate) {
  if (op.kind != BackingOp::Kind::kTouch) InvalidateLoads(op.item.id);
  if (replicate && options_.replicator != nullptr) options_.replicator->Enqueue(op);
  if (op.kind == BackingOp::Kind::kTouch) {
    options_.write_behind->Enqueue(std::move(op));
    return;
  }
  const uint64_t seq = options_.write_behind->Enqueue(op);
  if (seq != 0) {
    lo->journal_op = std::move(op);
    lo->journal_seq = seq;
  }
}

uint64_t Segment::NextVersion(uint64_t previous, int64_t now_us) {
  // A hybrid of a counter and the clock: strictly greater than anything this segment issued or
  // loaded before (so a removed-then-recreated id never reuses a version) and close to wall time
  // (so versions from different servers compare sensibly).
  uint64_t v = std::max({previous + 1, last_version_ + 1, static_cast<uint64_t>(now_us)});
  last_version_ = v;
  return v;
}

// ---- Leaving memory: discard, stage, evict ----

void Segment::Discard(Entry* e, Leftovers* lo) {
  Unindex(e);
  if (options_.has_disk_tier && e->maybe_below()) {
    Stage(e, /*tombstone=*/true, lo);
  } else {
    lo->released.push_back(e);
  }
}

void Segment::Stage(Entry* e, bool tombstone, Leftovers* lo, bool force, bool lower_is_current) {
  std::string id(e->key());
  bool dropped = false;
  InvalidateLoads(id);  // a lower-tier read in flight is stale now
  if (!tombstone && !force && staged_bytes_ + e->charge > options_.max_staged_bytes) {
    // The writer is far behind (a failing disk; a merely slow one is met with backpressure at the
    // soft bound first): drop the data rather than grow without bound. Nothing more is needed if
    // no copy is on disk, or if the disk copy holds the same data (a clean item: at worst it
    // expires earlier than it would have). Otherwise the disk copy is older than what was
    // acknowledged, and a tombstone (far smaller than the entry it replaces) keeps it from
    // being served.
    ++counters_.spill_dropped;
    if (!e->maybe_below() || !e->data_dirty()) {
      lo->released.push_back(e);
      return;
    }
    tombstone = true;
    dropped = true;
  }
  Staged& slot = staged_[id];
  if (slot.entry != nullptr) {
    staged_bytes_ -= slot.entry->charge;
    lo->released.push_back(slot.entry);
  } else if (slot.seq != 0) {
    staged_bytes_ -= kTombstoneBytes;
  }
  slot.version = e->version;
  slot.seq = ++next_stage_seq_;
  slot.in_flight = false;
  slot.dropped_spill = dropped || lower_is_current;
  if (tombstone) {
    slot.entry = nullptr;
    staged_bytes_ += kTombstoneBytes;
    lo->released.push_back(e);
    ++counters_.tombstones;
  } else {
    e->flags |= Entry::kMaybeBelow;
    slot.entry = e;
    staged_bytes_ += e->charge;
    ++counters_.spills;
  }
  lo->staged = true;
  if (staged_bytes_ > options_.max_staged_bytes / 4) lo->over_soft_bound = true;
}

void Segment::EvictOverCapacity(const Entry* keep, int64_t now_us, Leftovers* lo) {
  if (usage_ <= options_.capacity_bytes) return;
  // Abandoned locks (crashed clients) must not pin memory: drop the stale ones, oldest first,
  // which returns their entries to the LRU list and makes them evictable.
  Entry* const oldest_unlocked = lru_.lru_next;  // all go in front of it, in lock order
  while (locked_.lru_next != &locked_ && LockTooOld(locked_.lru_next, now_us)) {
    DropStaleLock(locked_.lru_next, oldest_unlocked);
  }
  // Locked entries are not on the LRU list, so nothing here is in use except `keep`, the entry
  // just written or loaded, which sits at the new end: stopping there may leave the segment over
  // budget until locked neighbours unlock, but never evicts what the caller is about to use.
  while (usage_ > options_.capacity_bytes && lru_.lru_next != &lru_ && lru_.lru_next != keep) {
    Entry* e = lru_.lru_next;
    if (e->ExpiredAt(now_us)) {
      ++counters_.expirations;  // dead anyway: reclaim it rather than spill it
      Discard(e, lo);
      continue;
    }
    ++counters_.evictions;
    Unindex(e);
    if (options_.has_disk_tier) {
      Stage(e, /*tombstone=*/false, lo);
    } else {
      lo->evicted.push_back(e);
    }
  }
}

// ---- Finding an item in memory, the staging area, or the disk tier ----

void Segment::RequestLoad(std::string_view key, Load* load) {
  LoadTicket& t = loads_[std::string(key)];
  ++t.holders;
  load->ticket_generation = t.generation;
  load->needed = true;
}

bool Segment::ReleaseTicket(std::string_view key, uint64_t generation) {
  auto it = loads_.find(std::string(key));
  if (it == loads_.end()) return false;
  const bool valid = it->second.generation == generation;
  if (--it->second.holders == 0) loads_.erase(it);
  return valid;
}

Entry* Segment::Install(Entry* loaded, Load::Source source, int64_t now_us, Leftovers* lo) {
  if (loaded->ExpiredAt(now_us)) {
    lo->released.push_back(loaded);
    return nullptr;
  }
  loaded->flags |= Entry::kMaybeBelow;  // (conservative for copies from elsewhere than the disk)
  if (source == Load::Source::kDiskTier) {
    loaded->flags &= ~Entry::kDataDirty;  // identical to the disk copy
  } else {
    loaded->flags |= Entry::kDataDirty;
  }
  last_version_ = std::max(last_version_, loaded->version);
  // Lock cookies are not stored on disk; start past any cookie the item's earlier life in memory
  // can have issued (cookies start at a version, a clock reading, and grow by one per lock).
  loaded->lock_cookie = std::max(static_cast<int64_t>(loaded->version), now_us);
  Index(loaded);
  switch (source) {
    case Load::Source::kDiskTier:
      ++counters_.disk_loads;
      break;
    case Load::Source::kQueue:
      ++counters_.queue_loads;
      break;
    case Load::Source::kBackingStore:
      ++counters_.backing_loads;
      break;
  }
  EvictOverCapacity(loaded, now_us, lo);
  return loaded;
}

Entry* Segment::FindLive(std::string_view key, uint32_t hash, int64_t now_us, Leftovers* lo,
                         Load* load) {
  bool ticket_valid = false;
  Entry* loaded = load->entry;
  load->entry = nullptr;
  if (load->done) {
    ticket_valid = ReleaseTicket(key, load->ticket_generation);
    load->done = false;
  }
  load->skip_disk = false;
  Entry* e = table_.Lookup(key, hash);
  if (e == nullptr && options_.has_disk_tier) {
    auto it = staged_.find(std::string(key));
    if (it != staged_.end() && it->second.entry == nullptr &&
        (!it->second.dropped_spill || options_.write_behind == nullptr)) {
      if (loaded != nullptr) lo->released.push_back(loaded);  // a removal or expiry
      return nullptr;
    }
    if (it != staged_.end() && it->second.entry == nullptr) {
      // A spill dropped under pressure: the disk copy is stale, but the session lives on in the
      // write-behind queue or the backing store. Load it from there.
      load->skip_disk = true;
    } else if (it != staged_.end()) {
      Entry* staged = it->second.entry;
      // Back to memory. A write of it in flight still completes; FinishStaged then finds the
      // staging gone and leaves everything as is.
      staged_bytes_ -= staged->charge;
      staged_.erase(it);
      ++counters_.staged_pullbacks;
      Index(staged);
      EvictOverCapacity(staged, now_us, lo);
      e = staged;
    }
  }
  if (e != nullptr) {
    if (loaded != nullptr) lo->released.push_back(loaded);
    if (e->ExpiredAt(now_us)) {
      ++counters_.expirations;
      Discard(e, lo);
      return nullptr;
    }
    return e;
  }
  if (!has_lower_tier()) return nullptr;
  if (!ticket_valid) {  // not read yet, or the id was staged while it was being read
    if (loaded != nullptr) lo->released.push_back(loaded);
    RequestLoad(key, load);
    return nullptr;
  }
  // This op now acts on what the disk held. Other reads of the id in flight may have seen a
  // different disk state (the spill writer's capacity trim deletes without staging), so they
  // must read again rather than contradict this decision.
  auto other = loads_.find(std::string(key));
  if (other != loads_.end()) ++other->second.generation;
  // A removal below memory (a tombstone in the queue or the backing store): versions issued from
  // now on must be newer, or the backing store would refuse them as stale.
  last_version_ = std::max(last_version_, load->floor_version);
  return loaded == nullptr ? nullptr : Install(loaded, load->source, now_us, lo);
}

// ---- The protocol operations ----

void Segment::Read(std::string_view key, uint32_t hash, bool exclusive, int64_t now_us,
                   ReadResult* out, Leftovers* lo, Load* load) {
  MutexLock l(&mu_);
  const uint64_t loads_before = counters_.disk_loads;
  const uint64_t backing_before = counters_.backing_loads;
  Entry* e = FindLive(key, hash, now_us, lo, load);
  if (load->needed) return;
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
  if (counters_.disk_loads != loads_before) {
    ++counters_.disk_hits;
    out->from_disk_tier = true;
  }
  out->from_backing_store = counters_.backing_loads != backing_before;
  if (exclusive) {
    LockEntry(e, now_us);
    out->lock_cookie = e->lock_cookie;
  }
  if (e->uninitialized()) {
    e->flags &= ~Entry::kUninitialized;
    e->flags |= Entry::kDataDirty;
    e->version = NextVersion(e->version, now_us);
    out->initialize_item = true;
    LogChange(BackingOp::Kind::kPut, e, e->version, lo);
  }
  out->outcome = Outcome::kOk;
  out->timeout_minutes = e->timeout_minutes;
  out->version = e->version;
  Touch(e, now_us, lo);
  Ref(e);
  lo->pinned = e;
}

void Segment::Put(Entry* fresh, int64_t lock_cookie, bool create_uninitialized, int64_t now_us,
                  WriteResult* out, Leftovers* lo, Load* load) {
  MutexLock l(&mu_);
  Entry* old = FindLive(fresh->key(), fresh->hash, now_us, lo, load);
  if (load->needed) return;  // the caller keeps `fresh` for the next attempt
  if (old != nullptr) {
    ExpireOldLock(old, now_us);
    if (create_uninitialized) {  // the protocol ignores it silently when the item exists
      Touch(old, now_us, lo);
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
    fresh->flags |= old->flags & Entry::kMaybeBelow;
    Unindex(old);
    lo->released.push_back(old);
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
  fresh->flags |= Entry::kDataDirty;
  Index(fresh);
  LogChange(BackingOp::Kind::kPut, fresh, fresh->version, lo);
  out->outcome = Outcome::kOk;
  EvictOverCapacity(fresh, now_us, lo);
}

Entry* Segment::FindForHolder(std::string_view key, uint32_t hash, int64_t lock_cookie,
                              int64_t now_us, WriteResult* out, Leftovers* lo, Load* load) {
  Entry* e = FindLive(key, hash, now_us, lo, load);
  if (load->needed) return nullptr;
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
                      WriteResult* out, Leftovers* lo, Load* load) {
  MutexLock l(&mu_);
  Entry* e = FindForHolder(key, hash, lock_cookie, now_us, out, lo, load);
  if (e == nullptr) return;
  if (e->locked()) UnlockEntry(e);
  Touch(e, now_us, lo);
  out->outcome = Outcome::kOk;
}

void Segment::Remove(std::string_view key, uint32_t hash, int64_t lock_cookie, int64_t now_us,
                     WriteResult* out, Leftovers* lo, Load* load) {
  MutexLock l(&mu_);
  Entry* e = FindForHolder(key, hash, lock_cookie, now_us, out, lo, load);
  if (e == nullptr) return;
  ++counters_.removals;
  // The removal is a change of its own (a newer version than the item's), so no write of the
  // item that arrives at the backing store later can undo it.
  LogChange(BackingOp::Kind::kRemove, e, NextVersion(e->version, now_us), lo);
  Discard(e, lo);
  out->outcome = Outcome::kOk;
}

void Segment::ResetTimeout(std::string_view key, uint32_t hash, int64_t now_us, WriteResult* out,
                           Leftovers* lo, Load* load) {
  MutexLock l(&mu_);
  Entry* e = FindLive(key, hash, now_us, lo, load);
  if (load->needed) return;
  if (e == nullptr) {
    out->outcome = Outcome::kNotFound;
    return;
  }
  Touch(e, now_us, lo);
  out->outcome = Outcome::kOk;
}

void Segment::Supersede(std::string_view key, uint32_t hash, Entry* newer, uint64_t remote_version,
                        int64_t now_us, WriteResult* out, Leftovers* lo, Load* load) {
  MutexLock l(&mu_);
  Entry* e = FindLive(key, hash, now_us, lo, load);
  if (load->needed) return;  // the caller keeps `newer` for the next attempt
  // Versions issued here from now on must be above the backing store's, or it would refuse them.
  last_version_ = std::max(last_version_, remote_version);
  if (e == nullptr || e->version >= remote_version) {  // nothing here, or ours is as new
    if (newer != nullptr) lo->released.push_back(newer);
    out->outcome = e == nullptr ? Outcome::kNotFound : Outcome::kOk;
    return;
  }
  ExpireOldLock(e, now_us);
  if (e->locked()) {  // a request here holds it: leave it to that request
    if (newer != nullptr) lo->released.push_back(newer);
    AnswerLocked(e, now_us, out);
    return;
  }
  ++counters_.superseded;
  InvalidateLoads(key);
  out->outcome = Outcome::kOk;
  if (newer == nullptr) {  // removed elsewhere after our copy was made: the removal stands
    Discard(e, lo);
    return;
  }
  newer->lock_cookie = e->lock_cookie;  // Install keeps cookies past this copy's (they only grow)
  Unindex(e);
  if (e->maybe_below()) newer->flags |= Entry::kMaybeBelow;
  lo->released.push_back(e);
  Install(newer, Load::Source::kBackingStore, now_us, lo);
}

void Segment::ApplyReplica(ReplicaKind kind, std::string_view key, uint32_t hash, Entry* incoming,
                           const ItemRecord& meta, uint64_t floor_version, int64_t now_us,
                           ReplicaResult* out, Leftovers* lo, Load* load) {
  MutexLock l(&mu_);
  Entry* e = FindLive(key, hash, now_us, lo, load);
  if (load->needed) return;  // the caller keeps `incoming` for the next attempt
  // Versions issued here from now on must be above the other site's, or its change would win.
  last_version_ = std::max(last_version_, meta.version);
  // The newest state here: the live copy, or a removal below memory (queued or a tombstone in
  // Redis) that may be newer than a copy the disk tier still held.
  const uint64_t local =
      std::max({e != nullptr ? e->version : uint64_t{0}, floor_version, load->floor_version});
  const int64_t last_access =
      meta.expires_at_us - static_cast<int64_t>(meta.timeout_minutes) * 60'000'000;
  *out = ReplicaResult::kStale;
  switch (kind) {
    case ReplicaKind::kTouch:
      if (e == nullptr || e->version != meta.version) {
        *out = ReplicaResult::kIgnored;
        return;
      }
      if (last_access > e->last_access_us) {
        e->last_access_us = last_access;
        LogChange(BackingOp::Kind::kTouch, e, e->version, lo, /*replicate=*/false);
      }
      *out = ReplicaResult::kApplied;
      break;
    case ReplicaKind::kRemove:
      if (local > meta.version) return;  // changed here after the removal there
      if (e != nullptr) {
        LogChange(BackingOp::Kind::kRemove, e, meta.version, lo, /*replicate=*/false);
        Discard(e, lo);
      } else {  // nothing live here: keep the removal anyway, so a late put cannot undo it
        if (options_.write_behind != nullptr) {
          BackingOp op(BackingOp::Kind::kRemove, meta);
          op.item.data.clear();
          LogOp(std::move(op), lo, /*replicate=*/false);
        }
      }
      *out = ReplicaResult::kApplied;
      break;
    case ReplicaKind::kPut: {
      const bool newer = meta.version > local ||
                         (e != nullptr && meta.version == local && incoming->value() > e->value());
      if (!newer) {
        lo->released.push_back(incoming);
        return;
      }
      incoming->version = meta.version;
      incoming->last_access_us = last_access;
      incoming->flags |= Entry::kDataDirty;
      if (meta.uninitialized) incoming->flags |= Entry::kUninitialized;
      Entry* lock_position = nullptr;
      if (e != nullptr) {
        incoming->lock_cookie = e->lock_cookie;  // a lock holder here keeps its lock
        incoming->flags |= e->flags & (Entry::kMaybeBelow | Entry::kLocked);
        incoming->lock_time_us = e->lock_time_us;
        if (e->locked()) lock_position = e->lru_next;
        Unindex(e);
        lo->released.push_back(e);
      } else {
        incoming->lock_cookie = std::max(static_cast<int64_t>(meta.version), now_us);
      }
      InvalidateLoads(key);
      Index(incoming);
      if (lock_position != nullptr) {  // back to the old entry's place in the locked list
        ListRemove(incoming);
        ListAppend(lock_position, incoming);
      }
      LogChange(BackingOp::Kind::kPut, incoming, meta.version, lo, /*replicate=*/false);
      EvictOverCapacity(incoming, now_us, lo);
      *out = ReplicaResult::kApplied;
      break;
    }
  }
}

void Segment::Forget(std::string_view key, uint32_t hash, Leftovers* lo) {
  MutexLock l(&mu_);
  Entry* e = table_.Lookup(key, hash);
  if (e == nullptr || e->locked() || !has_lower_tier()) return;
  Unindex(e);
  InvalidateLoads(key);
  if (options_.has_disk_tier && e->maybe_below()) {
    Stage(e, /*tombstone=*/true, lo, /*force=*/true, /*lower_is_current=*/true);
  } else {
    lo->released.push_back(e);
  }
}

void Segment::Peek(std::string_view key, uint32_t hash, int64_t now_us, Location* out) {
  MutexLock l(&mu_);
  const Entry* e = table_.Lookup(key, hash);
  if (e == nullptr) {
    auto it = staged_.find(std::string(key));
    if (it == staged_.end()) return;
    out->staged = true;
    out->staged_removal = it->second.entry == nullptr;
    out->memory_version = it->second.version;
    return;
  }
  out->in_memory = !e->ExpiredAt(now_us);
  out->locked = out->in_memory && e->locked() && !LockTooOld(e, now_us);
  out->memory_version = e->version;
}

void Segment::CancelLoad(std::string_view key, Load* load, Leftovers* lo) {
  MutexLock l(&mu_);
  ReleaseTicket(key, load->ticket_generation);
  if (load->entry != nullptr) lo->released.push_back(load->entry);
  load->entry = nullptr;
  load->needed = load->done = false;
}

// ---- Background work ----

size_t Segment::Reclaim(size_t budget, int64_t now_us, Leftovers* lo) {
  MutexLock l(&mu_);
  size_t reclaimed = 0;
  while (reclaimed < budget && lru_.lru_next != &lru_ && lru_.lru_next->ExpiredAt(now_us)) {
    Discard(lru_.lru_next, lo);
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
        Discard(e, lo);
        ++reclaimed;
      }
      e = next;
    }
  }
  counters_.expirations += reclaimed;
  return reclaimed;
}

void Segment::TakeStaged(size_t max_bytes, std::vector<StagedItem>* out) {
  MutexLock l(&mu_);
  size_t bytes = 0;
  for (auto& [id, staged] : staged_) {
    if (bytes >= max_bytes) break;
    if (staged.in_flight) continue;
    staged.in_flight = true;
    StagedItem item;
    item.id = id;
    item.seq = staged.seq;
    item.tombstone = staged.entry == nullptr;
    item.meta.id = id;
    item.meta.version = staged.version;
    if (!item.tombstone) {
      Entry* e = staged.entry;
      Ref(e);
      item.entry = e;
      item.meta.timeout_minutes = e->timeout_minutes;
      item.meta.expires_at_us = e->expires_at_us();
      item.meta.uninitialized = e->uninitialized();
      bytes += e->charge;
    } else {
      bytes += kTombstoneBytes;
    }
    out->push_back(std::move(item));
  }
}

void Segment::FinishStaged(std::vector<StagedItem>* items, bool written, Leftovers* lo) {
  MutexLock l(&mu_);
  for (StagedItem& item : *items) {
    if (item.entry != nullptr) lo->released.push_back(item.entry);  // the snapshot's pin
    item.entry = nullptr;
    auto it = staged_.find(item.id);
    if (it == staged_.end() || it->second.seq != item.seq) continue;  // pulled back or replaced
    if (!written) {
      it->second.in_flight = false;
      continue;
    }
    if (it->second.entry != nullptr) {
      staged_bytes_ -= it->second.entry->charge;
      lo->released.push_back(it->second.entry);
    } else {
      staged_bytes_ -= kTombstoneBytes;
    }
    staged_.erase(it);
  }
}

void Segment::StageAll(int64_t now_us, Leftovers* lo) {
  MutexLock l(&mu_);
  for (Entry* head : {&locked_, &lru_}) {
    while (head->lru_next != head) {
      Entry* e = head->lru_next;
      Unindex(e);
      e->flags &= ~Entry::kLocked;  // locks do not survive a restart
      const bool expired = e->ExpiredAt(now_us);
      if (expired && !e->maybe_below()) {
        lo->released.push_back(e);
      } else {
        // An expired item that may have an (older, possibly longer-lived) disk copy leaves a
        // tombstone, so the copy cannot come back after the restart.
        Stage(e, /*tombstone=*/expired, lo, /*force=*/true);
      }
    }
  }
}

void Segment::AddStats(int64_t now_us, StoreStats* s) const {
  MutexLock l(&mu_);
  s->items += table_.size();
  s->bytes += usage_;
  s->capacity_bytes += options_.capacity_bytes;
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
  s->disk_loads += counters_.disk_loads;
  s->disk_hits += counters_.disk_hits;
  s->staged_pullbacks += counters_.staged_pullbacks;
  s->spills += counters_.spills;
  s->spill_dropped += counters_.spill_dropped;
  s->tombstones += counters_.tombstones;
  s->queue_loads += counters_.queue_loads;
  s->backing_loads += counters_.backing_loads;
  s->superseded += counters_.superseded;
  for (const Entry* e = locked_.lru_next; e != &locked_; e = e->lru_next) {
    s->locks_held += !LockTooOld(e, now_us);
  }
  s->staged_items += staged_.size();
  s->staged_bytes += staged_bytes_;
}

}  // namespace sessionserver
