#include "fleet/registry.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstdlib>

namespace sessionserver::fleet {
namespace {

std::string MemberKey(const std::string& id) { return std::string(Registry::kPrefix) + ":m:" + id; }
std::string DrainKey(const std::string& id) {
  return std::string(Registry::kPrefix) + ":drain:" + id;
}
// What a heartbeat writes: the operator's drain flag decides, the server's own state says
// whether the drain is complete.
ServerState WrittenState(ServerState own, bool drain_flag) {
  if (!drain_flag) return ServerState::kActive;
  return own == ServerState::kDrained ? ServerState::kDrained : ServerState::kDraining;
}
int64_t ToInt(const std::string& s) { return std::strtoll(s.c_str(), nullptr, 10); }
std::string Text(const redisReply* r) { return r->str ? std::string(r->str, r->len) : ""; }

RedisRouterOptions RouterOptions(std::vector<HostPort> nodes, bool cluster, int64_t timeout_ms) {
  RedisRouterOptions o;
  o.nodes = std::move(nodes);
  o.cluster = cluster;
  o.connect_timeout_us = timeout_ms * 1000;
  o.command_timeout_us = timeout_ms * 1000;
  return o;
}

}  // namespace

Registry::Registry(std::vector<HostPort> nodes, bool cluster, int64_t timeout_ms)
    : router_(RouterOptions(std::move(nodes), cluster, timeout_ms)) {}

Registry::~Registry() = default;

Status Registry::Run(const std::vector<RedisCommand>& commands, std::vector<RedisReply>* replies) {
  Status s = router_.Run(commands, replies);
  if (!s.ok()) return Status::Unavailable("registry: " + s.message());
  for (const RedisReply& r : *replies) {
    if (r->type == REDIS_REPLY_ERROR) return Status::Unavailable("registry: " + Text(r.get()));
  }
  return Status::OK();
}

Status Registry::Heartbeat(const Member& me, int64_t ttl_ms, bool* draining) {
  std::vector<RedisReply> replies;
  Status s = Run({{"EXISTS", DrainKey(me.id)}}, &replies);
  if (!s.ok()) return s;
  *draining = replies[0]->integer == 1;
  const std::string key = MemberKey(me.id);
  return Run({{"HSET",         key,
               "address",      me.address,
               "state",        ToString(WrittenState(me.state, *draining)),
               "heartbeat_ms", std::to_string(me.heartbeat_ms),
               "items",        std::to_string(me.items),
               "bytes",        std::to_string(me.bytes),
               "requests",     std::to_string(me.requests),
               "request_rate", std::to_string(me.request_rate),
               "dc",           me.dc,
               "repl_pending", std::to_string(me.repl_pending),
               "repl_dropped", std::to_string(me.repl_dropped)},
              {"PEXPIRE", key, std::to_string(ttl_ms)},
              {"SADD", kPrefix, me.id}},
             &replies);
}

Status Registry::List(std::vector<Member>* members) {
  members->clear();
  std::vector<RedisReply> ids;
  Status s = Run({{"SMEMBERS", kPrefix}}, &ids);
  if (!s.ok()) return s;
  std::vector<RedisCommand> reads;
  for (size_t i = 0; i < ids[0]->elements; ++i) {
    reads.push_back({"HGETALL", MemberKey(Text(ids[0]->element[i]))});
  }
  std::vector<RedisReply> entries;
  s = Run(reads, &entries);
  if (!s.ok()) return s;
  std::vector<RedisCommand> prunes;
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string id = Text(ids[0]->element[i]);
    const redisReply& fields = *entries[i];
    if (fields.elements == 0) {  // its heartbeat expired: gone from the view
      prunes.push_back({"SREM", kPrefix, id});
      continue;
    }
    Member m;
    m.id = id;
    m.state = ServerState::kDraining;  // unless its state field names another
    for (size_t f = 0; f + 1 < fields.elements; f += 2) {
      const std::string name = Text(fields.element[f]);
      const std::string value = Text(fields.element[f + 1]);
      if (name == "address") m.address = value;
      if (name == "state") ParseServerState(value, &m.state).ok();  // unknown: kDraining
      if (name == "heartbeat_ms") m.heartbeat_ms = ToInt(value);
      if (name == "items") m.items = ToInt(value);
      if (name == "bytes") m.bytes = ToInt(value);
      if (name == "requests") m.requests = ToInt(value);
      if (name == "dc") m.dc = value;
      if (name == "request_rate") m.request_rate = ToInt(value);
      if (name == "repl_pending") m.repl_pending = ToInt(value);
      if (name == "repl_dropped") m.repl_dropped = ToInt(value);
    }
    members->push_back(std::move(m));
  }
  if (!prunes.empty()) Run(prunes, &entries).ok();  // best effort: the next reader prunes too
  std::sort(members->begin(), members->end(),
            [](const Member& a, const Member& b) { return a.id < b.id; });
  return Status::OK();
}

Status Registry::SetDrain(const std::string& id, bool drain) {
  std::vector<RedisReply> replies;
  return drain ? Run({{"SET", DrainKey(id), "1"}}, &replies)
               : Run({{"DEL", DrainKey(id)}}, &replies);
}

}  // namespace sessionserver::fleet
