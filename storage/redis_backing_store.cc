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

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

timeval ToTimeval(int64_t us) { return timeval{us / 1'000'000, static_cast<long>(us % 1'000'000)}; }

// One hiredis connection that reconnects on demand. Not thread-safe: each user holds its own
// or guards it with a mutex.
class Connection {
 public:
  explicit Connection(const RedisOptions& options) : options_(options) {}
  ~Connection() { Reset(); }

  Status Ensure() {
    if (ctx_ != nullptr) return Status::OK();
    ctx_ = redisConnectWithTimeout(options_.host.c_str(), options_.port,
                                   ToTimeval(options_.connect_timeout_us));
    if (ctx_ == nullptr || ctx_->err) {
      Status s = Status::Unavailable("cannot connect to Redis at " + options_.host + ":" +
                                     std::to_string(options_.port) + ": " +
                                     (ctx_ ? ctx_->errstr : "out of memory"));
      Reset();
      return s;
    }
    redisSetTimeout(ctx_, ToTimeval(options_.command_timeout_us));
    ++connects_;
    return Status::OK();
  }

  // Sends the commands in one round trip and returns their replies (error replies included).
  // A connection that was open but turns out broken (Redis restarted, idle connection closed)
  // is replaced and the commands sent once more: every command we send is idempotent.
  Status Pipeline(const std::vector<std::vector<std::string>>& commands,
                  std::vector<Reply>* replies) {
    const bool was_open = ctx_ != nullptr;
    Status s = PipelineOnce(commands, replies);
    if (!s.ok() && was_open) s = PipelineOnce(commands, replies);
    return s;
  }

  uint64_t connects() const { return connects_; }

 private:
  Status PipelineOnce(const std::vector<std::vector<std::string>>& commands,
                      std::vector<Reply>* replies) {
    Status s = Ensure();
    if (!s.ok()) return s;
    for (const auto& cmd : commands) {
      std::vector<const char*> argv;
      std::vector<size_t> lens;
      for (const auto& a : cmd) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
          REDIS_OK) {
        return Broken("append");
      }
    }
    replies->clear();
    for (size_t i = 0; i < commands.size(); ++i) {
      void* raw = nullptr;
      if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) return Broken("reply");
      replies->emplace_back(static_cast<redisReply*>(raw));
    }
    return Status::OK();
  }

  Status Broken(const char* what) {
    Status s = Status::Unavailable(std::string("Redis ") + what + " failed: " +
                                   (ctx_ && ctx_->errstr[0] ? ctx_->errstr : "unknown error"));
    Reset();  // the stream is out of step; the next call reconnects
    return s;
  }
  void Reset() {
    if (ctx_ != nullptr) redisFree(ctx_);
    ctx_ = nullptr;
  }

  const RedisOptions options_;
  redisContext* ctx_ = nullptr;
  uint64_t connects_ = 0;
};

class RedisBackingStore : public BackingStore {
 public:
  RedisBackingStore(const RedisOptions& options, Clock* clock)
      : options_(options), clock_(clock), writer_(options), reader_(options) {}

  Status Init() {
    Status s = LoadScripts();
    if (!s.ok()) return s;
    MutexLock l(&read_mu_);
    return reader_.Ensure();
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
    return s;
  }

 private:
  // SCRIPT LOAD for the three scripts (on the writer's connection; scripts are server-wide).
  Status LoadScripts() {
    std::vector<Reply> replies;
    Status s = writer_.Pipeline({{"SCRIPT", "LOAD", kPutScript},
                                 {"SCRIPT", "LOAD", kRemoveScript},
                                 {"SCRIPT", "LOAD", kTouchScript}},
                                &replies);
    if (!s.ok()) return Failed(s);
    std::string* shas[] = {&put_sha_, &remove_sha_, &touch_sha_};
    for (size_t i = 0; i < 3; ++i) {
      if (replies[i]->type != REDIS_REPLY_STRING) {
        return Failed(Status::Unavailable("SCRIPT LOAD failed: " + ReplyText(*replies[i])));
      }
      shas[i]->assign(replies[i]->str, replies[i]->len);
    }
    return Status::OK();
  }

  // An error reply that retrying cannot cure: the key holds another type, or our script failed on
  // what the key holds (a foreign or damaged value). Others (BUSY, LOADING, OOM, READONLY, ...)
  // pass, and fail the whole round trip so it is retried.
  static bool PermanentError(const std::string& text) {
    return text.rfind("WRONGTYPE", 0) == 0 || text.find("user_script") != std::string::npos ||
           text.find("Error running script") != std::string::npos;
  }

  static std::string ReplyText(const redisReply& r) {
    return r.str != nullptr ? std::string(r.str, r.len) : "reply type " + std::to_string(r.type);
  }

  std::string Key(std::string_view id) const { return options_.key_prefix + std::string(id); }
  static std::string Millis(int64_t us) { return std::to_string(us / 1000); }

  std::vector<std::string> Command(const BackingOp& op) const {
    const std::string version = std::to_string(op.item.version);
    switch (op.kind) {
      case BackingOp::Kind::kPut:
        return {"EVALSHA",
                put_sha_,
                "1",
                Key(op.item.id),
                version,
                EncodeDiskRecord(op.item.id, op.item, op.data(), clock_->NowMicros()),
                Millis(op.item.expires_at_us)};
      case BackingOp::Kind::kRemove:
        return {"EVALSHA",
                remove_sha_,
                "1",
                Key(op.item.id),
                version,
                Millis(std::max(op.item.expires_at_us, clock_->NowMicros() + kMinTombstoneLifeUs))};
      case BackingOp::Kind::kTouch:
        return {"EVALSHA",       touch_sha_, "1",
                Key(op.item.id), version,    Millis(op.item.expires_at_us)};
    }
    return {};
  }

  Status Failed(Status s) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return s;
  }

  const RedisOptions options_;
  Clock* const clock_;
  Connection writer_;  // Apply's connection; Apply runs on one thread at a time
  std::string put_sha_, remove_sha_, touch_sha_;
  static Status ReadsBlocked() {
    return Status::Unavailable("Redis did not answer a read just now; not retried yet");
  }

  Mutex read_mu_;
  Connection reader_ GUARDED_BY(read_mu_);
  int64_t reads_blocked_until_us_ GUARDED_BY(read_mu_) = 0;  // MonotonicMicros

  std::atomic<uint64_t> applied_{0}, stale_{0}, round_trips_{0}, reads_{0}, read_hits_{0},
      errors_{0}, reconnects_{0}, script_reloads_{0};
};

Status RedisBackingStore::Apply(const std::vector<BackingOp>& ops,
                                std::vector<BackingOutcome>* outcomes) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    const uint64_t connects_before = writer_.connects();
    if (put_sha_.empty()) {
      Status s = LoadScripts();
      if (!s.ok()) return s;
    }
    std::vector<std::vector<std::string>> commands;
    commands.reserve(ops.size());
    for (const BackingOp& op : ops) commands.push_back(Command(op));
    std::vector<Reply> replies;
    Status s = writer_.Pipeline(commands, &replies);
    if (writer_.connects() > connects_before && connects_before > 0) {
      reconnects_.fetch_add(1, std::memory_order_relaxed);
    }
    if (!s.ok()) {
      put_sha_.clear();  // a new connection may be to a restarted Redis: reload the scripts
      return Failed(s);
    }
    round_trips_.fetch_add(1, std::memory_order_relaxed);
    outcomes->assign(ops.size(), BackingOutcome::kIgnored);
    bool noscript = false;
    for (size_t i = 0; i < replies.size(); ++i) {
      const redisReply& r = *replies[i];
      if (r.type == REDIS_REPLY_ERROR) {
        const std::string text = ReplyText(r);
        if (text.rfind("NOSCRIPT", 0) == 0) {
          noscript = true;
          continue;
        }
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
        return Failed(Status::Unavailable("unexpected Redis reply: " + ReplyText(r)));
      }
      (*outcomes)[i] = r.integer == 1   ? BackingOutcome::kApplied
                       : r.integer == 0 ? BackingOutcome::kStale
                                        : BackingOutcome::kIgnored;
    }
    if (noscript) {  // Redis lost its scripts (restart, SCRIPT FLUSH): reload and resend all
      script_reloads_.fetch_add(1, std::memory_order_relaxed);
      put_sha_.clear();
      continue;
    }
    for (BackingOutcome o : *outcomes) {
      if (o == BackingOutcome::kApplied) applied_.fetch_add(1, std::memory_order_relaxed);
      if (o == BackingOutcome::kStale) stale_.fetch_add(1, std::memory_order_relaxed);
    }
    return Status::OK();
  }
  return Failed(Status::Unavailable("Redis keeps answering NOSCRIPT"));
}

Status RedisBackingStore::Get(std::string_view id, ItemRecord* item, bool* found) {
  *found = false;
  reads_.fetch_add(1, std::memory_order_relaxed);
  std::vector<Reply> replies;
  Status s;
  {
    MutexLock l(&read_mu_);
    // Checked after taking the mutex too: requests queued behind a read that just timed out fail
    // at once instead of each waiting out its own timeout.
    if (MonotonicMicros() < reads_blocked_until_us_) return Failed(ReadsBlocked());
    s = reader_.Pipeline({{"HMGET", Key(id), "v", "r", "t", "e"}}, &replies);
    if (!s.ok()) reads_blocked_until_us_ = MonotonicMicros() + options_.read_retry_us;
  }
  if (!s.ok()) return Failed(s);
  const redisReply& r = *replies[0];
  if (r.type != REDIS_REPLY_ARRAY || r.elements != 4) {
    return Failed(Status::Unavailable("unexpected HMGET reply: " + ReplyText(r)));
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
