// The Redis backing store behind NewRedisBackingStore (contract in backing_store.h; key schema
// and scripts in docs/REDIS_SCHEMA.md).
#include <glog/logging.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "storage/backing_store.h"
#include "storage/disk_record.h"
#include "util/mutex.h"
#include "util/redis_cluster.h"

namespace sessionserver {
namespace {

// Each script returns 1 when applied, 0 when a newer version is stored, 2 when ignored.
// Versions are microsecond-scale integers below 2^53, exact as Lua numbers.
constexpr char kPutScript[] = R"lua(
local cur = redis.call('HGET', KEYS[1], 'v')
if cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'r', ARGV[2], 'e', ARGV[3])
redis.call('HDEL', KEYS[1], 't')
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
)lua";

constexpr char kRemoveScript[] = R"lua(
local cur = redis.call('HGET', KEYS[1], 'v')
if cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 't', '1')
redis.call('HDEL', KEYS[1], 'r', 'e')
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
)lua";

constexpr char kTouchScript[] = R"lua(
local cur = redis.call('HMGET', KEYS[1], 'v', 't')
if not cur[1] or cur[2] or tonumber(cur[1]) ~= tonumber(ARGV[1]) then return 2 end
redis.call('HSET', KEYS[1], 'e', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
)lua";

// The router options of a store: a single Redis, or a cluster through its seeds.
RedisRouterOptions RouterOptions(const RedisOptions& o) {
  RedisRouterOptions r;
  r.cluster = !o.cluster_seeds.empty();
  r.nodes = r.cluster ? o.cluster_seeds : std::vector<HostPort>{{o.host, o.port}};
  r.connect_timeout_us = o.connect_timeout_us;
  r.command_timeout_us = o.command_timeout_us;
  return r;
}

class RedisBackingStore : public BackingStore {
 public:
  RedisBackingStore(const RedisOptions& options, Clock* clock)
      : options_(options),
        clock_(clock),
        writer_(RouterOptions(options), &router_counters_),
        reader_(RouterOptions(options), &router_counters_) {}

  Status Init() {
    Status s = LoadScripts();
    if (!s.ok()) return s;
    MutexLock l(&read_mu_);
    return reader_.Connect();
  }

  Status Apply(const std::vector<BackingOp>& ops, std::vector<BackingOutcome>* outcomes) override;
  Status Get(std::string_view id, ItemRecord* item, bool* found) override;

  BackingStoreStats GetStats() const override {
    BackingStoreStats s;
    s.ops_applied = applied_.load(std::memory_order_relaxed);
    s.ops_stale = stale_.load(std::memory_order_relaxed);
    s.round_trips = round_trips_.load(std::memory_order_relaxed);
    s.reads = reads_.load(std::memory_order_relaxed);
    s.read_hits = read_hits_.load(std::memory_order_relaxed);
    s.errors = errors_.load(std::memory_order_relaxed);
    s.reconnects = reconnects_.load(std::memory_order_relaxed);
    s.script_reloads = script_reloads_.load(std::memory_order_relaxed);
    const RedisRouterStats r = router_counters_.Get();
    s.reconnects = r.reconnects;
    s.redirects_moved = r.moved;
    s.redirects_ask = r.asked;
    s.slot_map_refreshes = r.map_refreshes;
    return s;
  }

 private:
  // SCRIPT LOAD of the three scripts on every node (scripts are per node) and note their SHAs
  // (the same everywhere). A node that loses them later (restart, SCRIPT FLUSH, a node added to
  // a cluster) answers NOSCRIPT, and Apply sends those ops as EVAL, which caches the script there.
  Status LoadScripts() {
    std::string shas[3];
    const char* const sources[3] = {kPutScript, kRemoveScript, kTouchScript};
    for (size_t i = 0; i < 3; ++i) {
      std::vector<RedisReply> replies;
      Status s = writer_.RunOnEveryNode({"SCRIPT", "LOAD", sources[i]}, &replies);
      if (!s.ok()) return Failed(s);
      for (const RedisReply& r : replies) {
        if (r->type != REDIS_REPLY_STRING) {
          return Failed(Status::Unavailable("SCRIPT LOAD failed: " + RedisReplyText(*r)));
        }
        shas[i].assign(r->str, r->len);
      }
    }
    put_sha_ = shas[0];
    remove_sha_ = shas[1];
    touch_sha_ = shas[2];
    return Status::OK();
  }

  // An error reply that retrying cannot cure: the key holds another type, or our script failed on
  // what the key holds (a foreign or damaged value). Others (BUSY, LOADING, OOM, READONLY, ...)
  // pass, and fail the whole round trip so it is retried.
  // Sends the ops whose node answered NOSCRIPT again as EVAL; their replies replace the NOSCRIPTs.
  Status ResendWithoutScripts(const std::vector<BackingOp>& ops, std::vector<RedisReply>* replies);

  static bool PermanentError(const std::string& text) {
    return text.rfind("WRONGTYPE", 0) == 0 || text.find("user_script") != std::string::npos ||
           text.find("Error running script") != std::string::npos;
  }

  std::string Key(std::string_view id) const { return options_.key_prefix + std::string(id); }
  static std::string Millis(int64_t us) { return std::to_string(us / 1000); }

  // The script call of `op`: EVALSHA, or with `eval` EVAL with the script's source (after a node
  // answered NOSCRIPT: that also caches the script there).
  RedisCommand Command(const BackingOp& op, bool eval) const {
    const std::string version = std::to_string(op.item.version);
    const char* const call = eval ? "EVAL" : "EVALSHA";
    switch (op.kind) {
      case BackingOp::Kind::kPut:
        return {call,
                eval ? kPutScript : put_sha_,
                "1",
                Key(op.item.id),
                version,
                EncodeDiskRecord(op.item.id, op.item, op.data(), clock_->NowMicros()),
                Millis(op.item.expires_at_us)};
      case BackingOp::Kind::kRemove:
        return {call,
                eval ? kRemoveScript : remove_sha_,
                "1",
                Key(op.item.id),
                version,
                Millis(std::max(op.item.expires_at_us, clock_->NowMicros() + kMinTombstoneLifeUs))};
      case BackingOp::Kind::kTouch:
        return {call,    eval ? kTouchScript : touch_sha_, "1", Key(op.item.id),
                version, Millis(op.item.expires_at_us)};
    }
    return {};
  }

  Status Failed(Status s) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return s;
  }

  const RedisOptions options_;
  Clock* const clock_;
  RedisRouterCounters router_counters_;  // of both routers
  RedisRouter writer_;                   // Apply's connections; Apply runs on one thread at a time
  std::string put_sha_, remove_sha_, touch_sha_;
  static Status ReadsBlocked() {
    return Status::Unavailable("Redis did not answer a read just now; not retried yet");
  }

  Mutex read_mu_;
  RedisRouter reader_ GUARDED_BY(read_mu_);
  int64_t reads_blocked_until_us_ GUARDED_BY(read_mu_) = 0;  // MonotonicMicros

  std::atomic<uint64_t> applied_{0}, stale_{0}, round_trips_{0}, reads_{0}, read_hits_{0},
      errors_{0}, reconnects_{0}, script_reloads_{0};
};

Status RedisBackingStore::Apply(const std::vector<BackingOp>& ops,
                                std::vector<BackingOutcome>* outcomes) {
  if (put_sha_.empty()) {
    Status s = LoadScripts();
    if (!s.ok()) return s;
  }
  std::vector<RedisCommand> commands;
  commands.reserve(ops.size());
  for (const BackingOp& op : ops) commands.push_back(Command(op, /*eval=*/false));
  std::vector<RedisReply> replies;
  Status s = writer_.Run(commands, &replies);
  if (!s.ok()) return Failed(s);
  round_trips_.fetch_add(1, std::memory_order_relaxed);
  s = ResendWithoutScripts(ops, &replies);
  if (!s.ok()) return Failed(s);
  outcomes->assign(ops.size(), BackingOutcome::kIgnored);
  for (size_t i = 0; i < replies.size(); ++i) {
    const redisReply& r = *replies[i];
    if (r.type == REDIS_REPLY_ERROR) {
      const std::string text = RedisReplyText(r);
      if (PermanentError(text)) {  // this key can never take the write; the others can
        LOG_EVERY_N(ERROR, 100) << "Redis refuses the write of session " << ops[i].item.id
                                << " for good: " << text;
        errors_.fetch_add(1, std::memory_order_relaxed);
        (*outcomes)[i] = BackingOutcome::kRejected;
        continue;
      }
      return Failed(Status::Unavailable("Redis error reply: " + text));
    }
    if (r.type != REDIS_REPLY_INTEGER) {
      return Failed(Status::Unavailable("unexpected Redis reply: " + RedisReplyText(r)));
    }
    (*outcomes)[i] = r.integer == 1   ? BackingOutcome::kApplied
                     : r.integer == 0 ? BackingOutcome::kStale
                                      : BackingOutcome::kIgnored;
  }
  for (BackingOutcome o : *outcomes) {
    if (o == BackingOutcome::kApplied) applied_.fetch_add(1, std::memory_order_relaxed);
    if (o == BackingOutcome::kStale) stale_.fetch_add(1, std::memory_order_relaxed);
  }
  return Status::OK();
}

Status RedisBackingStore::ResendWithoutScripts(const std::vector<BackingOp>& ops,
                                               std::vector<RedisReply>* replies) {
  std::vector<size_t> noscript;
  for (size_t i = 0; i < replies->size(); ++i) {
    const redisReply& r = *(*replies)[i];
    if (r.type == REDIS_REPLY_ERROR && RedisReplyText(r).rfind("NOSCRIPT", 0) == 0) {
      noscript.push_back(i);
    }
  }
  if (noscript.empty()) return Status::OK();
  script_reloads_.fetch_add(1, std::memory_order_relaxed);
  std::vector<RedisCommand> commands;
  for (size_t i : noscript) commands.push_back(Command(ops[i], /*eval=*/true));
  std::vector<RedisReply> again;
  Status s = writer_.Run(commands, &again);
  if (!s.ok()) return s;
  for (size_t k = 0; k < noscript.size(); ++k) (*replies)[noscript[k]] = std::move(again[k]);
  return Status::OK();
}

Status RedisBackingStore::Get(std::string_view id, ItemRecord* item, bool* found) {
  *found = false;
  reads_.fetch_add(1, std::memory_order_relaxed);
  std::vector<RedisReply> replies;
  Status s;
  {
    MutexLock l(&read_mu_);
    // Checked after taking the mutex too: requests queued behind a read that just timed out fail
    // at once instead of each waiting out its own timeout.
    if (MonotonicMicros() < reads_blocked_until_us_) return Failed(ReadsBlocked());
    s = reader_.Run({{"HMGET", Key(id), "v", "r", "t", "e"}}, &replies);
    if (!s.ok()) reads_blocked_until_us_ = MonotonicMicros() + options_.read_retry_us;
  }
  if (!s.ok()) return Failed(s);
  const redisReply& r = *replies[0];
  if (r.type != REDIS_REPLY_ARRAY || r.elements != 4) {
    return Failed(Status::Unavailable("unexpected HMGET reply: " + RedisReplyText(r)));
  }
  const redisReply* version = r.element[0];
  const redisReply* record = r.element[1];
  const redisReply* tombstone = r.element[2];
  const redisReply* expiry = r.element[3];
  item->version = 0;
  if (tombstone->type == REDIS_REPLY_STRING && version->type == REDIS_REPLY_STRING) {
    // Removed: report the removal's version, so a session re-created under this id gets a newer
    // one (else Redis would refuse its writes as stale).
    item->version = std::strtoull(std::string(version->str, version->len).c_str(), nullptr, 10);
    return Status::OK();
  }
  if (record->type != REDIS_REPLY_STRING) return Status::OK();  // missing
  int64_t written_at = 0;
  s = DecodeDiskRecord(id, std::string_view(record->str, record->len), options_.max_value_bytes,
                       item, &written_at);
  if (!s.ok()) return Failed(s);
  // Touches move `e` (the sliding expiry), not the record: the later of the two is the expiry.
  if (expiry->type == REDIS_REPLY_STRING) {
    const int64_t e_ms = std::strtoll(std::string(expiry->str, expiry->len).c_str(), nullptr, 10);
    item->expires_at_us = std::max(item->expires_at_us, e_ms * 1000);
  }
  if (item->expires_at_us <= clock_->NowMicros()) return Status::OK();
  read_hits_.fetch_add(1, std::memory_order_relaxed);
  *found = true;
  return Status::OK();
}

}  // namespace

std::unique_ptr<BackingStore> NewRedisBackingStore(const RedisOptions& options, Clock* clock,
                                                   Status* status) {
  auto store = std::make_unique<RedisBackingStore>(options, clock);
  *status = store->Init();
  return store;
}

}  // namespace sessionserver
