#include "fleet/registry.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstdlib>

namespace sessionserver::fleet {
namespace {

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

std::string MemberKey(const std::string& id) { return std::string(Registry::kPrefix) + ":m:" + id; }
std::string DrainKey(const std::string& id) {
  return std::string(Registry::kPrefix) + ":drain:" + id;
}
int64_t ToInt(const std::string& s) { return std::strtoll(s.c_str(), nullptr, 10); }

}  // namespace

Registry::Registry(std::string host, int port, int64_t timeout_ms)
    : host_(std::move(host)), port_(port), timeout_ms_(timeout_ms) {}

Registry::~Registry() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

Status Registry::Ensure() {
  if (ctx_ != nullptr && ctx_->err == 0) return Status::OK();
  if (ctx_ != nullptr) redisFree(ctx_);
  const timeval tv{timeout_ms_ / 1000, static_cast<long>((timeout_ms_ % 1000) * 1000)};
  ctx_ = redisConnectWithTimeout(host_.c_str(), port_, tv);
  if (ctx_ == nullptr || ctx_->err) {
    Status s = Status::Unavailable("registry: cannot connect to Redis at " + host_ + ":" +
                                   std::to_string(port_));
    if (ctx_ != nullptr) redisFree(ctx_);
    ctx_ = nullptr;
    return s;
  }
  redisSetTimeout(ctx_, tv);
  return Status::OK();
}

Status Registry::Run(const std::vector<std::string>& args, void** reply) {
  Status s = Ensure();
  if (!s.ok()) return s;
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  *reply = redisCommandArgv(ctx_, static_cast<int>(args.size()), argv.data(), lens.data());
  if (*reply == nullptr) {
    s = Status::Unavailable(std::string("registry: Redis did not answer: ") + ctx_->errstr);
    redisFree(ctx_);
    ctx_ = nullptr;
    return s;
  }
  if (static_cast<redisReply*>(*reply)->type == REDIS_REPLY_ERROR) {
    s = Status::Unavailable(std::string("registry: ") + static_cast<redisReply*>(*reply)->str);
    freeReplyObject(*reply);
    *reply = nullptr;
    return s;
  }
  return Status::OK();
}

Status Registry::Heartbeat(const Member& me, int64_t ttl_ms, bool* draining) {
  void* raw = nullptr;
  Status s = Run({"EXISTS", DrainKey(me.id)}, &raw);
  if (!s.ok()) return s;
  *draining = Reply(static_cast<redisReply*>(raw))->integer == 1;
  const std::string key = MemberKey(me.id);
  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{
            "HSET",         key,
            "address",      me.address,
            "state",        !*draining ? "active" : me.state == "drained" ? "drained" : "draining",
            "heartbeat_ms", std::to_string(me.heartbeat_ms),
            "items",        std::to_string(me.items),
            "bytes",        std::to_string(me.bytes),
            "requests",     std::to_string(me.requests),
            "dc",           me.dc,
            "repl_pending", std::to_string(me.repl_pending),
            "repl_dropped", std::to_string(me.repl_dropped)},
        std::vector<std::string>{"PEXPIRE", key, std::to_string(ttl_ms)},
        std::vector<std::string>{"SADD", kPrefix, me.id}}) {
    s = Run(cmd, &raw);
    if (!s.ok()) return s;
    Reply(static_cast<redisReply*>(raw));
  }
  return Status::OK();
}

Status Registry::List(std::vector<Member>* members) {
  members->clear();
  void* raw = nullptr;
  Status s = Run({"SMEMBERS", kPrefix}, &raw);
  if (!s.ok()) return s;
  Reply ids(static_cast<redisReply*>(raw));
  for (size_t i = 0; i < ids->elements; ++i) {
    const std::string id(ids->element[i]->str, ids->element[i]->len);
    s = Run({"HGETALL", MemberKey(id)}, &raw);
    if (!s.ok()) return s;
    Reply fields(static_cast<redisReply*>(raw));
    if (fields->elements == 0) {  // its heartbeat expired: gone from the view
      s = Run({"SREM", kPrefix, id}, &raw);
      if (s.ok()) Reply(static_cast<redisReply*>(raw));
      continue;
    }
    Member m;
    m.id = id;
    for (size_t f = 0; f + 1 < fields->elements; f += 2) {
      const std::string name(fields->element[f]->str, fields->element[f]->len);
      const std::string value(fields->element[f + 1]->str, fields->element[f + 1]->len);
      if (name == "address") m.address = value;
      if (name == "state") m.state = value;
      if (name == "heartbeat_ms") m.heartbeat_ms = ToInt(value);
      if (name == "items") m.items = ToInt(value);
      if (name == "bytes") m.bytes = ToInt(value);
      if (name == "requests") m.requests = ToInt(value);
      if (name == "dc") m.dc = value;
      if (name == "repl_pending") m.repl_pending = ToInt(value);
      if (name == "repl_dropped") m.repl_dropped = ToInt(value);
    }
    members->push_back(std::move(m));
  }
  std::sort(members->begin(), members->end(),
            [](const Member& a, const Member& b) { return a.id < b.id; });
  return Status::OK();
}

Status Registry::SetDrain(const std::string& id, bool drain) {
  void* raw = nullptr;
  Status s = drain ? Run({"SET", DrainKey(id), "1"}, &raw) : Run({"DEL", DrainKey(id)}, &raw);
  if (s.ok()) Reply(static_cast<redisReply*>(raw));
  return s;
}

}  // namespace sessionserver::fleet
