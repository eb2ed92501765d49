#include "server/session_handler.h"

#include <glog/logging.h>
#include <thrift/TApplicationException.h>

#include <utility>

#include "server/lock_waiters.h"
#include "server/request_signals.h"
#include "storage/limits.h"
#include "util/blocking.h"

namespace sessionserver {
namespace {

thrift::Status::type ToThrift(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return thrift::Status::OK;
    case Outcome::kNotFound:
      return thrift::Status::NOT_FOUND;
    case Outcome::kLocked:
      return thrift::Status::LOCKED;
  }
  return thrift::Status::NOT_FOUND;
}

// The store's replica kind for an IDL ReplicaKind value; false for a value the IDL does not
// define (the field is an i32: see proto/session.thrift).
bool FromThrift(int32_t kind, ReplicaKind* out) {
  switch (kind) {
    case thrift::ReplicaKind::PUT:
      *out = ReplicaKind::kPut;
      return true;
    case thrift::ReplicaKind::REMOVE:
      *out = ReplicaKind::kRemove;
      return true;
    case thrift::ReplicaKind::TOUCH:
      *out = ReplicaKind::kTouch;
      return true;
  }
  return false;
}

thrift::ReplicaResult::type ToThrift(ReplicaResult r) {
  switch (r) {
    case ReplicaResult::kApplied:
      return thrift::ReplicaResult::APPLIED;
    case ReplicaResult::kStale:
      return thrift::ReplicaResult::STALE;
    case ReplicaResult::kIgnored:
      return thrift::ReplicaResult::IGNORED;
  }
  return thrift::ReplicaResult::IGNORED;
}

// How long a draining server's request waits for the session's changes to reach the backing
// store before handing it off; after a timeout, hand-offs pause as long (Redis is slow or down:
// sessions are served here meanwhile, which loses nothing).
constexpr int64_t kHandoffWaitUs = 1'000'000;
constexpr int64_t kHandoffReplicationWaitUs = 250'000;

// Storage counters as info() names them (PROTOCOL.md lists them).
const std::pair<const char*, uint64_t StoreStats::*> kStoreCounters[] = {
    {"items", &StoreStats::items},
    {"bytes", &StoreStats::bytes},
    {"capacity_bytes", &StoreStats::capacity_bytes},
    {"hits", &StoreStats::hits},
    {"misses", &StoreStats::misses},
    {"evictions", &StoreStats::evictions},
    {"expirations", &StoreStats::expirations},
    {"lock_waits", &StoreStats::lock_conflicts},
    {"locks_acquired", &StoreStats::locks_acquired},
    {"locks_expired", &StoreStats::locks_expired},
    {"inserts", &StoreStats::inserts},
    {"updates", &StoreStats::updates},
    {"removals", &StoreStats::removals},
    {"hits_disk", &StoreStats::disk_hits},
    {"disk_loads", &StoreStats::disk_loads},
    {"staged_pullbacks", &StoreStats::staged_pullbacks},
    {"spills", &StoreStats::spills},
    {"spill_dropped", &StoreStats::spill_dropped},
    {"tombstones", &StoreStats::tombstones},
    {"staged_items", &StoreStats::staged_items},
    {"staged_bytes", &StoreStats::staged_bytes},
    {"disk_write_errors", &StoreStats::disk_write_errors},
    {"disk_write_failing", &StoreStats::disk_write_failing},
    {"restored_from_queue", &StoreStats::queue_loads},
    {"restored_from_redis", &StoreStats::backing_loads},
    {"created_while_redis_unreadable", &StoreStats::blind_creates},
    {"superseded", &StoreStats::superseded},
    {"locks_held", &StoreStats::locks_held},
    {"replica_applied", &StoreStats::replica_applied},
    {"replica_stale", &StoreStats::replica_stale},
    {"replica_ignored", &StoreStats::replica_ignored},
};

// Write-behind queue counters (queue depth, oldest change, flushed, coalesced, retries, ...).
const std::pair<const char*, uint64_t WriteBehindStats::*> kQueueCounters[] = {
    {"wb_enqueued", &WriteBehindStats::enqueued},
    {"wb_coalesced", &WriteBehindStats::coalesced},
    {"wb_flushed", &WriteBehindStats::flushed},
    {"wb_stale", &WriteBehindStats::stale},
    {"wb_retries", &WriteBehindStats::retries},
    {"wb_overflowed", &WriteBehindStats::overflowed},
    {"wb_dropped", &WriteBehindStats::dropped},
    {"wb_rejected", &WriteBehindStats::rejected},
    {"wb_recovered", &WriteBehindStats::recovered},
    {"wb_journal_errors", &WriteBehindStats::journal_errors},
    {"wb_conflicts", &WriteBehindStats::conflicts},
    {"wb_queue_depth", &WriteBehindStats::pending},
    {"wb_queue_bytes", &WriteBehindStats::pending_bytes},
};

const std::pair<const char*, uint64_t BackingStoreStats::*> kRedisCounters[] = {
    {"redis_ops_applied", &BackingStoreStats::ops_applied},
    {"redis_ops_stale", &BackingStoreStats::ops_stale},
    {"redis_round_trips", &BackingStoreStats::round_trips},
    {"redis_reads", &BackingStoreStats::reads},
    {"redis_read_hits", &BackingStoreStats::read_hits},
    {"redis_errors", &BackingStoreStats::errors},
    {"redis_reconnects", &BackingStoreStats::reconnects},
    {"redis_script_reloads", &BackingStoreStats::script_reloads},
    {"redis_redirects_moved", &BackingStoreStats::redirects_moved},
    {"redis_redirects_ask", &BackingStoreStats::redirects_ask},
    {"redis_slot_map_refreshes", &BackingStoreStats::slot_map_refreshes},
};

const std::pair<const char*, uint64_t JournalStats::*> kJournalCounters[] = {
    {"journal_appends", &JournalStats::appends}, {"journal_erases", &JournalStats::erases},
    {"journal_reads", &JournalStats::reads},     {"journal_corrupt", &JournalStats::corrupt},
    {"journal_errors", &JournalStats::errors},
};

template <typename Stats, size_t N>
void AddCounters(const Stats& stats, const std::pair<const char*, uint64_t Stats::*> (&table)[N],
                 std::map<std::string, int64_t>* out) {
  for (const auto& [name, field] : table) (*out)[name] = static_cast<int64_t>(stats.*field);
}

// Disk tier counters as info() names them.
const std::pair<const char*, uint64_t DiskTierStats::*> kDiskCounters[] = {
    {"disk_bytes", &DiskTierStats::live_bytes},
    {"disk_capacity_bytes", &DiskTierStats::capacity_bytes},
    {"disk_records_written", &DiskTierStats::records_written},
    {"disk_records_deleted", &DiskTierStats::records_deleted},
    {"disk_bytes_written", &DiskTierStats::bytes_written},
    {"disk_reads", &DiskTierStats::reads},
    {"disk_read_hits", &DiskTierStats::read_hits},
    {"disk_expired_on_read", &DiskTierStats::expired_on_read},
    {"disk_corrupt_records", &DiskTierStats::corrupt_records},
    {"disk_capacity_evictions", &DiskTierStats::capacity_evictions},
    {"disk_compaction_drops", &DiskTierStats::compaction_drops},
    {"disk_errors", &DiskTierStats::errors},
    {"disk_stale_skipped", &DiskTierStats::stale_skipped},
};

const char* const kOpNames[] = {"get",       "get_exclusive", "release_exclusive", "put",
                                "remove",    "reset_timeout", "revalidate",        "locate",
                                "replicate", "info",          "get_waiting",       "start_session"};
// The longest getWaiting wait.
constexpr int32_t kMaxWaitMs = 60'000;
constexpr size_t kMaxReplicaOps = 1024;  // Thrift's container limit on this server
// Versions are compared exactly by Redis's Lua (doubles) only below 2^53.
constexpr int64_t kMaxVersion = int64_t{1} << 53;

}  // namespace

SessionHandler::SessionHandler(std::string server_id, SessionStore* store, const Parts& parts,
                               const Clock* clock, OffsetClock* debug_clock)
    : server_id_(std::move(server_id)),
      store_(store),
      parts_(parts),
      clock_(clock),
      debug_clock_(debug_clock),
      start_us_(clock->NowMicros()) {
  static_assert(sizeof(kOpNames) / sizeof(kOpNames[0]) == kOpCount, "name every op");
}

void SessionHandler::SetState(fleet::ServerState state) {
  handing_off_.store(state != fleet::ServerState::kActive && parts_.write_behind != nullptr);
  MutexLock l(&id_mu_);
  state_ = state;
}

fleet::ServerState SessionHandler::State() const {
  MutexLock l(&id_mu_);
  return state_;
}

bool SessionHandler::HandOff(const std::string& id) {
  if (!handing_off_.load(std::memory_order_relaxed)) return false;
  if (!MayBlock()) throw WouldBlock{};  // it waits for Redis: not on an event loop
  const int64_t now = clock_->NowMicros();
  if (now < handoff_paused_until_us_.load(std::memory_order_relaxed)) return false;
  // The lock holder's own requests (put, release, remove) never come here; other requests of a
  // locked session are answered as usual (LOCKED: they wait for it, then are handed off).
  if (!CheckSessionId(id).ok() || store_->IsLocked(id)) return false;  // bad ids: InvalidRequest
  if (!parts_.write_behind->FlushId(id, kHandoffWaitUs).ok()) {
    handoff_timeouts_.fetch_add(1, std::memory_order_relaxed);
    handoff_paused_until_us_.store(clock_->NowMicros() + kHandoffWaitUs);
    return false;
  }
  // Clients of the other site fail over to their own site's copy, so it should be current too;
  // but that site may be unreachable (the very time operators drain): a short wait, best effort.
  if (parts_.replicator != nullptr &&
      !parts_.replicator->FlushId(id, kHandoffReplicationWaitUs).ok()) {
    handoff_replication_timeouts_.fetch_add(1, std::memory_order_relaxed);
  }
  store_->Forget(id);  // a request that comes back here later reads Redis's current copy
  handoffs_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void SessionHandler::WriteThrough(const std::string& id) {
  // While handing off, a change served here (a lock holder's save, a sign-out) goes to Redis
  // before the answer: the server may be reported drained, and stopped, at any moment.
  if (handing_off_.load(std::memory_order_relaxed) &&
      !parts_.write_behind->FlushId(id, kHandoffWaitUs).ok()) {
    handoff_timeouts_.fetch_add(1, std::memory_order_relaxed);
  }
}

void SessionHandler::Check(Op op, const Status& s) {
  if (s.IsWouldBlock()) Yield(op);
  ThrowIfError(s);
}

void SessionHandler::Yield(Op op) {
  requests_[op].fetch_sub(1, std::memory_order_relaxed);  // counted again where it runs
  throw WouldBlock{};
}

void SessionHandler::Released(const std::string& id) {
  if (parts_.waiters != nullptr) parts_.waiters->Release(id);
}

void SessionHandler::SetServerId(std::string id) {
  MutexLock l(&id_mu_);
  server_id_ = std::move(id);
}

void SessionHandler::ThrowIfError(const Status& s) {
  if (s.ok()) return;
  if (s.IsInvalidArgument()) {
    invalid_requests_.fetch_add(1, std::memory_order_relaxed);
    thrift::InvalidRequest e;
    e.__set_message(s.message());
    throw e;
  }
  throw apache::thrift::TApplicationException(apache::thrift::TApplicationException::INTERNAL_ERROR,
                                              s.ToString());
}

void SessionHandler::FillGetResult(ReadResult&& r, thrift::GetResult* out) {
  out->status = ToThrift(r.outcome);
  out->data = std::move(r.data);
  out->timeoutMinutes = r.timeout_minutes;
  out->lockCookie = r.lock_cookie;
  out->lockAgeMs = r.lock_age_ms;
  out->initializeItem = r.initialize_item;
  out->version = static_cast<int64_t>(r.version);
}

void SessionHandler::Read(Op op, const std::string& session_id, bool exclusive,
                          thrift::GetResult* result) {
  Count(op);
  if (HandOff(session_id)) {
    result->status = thrift::Status::MOVED;
    return;
  }
  ReadResult r;
  Check(op, exclusive ? store_->GetExclusive(session_id, &r) : store_->Get(session_id, &r));
  FillGetResult(std::move(r), result);
}

void SessionHandler::get(thrift::GetResult& result, const std::string& session_id) {
  Read(kGet, session_id, /*exclusive=*/false, &result);
}

void SessionHandler::getExclusive(thrift::GetResult& result, const std::string& session_id) {
  Read(kGetExclusive, session_id, /*exclusive=*/true, &result);
}

void SessionHandler::getWaiting(thrift::GetResult& result, const std::string& session_id,
                                bool exclusive, int32_t wait_ms) {
  if (wait_ms < 0 || wait_ms > kMaxWaitMs) {
    Count(kGetWaiting);
    ThrowIfError(Status::InvalidArgument("waitMs must be 0.." + std::to_string(kMaxWaitMs)));
  }
  Read(kGetWaiting, session_id, exclusive, &result);
  result.waited = Resumed();
  if (result.status == thrift::Status::LOCKED && wait_ms > 0 && MayPark()) {
    requests_[kGetWaiting].fetch_sub(1, std::memory_order_relaxed);  // counted when answered
    throw Parked{session_id, wait_ms};
  }
}

void SessionHandler::startSession(thrift::GetResult& result, const std::string& session_id,
                                  int32_t timeout_minutes) {
  Count(kStartSession);
  if (HandOff(session_id)) {  // draining: a new session goes to another server
    result.status = thrift::Status::MOVED;
    return;
  }
  WriteResult w;
  Check(kStartSession, store_->CreateFresh(session_id, timeout_minutes, &w));
  ReadResult r;
  Check(kStartSession, store_->GetExclusive(session_id, &r));  // in memory: no I/O
  FillGetResult(std::move(r), &result);
}

thrift::Status::type SessionHandler::releaseExclusive(const std::string& session_id,
                                                      int64_t lock_cookie) {
  if (handing_off_.load(std::memory_order_relaxed) && !MayBlock()) {
    throw WouldBlock{};  // the change is written through to Redis before the answer
  }
  Count(kRelease);
  WriteResult w;
  Check(kRelease, store_->ReleaseExclusive(session_id, lock_cookie, &w));
  WriteThrough(session_id);
  if (w.outcome == Outcome::kOk) Released(session_id);
  return ToThrift(w.outcome);
}

thrift::Status::type SessionHandler::put(const std::string& session_id, const std::string& data,
                                         int32_t timeout_minutes, int64_t lock_cookie,
                                         bool create_uninitialized) {
  if (handing_off_.load(std::memory_order_relaxed) && !MayBlock()) {
    throw WouldBlock{};  // the change is written through to Redis before the answer
  }
  Count(kPut);
  if (lock_cookie == 0 && HandOff(session_id)) return thrift::Status::MOVED;
  WriteResult w;
  Check(kPut,
        store_->Put(session_id, data, timeout_minutes, lock_cookie, create_uninitialized, &w));
  WriteThrough(session_id);
  if (w.outcome == Outcome::kOk && lock_cookie != 0) Released(session_id);
  return ToThrift(w.outcome);
}

thrift::Status::type SessionHandler::remove(const std::string& session_id, int64_t lock_cookie) {
  if (handing_off_.load(std::memory_order_relaxed) && !MayBlock()) {
    throw WouldBlock{};  // the change is written through to Redis before the answer
  }
  Count(kRemove);
  WriteResult w;
  Check(kRemove, store_->Remove(session_id, lock_cookie, &w));
  WriteThrough(session_id);
  if (w.outcome == Outcome::kOk) Released(session_id);
  return ToThrift(w.outcome);
}

thrift::Status::type SessionHandler::resetTimeout(const std::string& session_id) {
  Count(kResetTimeout);
  if (HandOff(session_id)) return thrift::Status::MOVED;
  WriteResult w;
  Check(kResetTimeout, store_->ResetTimeout(session_id, &w));
  return ToThrift(w.outcome);
}

thrift::Status::type SessionHandler::revalidate(const std::string& session_id) {
  if (!MayBlock()) throw WouldBlock{};  // reads Redis
  Count(kRevalidate);
  WriteResult w;
  const Status s = store_->Revalidate(session_id, &w);
  if (s.code() == Status::Code::kUnavailable) revalidate_errors_.fetch_add(1);
  ThrowIfError(s);
  revalidations_.fetch_add(1, std::memory_order_relaxed);
  return ToThrift(w.outcome);
}

void SessionHandler::locate(thrift::Location& result, const std::string& session_id) {
  if (!MayBlock()) throw WouldBlock{};  // reads the disk tier and the journal
  Count(kLocate);
  Location where;
  ThrowIfError(store_->Locate(session_id, &where));
  result.inMemory = where.in_memory;
  result.locked = where.locked;
  result.staged = where.staged;
  result.stagedRemoval = where.staged_removal;
  result.memoryVersion = static_cast<int64_t>(where.memory_version);
  result.onDisk = where.on_disk;
  result.diskVersion = static_cast<int64_t>(where.disk_version);
  result.queued = where.queued;
  result.queuedKind = where.queued_kind;
  result.queuedVersion = static_cast<int64_t>(where.queued_version);
}

void SessionHandler::info(thrift::ServerInfo& result) {
  if (!MayBlock()) throw WouldBlock{};  // reads every part's counters (some take locks long)
  Count(kInfo);
  {
    MutexLock l(&id_mu_);
    result.serverId = server_id_;
    result.state = fleet::ToString(state_);
  }
  result.uptimeSeconds = (clock_->NowMicros() - start_us_) / 1'000'000;
  result.counters = Counters();
}

void SessionHandler::debugAdvanceClock(int64_t millis) {
  if (debug_clock_ == nullptr) {
    ThrowIfError(Status::InvalidArgument(
        "debugAdvanceClock is disabled; start the server with --enable_debug_clock"));
  }
  constexpr int64_t kMaxStepMillis = 10LL * 365 * 24 * 3600 * 1000;  // ten years per call
  if (millis <= 0 || millis > kMaxStepMillis) {
    ThrowIfError(Status::InvalidArgument("millis must be 1.." + std::to_string(kMaxStepMillis)));
  }
  debug_clock_->AdvanceMicros(millis * 1000);
}

void SessionHandler::replicate(std::vector<int32_t>& result,
                               const std::vector<thrift::ReplicaOp>& ops,
                               const std::string& origin_dc) {
  if (!MayBlock()) throw WouldBlock{};  // reads this site's Redis
  Count(kReplicate);
  if (ops.size() > kMaxReplicaOps) {
    ThrowIfError(Status::InvalidArgument("at most " + std::to_string(kMaxReplicaOps) +
                                         " ops per replicate call"));
  }
  result.clear();
  for (const thrift::ReplicaOp& op : ops) {
    ReplicaKind kind;
    if (!FromThrift(op.kind, &kind) || op.version <= 0 || op.version >= kMaxVersion) {
      result.push_back(thrift::ReplicaResult::REJECTED);
      continue;
    }
    ItemRecord item;
    item.id = op.sessionId;
    item.data = op.data;
    item.timeout_minutes = op.timeoutMinutes;
    item.version = static_cast<uint64_t>(op.version);
    item.expires_at_us = op.expiresAtUs;
    item.uninitialized = op.uninitialized;
    ReplicaResult r = ReplicaResult::kIgnored;
    const Status s = store_->ApplyReplica(kind, item, &r);
    if (s.IsInvalidArgument() || s.code() == Status::Code::kCorruption) {  // never applicable
      LOG_EVERY_N(WARNING, 100) << "replica from " << origin_dc << " refused: " << s.ToString();
      result.push_back(thrift::ReplicaResult::REJECTED);
      continue;
    }
    ThrowIfError(s);  // this site's Redis unreadable: the sender retries the whole call
    result.push_back(ToThrift(r));
  }
}

std::map<std::string, int64_t> SessionHandler::Counters() const {
  std::map<std::string, int64_t> c;
  for (int op = 0; op < kOpCount; ++op) {
    c[std::string("requests_") + kOpNames[op]] =
        static_cast<int64_t>(requests_[op].load(std::memory_order_relaxed));
  }
  c["invalid_requests"] = static_cast<int64_t>(invalid_requests_.load(std::memory_order_relaxed));
  c["requests_parked"] = parts_.waiters ? static_cast<int64_t>(parts_.waiters->size()) : 0;
  c["handoffs"] = static_cast<int64_t>(handoffs_.load(std::memory_order_relaxed));
  c["handoff_timeouts"] = static_cast<int64_t>(handoff_timeouts_.load(std::memory_order_relaxed));
  c["handoff_replication_timeouts"] =
      static_cast<int64_t>(handoff_replication_timeouts_.load(std::memory_order_relaxed));
  c["revalidations"] = static_cast<int64_t>(revalidations_.load(std::memory_order_relaxed));
  c["revalidate_errors"] = static_cast<int64_t>(revalidate_errors_.load(std::memory_order_relaxed));
  const StoreStats s = store_->GetStats();
  AddCounters(s, kStoreCounters, &c);
  c["hits_memory"] = static_cast<int64_t>(s.hits - s.disk_hits);
  c["disk_available"] = parts_.disk != nullptr;
  if (parts_.disk != nullptr) AddCounters(parts_.disk->GetStats(), kDiskCounters, &c);
  c["redis_configured"] = parts_.backing_store != nullptr;
  if (parts_.backing_store != nullptr) {
    AddCounters(parts_.backing_store->GetStats(), kRedisCounters, &c);
  }
  if (parts_.write_behind != nullptr) {
    const WriteBehindStats q = parts_.write_behind->GetStats();
    AddCounters(q, kQueueCounters, &c);
    c["wb_oldest_pending_age_ms"] = q.oldest_pending_age_us / 1000;
    c["wb_delay_p50_ms"] = q.delay_p50_us / 1000;
    c["wb_delay_p99_ms"] = q.delay_p99_us / 1000;
  }
  c["replication_enabled"] = parts_.replicator != nullptr;
  if (parts_.replicator != nullptr) {
    const WriteBehindStats q = parts_.replicator->GetStats();
    c["repl_enqueued"] = static_cast<int64_t>(q.enqueued);
    c["repl_coalesced"] = static_cast<int64_t>(q.coalesced);
    c["repl_sent"] = static_cast<int64_t>(q.flushed);
    c["repl_stale"] = static_cast<int64_t>(q.stale);
    c["repl_rejected"] = static_cast<int64_t>(q.rejected);
    c["repl_retries"] = static_cast<int64_t>(q.retries);
    c["repl_dropped"] = static_cast<int64_t>(q.dropped);
    c["repl_queue_depth"] = static_cast<int64_t>(q.pending);
    c["repl_queue_bytes"] = static_cast<int64_t>(q.pending_bytes);
    c["repl_oldest_pending_age_ms"] = q.oldest_pending_age_us / 1000;
    c["repl_delay_p50_ms"] = q.delay_p50_us / 1000;
    c["repl_delay_p99_ms"] = q.delay_p99_us / 1000;
    c["repl_delay_max_ms"] = q.delay_max_us / 1000;
  }
  c["journal_enabled"] = parts_.journal != nullptr;
  if (parts_.journal != nullptr) AddCounters(parts_.journal->GetStats(), kJournalCounters, &c);
  return c;
}

}  // namespace sessionserver
