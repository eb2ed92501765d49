#include "util/redis_cluster.h"

#include <hiredis/hiredis.h>
#include <strings.h>

#include <array>
#include <cstdlib>
#include <set>

#include "util/clock.h"

namespace sessionserver {
namespace {

constexpr std::array<uint16_t, 256> MakeCrc16Table() {
  std::array<uint16_t, 256> table{};
  for (int i = 0; i < 256; ++i) {
    uint16_t crc = static_cast<uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = static_cast<uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    table[i] = crc;
  }
  return table;
}
constexpr std::array<uint16_t, 256> kCrc16Table = MakeCrc16Table();

// The key of a routed command: argument 3 of EVAL/EVALSHA (after the script and the key count),
// else argument 1.
std::string_view KeyOf(const RedisCommand& command) {
  const bool script = !command.empty() && (strcasecmp(command[0].c_str(), "EVALSHA") == 0 ||
                                           strcasecmp(command[0].c_str(), "EVAL") == 0);
  const size_t at = script ? 3 : 1;
  return command.size() > at ? std::string_view(command[at]) : std::string_view();
}

// A redirect answer: "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>". The host may
// be empty when the node does not know its address; then it is the answering node's host.
bool ParseRedirect(const redisReply& r, const HostPort& from, bool* ask, int* slot, HostPort* to) {
  if (r.type != REDIS_REPLY_ERROR || r.str == nullptr) return false;
  const std::string text(r.str, r.len);
  size_t rest;
  if (text.rfind("MOVED ", 0) == 0) {
    *ask = false;
    rest = 6;
  } else if (text.rfind("ASK ", 0) == 0) {
    *ask = true;
    rest = 4;
  } else {
    return false;
  }
  const size_t space = text.find(' ', rest);
  if (space == std::string::npos) return false;
  *slot = std::atoi(text.c_str() + rest);
  // Redis writes "<ip>:<port>", an IPv6 ip without brackets; rewritten as HostPort text.
  const std::string address = text.substr(space + 1);
  const size_t port_colon = address.rfind(':');
  if (port_colon == std::string::npos) return false;
  std::string host = address.substr(0, port_colon);
  if (host.empty()) host = from.host;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return *slot >= 0 && *slot < kRedisClusterSlots &&
         ParseHostPort(host + address.substr(port_colon), to).ok();
}

}  // namespace

uint16_t RedisCrc16(std::string_view data) {
  uint16_t crc = 0;
  for (unsigned char c : data) {
    crc = static_cast<uint16_t>((crc << 8) ^ kCrc16Table[((crc >> 8) ^ c) & 0xff]);
  }
  return crc;
}

int RedisKeySlot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return RedisCrc16(key) & (kRedisClusterSlots - 1);
}

RedisRouterStats RedisRouterCounters::Get() const {
  RedisRouterStats s;
  s.moved = moved.load(std::memory_order_relaxed);
  s.asked = asked.load(std::memory_order_relaxed);
  s.map_refreshes = map_refreshes.load(std::memory_order_relaxed);
  s.reconnects = reconnects.load(std::memory_order_relaxed);
  return s;
}

RedisRouter::RedisRouter(RedisRouterOptions options, RedisRouterCounters* counters)
    : options_(std::move(options)), counters_(counters ? counters : &own_counters_) {}
RedisRouter::~RedisRouter() = default;

Status RedisRouter::Connect() {
  if (options_.cluster) return RefreshSlots();
  return Node(options_.nodes.at(0))->Ensure();
}

RedisConnection* RedisRouter::Node(const HostPort& endpoint) {
  std::unique_ptr<RedisConnection>& node = nodes_[endpoint.ToString()];
  if (node == nullptr) {
    node = std::make_unique<RedisConnection>(endpoint, options_.connect_timeout_us,
                                             options_.command_timeout_us);
  }
  return node.get();
}

RedisConnection* RedisRouter::NodeForKey(const RedisCommand& command) {
  if (!options_.cluster) return Node(options_.nodes.at(0));
  if (slots_.empty()) return nullptr;
  return slots_[RedisKeySlot(KeyOf(command))];
}

void RedisRouter::MaybeRefreshSlots() {
  if (!slots_.empty() && (!refresh_wanted_ || MonotonicMicros() - last_refresh_us_ <
                                                  options_.min_refresh_interval_us)) {
    return;
  }
  RefreshSlots().ok();  // on failure the old map (with the MOVED updates) stays in use
}

Status RedisRouter::RefreshSlots() {
  last_refresh_us_ = MonotonicMicros();
  std::vector<HostPort> candidates;
  for (const auto& [address, node] : nodes_) candidates.push_back(node->endpoint());
  candidates.insert(candidates.end(), options_.nodes.begin(), options_.nodes.end());
  Status last = Status::Unavailable("no Redis Cluster node to ask");
  for (const HostPort& asked : candidates) {
    std::vector<RedisReply> replies;
    static const RedisCommand kClusterSlots = {"CLUSTER", "SLOTS"};
    last = Send(Node(asked), {&kClusterSlots}, &replies);
    if (!last.ok()) continue;
    std::vector<RedisConnection*> slots(kRedisClusterSlots, nullptr);
    const redisReply& r = *replies[0];
    bool valid = r.type == REDIS_REPLY_ARRAY;
    for (size_t i = 0; valid && i < r.elements; ++i) {
      const redisReply& range = *r.element[i];
      // [first slot, last slot, [master host, port, id, ...], replicas...]
      valid = range.type == REDIS_REPLY_ARRAY && range.elements >= 3 &&
              range.element[0]->type == REDIS_REPLY_INTEGER &&
              range.element[1]->type == REDIS_REPLY_INTEGER &&
              range.element[2]->type == REDIS_REPLY_ARRAY && range.element[2]->elements >= 2 &&
              range.element[2]->element[0]->type == REDIS_REPLY_STRING &&
              range.element[2]->element[1]->type == REDIS_REPLY_INTEGER;
      if (!valid) break;
      const long long first = range.element[0]->integer, last_slot = range.element[1]->integer;
      const redisReply& master = *range.element[2];
      HostPort endpoint{std::string(master.element[0]->str, master.element[0]->len),
                        static_cast<int>(master.element[1]->integer)};
      if (endpoint.host.empty() || endpoint.host == "?") endpoint.host = asked.host;
      valid = first >= 0 && first <= last_slot && last_slot < kRedisClusterSlots;
      RedisConnection* node = valid ? Node(endpoint) : nullptr;
      for (long long s = first; valid && s <= last_slot; ++s) slots[s] = node;
    }
    if (!valid) {
      last = Status::Unavailable("unexpected CLUSTER SLOTS reply from " + asked.ToString() + ": " +
                                 RedisReplyText(r));
      continue;
    }
    slots_ = std::move(slots);
    refresh_wanted_ = false;
    counters_->map_refreshes.fetch_add(1, std::memory_order_relaxed);
    // Connections to nodes that serve no slot any more (removed, or now replicas) are closed.
    const std::set<RedisConnection*> masters(slots_.begin(), slots_.end());
    for (auto it = nodes_.begin(); it != nodes_.end();) {
      it = masters.count(it->second.get()) ? std::next(it) : nodes_.erase(it);
    }
    return Status::OK();
  }
  return last;
}

Status RedisRouter::Send(RedisConnection* node, const std::vector<const RedisCommand*>& commands,
                         std::vector<RedisReply>* replies) {
  const uint64_t connects_before = node->connects();
  Status s = node->Pipeline(commands, replies);
  CountReconnect(*node, connects_before);
  if (!s.ok() && options_.cluster) refresh_wanted_ = true;  // the node may have failed over
  return s;
}

void RedisRouter::CountReconnect(const RedisConnection& node, uint64_t connects_before) {
  if (connects_before > 0 && node.connects() > connects_before) {
    counters_->reconnects.fetch_add(1, std::memory_order_relaxed);
  }
}

Status RedisRouter::Run(const std::vector<RedisCommand>& commands,
                        std::vector<RedisReply>* replies) {
  replies->clear();
  replies->resize(commands.size());
  if (commands.empty()) return Status::OK();
  if (options_.cluster) MaybeRefreshSlots();
  struct Batch {
    std::vector<size_t> indexes;
    std::vector<const RedisCommand*> commands;
    bool was_open = false;
    uint64_t connects_before = 0;
    Status status;
    std::vector<RedisReply> replies;
  };
  std::map<RedisConnection*, Batch> by_node;
  for (size_t i = 0; i < commands.size(); ++i) {
    RedisConnection* node = NodeForKey(commands[i]);
    if (node == nullptr) {
      refresh_wanted_ = true;
      return Status::Unavailable(
          "no Redis Cluster node known for slot " +
          std::to_string(RedisKeySlot(KeyOf(commands[i]))) +
          (slots_.empty() ? " (the slot map could not be read)" : " (slot not assigned)"));
    }
    by_node[node].indexes.push_back(i);
    by_node[node].commands.push_back(&commands[i]);
  }
  for (auto& [node, batch] : by_node) {  // every node gets its commands before any is read
    batch.was_open = node->connected();
    batch.connects_before = node->connects();
    batch.status = node->Write(batch.commands);
  }
  // Every batch written is read, even after another failed: no connection is left out of step.
  Status failed;
  std::vector<std::pair<size_t, RedisConnection*>> redirected;  // (command, answering node)
  for (auto& [node, batch] : by_node) {
    if (batch.status.ok()) batch.status = node->Read(batch.commands.size(), &batch.replies);
    CountReconnect(*node, batch.connects_before);
    if (!batch.status.ok() && batch.was_open) {  // a broken idle connection: once more
      batch.status = Send(node, batch.commands, &batch.replies);
    }
    if (!batch.status.ok()) {
      if (options_.cluster) refresh_wanted_ = true;
      if (failed.ok()) failed = batch.status;
      continue;
    }
    for (size_t k = 0; k < batch.indexes.size(); ++k) {
      const size_t i = batch.indexes[k];
      (*replies)[i] = std::move(batch.replies[k]);
      if ((*replies)[i]->type == REDIS_REPLY_ERROR) redirected.emplace_back(i, node);
    }
  }
  if (!failed.ok()) return failed;
  for (const auto& [i, node] : redirected) {
    Status s = Follow(commands[i], node, &(*replies)[i]);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status RedisRouter::Follow(const RedisCommand& command, RedisConnection* from, RedisReply* reply) {
  static const RedisCommand kAsking = {"ASKING"};
  for (int hop = 0;; ++hop) {
    bool ask = false;
    int slot = 0;
    HostPort to;
    if (!ParseRedirect(**reply, from->endpoint(), &ask, &slot, &to)) return Status::OK();
    if (!options_.cluster) {
      return Status::Unavailable(
          "Redis at " + from->endpoint().ToString() +
          " is a cluster node (use the cluster option): " + RedisReplyText(**reply));
    }
    if (hop == options_.max_redirects) {
      return Status::Unavailable("Redis Cluster redirected a command " + std::to_string(hop) +
                                 " times; last: " + RedisReplyText(**reply));
    }
    RedisConnection* node = Node(to);
    std::vector<RedisReply> replies;
    Status s;
    if (ask) {  // the slot is moving: only this command goes there, the map stays
      counters_->asked.fetch_add(1, std::memory_order_relaxed);
      s = Send(node, {&kAsking, &command}, &replies);
    } else {  // the slot has moved: remember its owner, and read the whole map soon
      counters_->moved.fetch_add(1, std::memory_order_relaxed);
      slots_[slot] = node;
      refresh_wanted_ = true;
      s = Send(node, {&command}, &replies);
    }
    if (!s.ok()) return s;
    *reply = std::move(replies.back());
    from = node;
  }
}

Status RedisRouter::RunOnEveryNode(const RedisCommand& command, std::vector<RedisReply>* replies) {
  replies->clear();
  std::vector<RedisConnection*> targets;
  if (!options_.cluster) {
    targets.push_back(Node(options_.nodes.at(0)));
  } else {
    MaybeRefreshSlots();
    if (slots_.empty()) return Status::Unavailable("the Redis Cluster slot map could not be read");
    const std::set<RedisConnection*> masters(slots_.begin(), slots_.end());
    for (RedisConnection* node : masters) {
      if (node != nullptr) targets.push_back(node);
    }
  }
  for (RedisConnection* node : targets) {
    std::vector<RedisReply> one;
    Status s = Send(node, {&command}, &one);
    if (!s.ok()) return s;
    replies->push_back(std::move(one[0]));
  }
  return Status::OK();
}

}  // namespace sessionserver
