#include "util/redis_connection.h"

#include <hiredis/hiredis.h>

namespace sessionserver {
namespace {

timeval ToTimeval(int64_t us) { return timeval{us / 1'000'000, static_cast<long>(us % 1'000'000)}; }

}  // namespace

void RedisReplyDeleter::operator()(redisReply* r) const { freeReplyObject(r); }

std::string RedisReplyText(const redisReply& r) {
  return r.str != nullptr ? std::string(r.str, r.len) : "reply type " + std::to_string(r.type);
}

RedisConnection::RedisConnection(HostPort endpoint, int64_t connect_timeout_us,
                                 int64_t command_timeout_us)
    : endpoint_(std::move(endpoint)),
      connect_timeout_us_(connect_timeout_us),
      command_timeout_us_(command_timeout_us) {}

RedisConnection::~RedisConnection() { Reset(); }

Status RedisConnection::Ensure() {
  if (ctx_ != nullptr) return Status::OK();
  ctx_ = redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port,
                                 ToTimeval(connect_timeout_us_));
  if (ctx_ == nullptr || ctx_->err) {
    Status s = Status::Unavailable("cannot connect to Redis at " + endpoint_.ToString() + ": " +
                                   (ctx_ ? ctx_->errstr : "out of memory"));
    Reset();
    return s;
  }
  redisSetTimeout(ctx_, ToTimeval(command_timeout_us_));
  ++connects_;
  return Status::OK();
}

Status RedisConnection::Pipeline(const std::vector<RedisCommand>& commands,
                                 std::vector<RedisReply>* replies) {
  std::vector<const RedisCommand*> pointers;
  pointers.reserve(commands.size());
  for (const RedisCommand& c : commands) pointers.push_back(&c);
  return Pipeline(pointers, replies);
}

Status RedisConnection::Pipeline(const std::vector<const RedisCommand*>& commands,
                                 std::vector<RedisReply>* replies) {
  const bool was_open = ctx_ != nullptr;
  Status s = Write(commands);
  if (s.ok()) s = Read(commands.size(), replies);
  if (!s.ok() && was_open) {
    s = Write(commands);
    if (s.ok()) s = Read(commands.size(), replies);
  }
  return s;
}

Status RedisConnection::Write(const std::vector<const RedisCommand*>& commands) {
  Status s = Ensure();
  if (!s.ok()) return s;
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const RedisCommand* cmd : commands) {
    argv.clear();
    lens.clear();
    for (const std::string& a : *cmd) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
        REDIS_OK) {
      return Broken("append");
    }
  }
  for (int done = 0; !done;) {
    if (redisBufferWrite(ctx_, &done) != REDIS_OK) return Broken("write");
  }
  return Status::OK();
}

Status RedisConnection::Read(size_t count, std::vector<RedisReply>* replies) {
  if (ctx_ == nullptr)
    return Status::Unavailable("Redis " + endpoint_.ToString() + ": not connected");
  replies->clear();
  for (size_t i = 0; i < count; ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) return Broken("reply");
    replies->emplace_back(static_cast<redisReply*>(raw));
  }
  return Status::OK();
}

Status RedisConnection::Broken(const char* what) {
  Status s = Status::Unavailable("Redis " + endpoint_.ToString() + " " + what + " failed: " +
                                 (ctx_ && ctx_->errstr[0] ? ctx_->errstr : "unknown error"));
  Reset();  // the stream is out of step; the next call reconnects
  return s;
}

void RedisConnection::Reset() {
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = nullptr;
}

}  // namespace sessionserver
