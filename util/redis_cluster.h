// RedisRouter: sends commands to a single Redis or to a Redis Cluster, so the backing store and
// the fleet registry use either the same way.
//
// On a cluster, each command goes to the master serving the hash slot of its key (CRC16 of the
// key, or of its {hash tag}, modulo 16384: RedisKeySlot). The slot map comes from CLUSTER SLOTS,
// read at Connect and again after a MOVED redirect or a connection error (at most once per
// `min_refresh_interval_us`). A MOVED answer updates the slot's owner and resends the command
// there; an ASK answer (a slot being migrated, this key already moved) resends it to the named
// node preceded by ASKING, without updating the map. A command is followed through at most
// `max_redirects` redirects.
//
// Only single-key commands are routed (the key is argument 1, or argument 3 for EVAL and
// EVALSHA, which must name exactly one key); a cluster refuses commands whose keys span slots.
//
// Thread-compatible: Run, RunOnEveryNode and Connect from one thread at a time (each user holds
// its own router or guards it with a mutex). GetStats is thread-safe.
#ifndef SESSIONSERVER_UTIL_REDIS_CLUSTER_H_
#define SESSIONSERVER_UTIL_REDIS_CLUSTER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/redis_connection.h"
#include "util/status.h"

namespace sessionserver {

inline constexpr int kRedisClusterSlots = 16384;

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), as in the Redis Cluster spec.
uint16_t RedisCrc16(std::string_view data);
// The hash slot of `key`: if the key holds a '{' followed later by a '}' with at least one byte
// between them, only those bytes (the first such tag) are hashed; else the whole key.
int RedisKeySlot(std::string_view key);

struct RedisRouterOptions {
  // Single Redis: exactly one node. Cluster: seed nodes (any reachable master or replica tells
  // the slot map; more seeds make start-up survive the loss of some).
  std::vector<HostPort> nodes;
  bool cluster = false;
  int64_t connect_timeout_us = 200'000;
  // A hung node costs a round trip at most about twice this (a broken connection is retried).
  int64_t command_timeout_us = 500'000;
  // Redirects followed per command before giving up (a cluster in flux answers again later).
  int max_redirects = 5;
  // Slot map refreshes are at most this often (real time): a resharding answers many MOVED at
  // once, and each updates its slot directly; the refresh only fetches the rest.
  int64_t min_refresh_interval_us = 100'000;
};

struct RedisRouterStats {
  uint64_t moved = 0;          // MOVED redirects followed
  uint64_t asked = 0;          // ASK redirects followed
  uint64_t map_refreshes = 0;  // CLUSTER SLOTS read successfully
  uint64_t reconnects = 0;     // connections replaced after one broke
};

// What routers count; thread-safe. Several routers may count into one (the two connections of
// a backing store).
struct RedisRouterCounters {
  std::atomic<uint64_t> moved{0}, asked{0}, map_refreshes{0}, reconnects{0};
  RedisRouterStats Get() const;
};

class RedisRouter {
 public:
  // `counters`: where this router counts (not owned, must outlive it); null: its own.
  explicit RedisRouter(RedisRouterOptions options, RedisRouterCounters* counters = nullptr);
  ~RedisRouter();
  RedisRouter(const RedisRouter&) = delete;
  RedisRouter& operator=(const RedisRouter&) = delete;

  // Single Redis: connects. Cluster: reads the slot map from the first seed that answers.
  // Optional: Run connects on demand.
  Status Connect();

  // Runs `commands` (REQUIRES: each idempotent, with one key) and fills `replies`, one per
  // command, in order. On a cluster, the commands are grouped by node and pipelined, written to
  // every node before any reply is read (so the nodes work at once: about one round trip in
  // all), then redirected commands are resent one by one. Error replies other
  // than redirects are passed on as replies. A non-OK Status (Unavailable): a node could not be
  // reached, a slot has no node, or a command was redirected too often; the outcome of every
  // command is unknown.
  Status Run(const std::vector<RedisCommand>& commands, std::vector<RedisReply>* replies);

  // Runs `command` on every master (single Redis: the one node); fills one reply per node.
  Status RunOnEveryNode(const RedisCommand& command, std::vector<RedisReply>* replies);

  RedisRouterStats GetStats() const { return counters_->Get(); }

 private:
  RedisConnection* Node(const HostPort& endpoint);
  RedisConnection* NodeForKey(const RedisCommand& command);
  Status RefreshSlots();
  void MaybeRefreshSlots();
  // Pipelines `commands` to `node` (a broken idle connection is retried once), counting
  // reconnects; an error asks for a map refresh.
  Status Send(RedisConnection* node, const std::vector<const RedisCommand*>& commands,
              std::vector<RedisReply>* replies);
  // Follows the redirects `*reply` (from node `from`) names until a real answer is in *reply.
  Status Follow(const RedisCommand& command, RedisConnection* from, RedisReply* reply);
  void CountReconnect(const RedisConnection& node, uint64_t connects_before);

  const RedisRouterOptions options_;
  std::map<std::string, std::unique_ptr<RedisConnection>> nodes_;  // by "host:port"
  std::vector<RedisConnection*> slots_;  // cluster: the master of each slot (null: none known)
  bool refresh_wanted_ = false;          // a MOVED or an error said the map is out of date
  int64_t last_refresh_us_ = 0;          // MonotonicMicros of the last refresh attempt
  RedisRouterCounters own_counters_;
  RedisRouterCounters* const counters_;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_UTIL_REDIS_CLUSTER_H_
