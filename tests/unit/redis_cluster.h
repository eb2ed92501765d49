// RedisCluster: a Redis Cluster of real redis-server masters (no replicas) on free loopback ports
// for integration tests. Start() assigns the 16384 slots in even ranges, introduces the nodes
// (CLUSTER MEET) and waits until every node reports cluster_state:ok. Slots can be migrated in
// the steps of the cluster spec (IMPORTING/MIGRATING, MIGRATE of keys, SETSLOT NODE on every
// node), so tests can stop half-way and observe ASK redirects; a replica can be added and
// promoted (CLUSTER FAILOVER TAKEOVER) after its master was killed. Nothing is kept on disk beyond
// the nodes' config files in a temporary directory; the servers die with the test process.
//
// Thread-compatible: use from one thread (it keeps one connection per node).
#ifndef SESSIONSERVER_TESTS_UNIT_REDIS_CLUSTER_H_
#define SESSIONSERVER_TESTS_UNIT_REDIS_CLUSTER_H_

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/temp_dir.h"
#include "tests/unit/redis_server.h"

namespace sessionserver {

class RedisCluster {
 public:
  static constexpr int kSlots = 16384;

  explicit RedisCluster(int masters = 3) : masters_(masters), owners_(kSlots, 0) {}
  ~RedisCluster() {
    for (redisContext* c : contexts_) {
      if (c != nullptr) redisFree(c);
    }
  }

  // Starts the masters and forms the cluster; false (with the reason on stderr) on failure or
  // if the cluster is not ok within 20 s.
  bool Start() {
    for (int i = 0; i < masters_; ++i) {
      if (!StartNode()) return false;
    }
    for (int i = 0; i < masters_; ++i) {
      const int first = i * kSlots / masters_, last = (i + 1) * kSlots / masters_ - 1;
      if (Command(i, {"CLUSTER", "ADDSLOTSRANGE", std::to_string(first), std::to_string(last)}) !=
          "OK") {
        return Fail("ADDSLOTSRANGE failed");
      }
      for (int s = first; s <= last; ++s) owners_[s] = i;
      if (i > 0 && Command(0, {"CLUSTER", "MEET", "127.0.0.1", std::to_string(port(i)),
                               std::to_string(bus_ports_[i])}) != "OK") {
        return Fail("CLUSTER MEET failed");
      }
    }
    return Poll(20'000,
                [&] {
                  for (int i = 0; i < masters_; ++i) {
                    if (Command(i, {"CLUSTER", "INFO"}).find("cluster_state:ok") ==
                        std::string::npos) {
                      return false;
                    }
                  }
                  return true;
                }) ||
           Fail("cluster_state not ok on every node within 20 s");
  }

  int size() const { return masters_; }  // masters; replicas are numbered after them
  int port(int node) const { return servers_[node]->port(); }
  // "127.0.0.1:p0,127.0.0.1:p1,...": every node, as seeds.
  std::string Seeds() const {
    std::string out;
    for (int i = 0; i < masters_; ++i) {
      out += (i ? ",127.0.0.1:" : "127.0.0.1:") + std::to_string(port(i));
    }
    return out;
  }
  RedisServer& server(int node) { return *servers_[node]; }
  // The master of `slot`, as this harness assigned it.
  int Owner(int slot) const { return owners_[slot]; }

  // Runs a command on `node`: the reply as text (integers in decimal, "(nil)", an array's
  // elements joined by '\n', errors as "(error) <text>").
  std::string Command(int node, const std::vector<std::string>& args) {
    redisReply* r = Raw(node, args);
    if (r == nullptr) return "(no reply)";
    std::string out = Text(r);
    freeReplyObject(r);
    return out;
  }
  // The keys `node` holds in `slot` (at most `count`).
  std::vector<std::string> KeysInSlot(int node, int slot, int count) {
    std::vector<std::string> keys;
    redisReply* r =
        Raw(node, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), std::to_string(count)});
    if (r != nullptr && r->type == REDIS_REPLY_ARRAY) {
      for (size_t i = 0; i < r->elements; ++i)
        keys.emplace_back(r->element[i]->str, r->element[i]->len);
    }
    if (r != nullptr) freeReplyObject(r);
    return keys;
  }
  int64_t KeyCount(int node) { return std::stoll(Command(node, {"DBSIZE"})); }

  // Step 1 of moving `slot` to node `to`: IMPORTING on the target, MIGRATING on the owner.
  bool BeginMigration(int slot, int to) {
    const std::string s = std::to_string(slot);
    return Command(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", ids_[Owner(slot)]}) == "OK" &&
           Command(Owner(slot), {"CLUSTER", "SETSLOT", s, "MIGRATING", ids_[to]}) == "OK";
  }
  // Step 2: MIGRATEs up to `count` of the slot's keys from the owner to `to`. Returns how many
  // were moved, -1 on an error.
  int MoveKeys(int slot, int to, int count) {
    const std::vector<std::string> keys = KeysInSlot(Owner(slot), slot, count);
    if (keys.empty()) return 0;
    std::vector<std::string> args = {"MIGRATE", "127.0.0.1", std::to_string(port(to)), "", "0",
                                     "5000",    "KEYS"};
    args.insert(args.end(), keys.begin(), keys.end());
    const std::string reply = Command(Owner(slot), args);
    if (reply != "OK" && reply != "NOKEY") {
      std::fprintf(stderr, "MIGRATE failed: %s\n", reply.c_str());
      return -1;
    }
    return static_cast<int>(keys.size());
  }
  // Step 3: the slot belongs to `to`, told to the target, the source, then the others.
  bool FinishMigration(int slot, int to) {
    const int from = Owner(slot);
    std::vector<int> order = {to, from};
    for (int i = 0; i < masters_; ++i) {
      if (i != to && i != from) order.push_back(i);
    }
    for (int node : order) {
      const std::string r =
          Command(node, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", ids_[to]});
      if (r != "OK") return Fail("SETSLOT NODE failed: " + r);
    }
    owners_[slot] = to;
    return true;
  }
  // All three steps, moving `keys_per_step` keys per MIGRATE.
  bool MigrateSlot(int slot, int to, int keys_per_step = 10) {
    if (!BeginMigration(slot, to)) return Fail("SETSLOT IMPORTING/MIGRATING failed");
    for (int moved; (moved = MoveKeys(slot, to, keys_per_step)) != 0;) {
      if (moved < 0) return false;
    }
    return FinishMigration(slot, to);
  }

  // Adds a replica of `master` and waits (up to 20 s) until it has synced; returns its node
  // number, -1 on failure.
  int AddReplica(int master) {
    if (!StartNode()) return -1;
    const int replica = static_cast<int>(servers_.size()) - 1;
    if (Command(0, {"CLUSTER", "MEET", "127.0.0.1", std::to_string(port(replica)),
                    std::to_string(bus_ports_[replica])}) != "OK") {
      Fail("CLUSTER MEET failed");
      return -1;
    }
    const bool synced =
        Poll(20'000,
             [&] {  // the replica must first learn the master's id
               return Command(replica, {"CLUSTER", "REPLICATE", ids_[master]}) == "OK" ||
                      Command(replica, {"INFO", "replication"}).find("master_link_status:up") !=
                          std::string::npos;
             }) &&
        Poll(20'000, [&] {
          return Command(replica, {"INFO", "replication"}).find("master_link_status:up") !=
                 std::string::npos;
        });
    if (!synced) {
      Fail("the replica did not sync");
      return -1;
    }
    return replica;
  }
  // The replica takes over its master's slots at once (CLUSTER FAILOVER TAKEOVER: no vote, as
  // when an operator promotes it after the master died); waits (up to 20 s) until every live
  // master agrees. The harness's slot owners follow.
  bool TakeOver(int replica, int old_master) {
    if (Command(replica, {"CLUSTER", "FAILOVER", "TAKEOVER"}) != "OK") return Fail("FAILOVER");
    const bool agreed = Poll(20'000, [&] {
      for (int i = 0; i < static_cast<int>(servers_.size()); ++i) {
        if (i != old_master && !SeesAsMaster(i, replica)) return false;
      }
      return true;
    });
    if (!agreed) return Fail("the cluster did not learn of the takeover");
    for (int& owner : owners_) {
      if (owner == old_master) owner = replica;
    }
    return true;
  }

  // Polls `cond` every 10 ms for up to `timeout_ms`.
  template <typename Cond>
  static bool Poll(int timeout_ms, Cond cond) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!cond()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }

 private:
  // Whether `node`'s CLUSTER NODES lists `subject` with the master flag.
  bool SeesAsMaster(int node, int subject) {
    const std::string nodes = "\n" + Command(node, {"CLUSTER", "NODES"});
    const size_t line = nodes.find("\n" + ids_[subject] + " ");
    if (line == std::string::npos) return false;
    const std::string entry = nodes.substr(line + 1, nodes.find('\n', line + 1) - line - 1);
    const size_t flags = entry.find(' ', entry.find(' ') + 1) + 1;
    return entry.substr(flags, entry.find(' ', flags) - flags).find("master") != std::string::npos;
  }

  // Starts one more cluster-enabled node (no slots yet, not introduced).
  bool StartNode() {
    const int port = RedisServer::FreePort();
    bus_ports_.push_back(RedisServer::FreePort());
    servers_.push_back(std::make_unique<RedisServer>(
        port, std::vector<std::string>{"--cluster-enabled", "yes", "--cluster-port",
                                       std::to_string(bus_ports_.back()), "--cluster-config-file",
                                       dir_.path() + "/nodes-" + std::to_string(port) + ".conf",
                                       "--cluster-node-timeout", "2000"}));
    contexts_.push_back(nullptr);
    if (!servers_.back()->Start()) return Fail("redis-server did not start");
    ids_.push_back(Command(static_cast<int>(servers_.size()) - 1, {"CLUSTER", "MYID"}));
    return true;
  }

  redisReply* Raw(int node, const std::vector<std::string>& args) {
    redisContext*& c = contexts_[node];
    if (c == nullptr) {
      c = redisConnectWithTimeout("127.0.0.1", port(node), timeval{2, 0});
      if (c == nullptr || c->err) {
        if (c != nullptr) redisFree(c);
        c = nullptr;
        return nullptr;
      }
      redisSetTimeout(c, timeval{10, 0});
    }
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (r == nullptr) {
      redisFree(c);
      c = nullptr;
    }
    return r;
  }
  static std::string Text(const redisReply* r) {
    switch (r->type) {
      case REDIS_REPLY_INTEGER:
        return std::to_string(r->integer);
      case REDIS_REPLY_NIL:
        return "(nil)";
      case REDIS_REPLY_ERROR:
        return "(error) " + std::string(r->str, r->len);
      case REDIS_REPLY_ARRAY: {
        std::string out;
        for (size_t i = 0; i < r->elements; ++i) out += (i ? "\n" : "") + Text(r->element[i]);
        return out;
      }
      default:
        return r->str != nullptr ? std::string(r->str, r->len) : "";
    }
  }
  static bool Fail(const std::string& why) {
    std::fprintf(stderr, "RedisCluster: %s\n", why.c_str());
    return false;
  }

  const int masters_;
  TempDir dir_{"ss-cluster"};
  std::vector<std::unique_ptr<RedisServer>> servers_;
  std::vector<int> bus_ports_;           // the nodes' cluster bus ports
  std::vector<redisContext*> contexts_;  // one per node, connected on demand
  std::vector<std::string> ids_;         // CLUSTER MYID of each node
  std::vector<int> owners_;              // slot -> node
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_TESTS_UNIT_REDIS_CLUSTER_H_
