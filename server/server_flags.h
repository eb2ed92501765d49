// The session_server's command-line flags (gflags; --flagfile works too), in one place with
// their defaults and trade-offs, and their translation into each module's options.
// Running with no flags at all serves on 127.0.0.1:7500 with a 256 MiB memory tier.
#ifndef SESSIONSERVER_SERVER_SERVER_FLAGS_H_
#define SESSIONSERVER_SERVER_SERVER_FLAGS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/thrift_server.h"
#include "storage/backing_store.h"
#include "storage/session_store.h"
#include "storage/write_behind.h"
#include "util/host_port.h"
#include "util/status.h"

namespace sessionserver {

struct ServerConfig {
  std::string server_id;  // --server_id, or "host:port" when empty
  std::string port_file;  // written with the bound port once listening (for scripts and tests)
  bool enable_debug_clock = false;
  int64_t expiry_interval_us = 0;
  size_t expiry_budget = 0;
  std::string data_dir;  // empty: memory only
  uint64_t disk_bytes = 0;
  bool use_redis = false;  // --redis or --redis_cluster given (redis.cluster_seeds for the latter)
  int64_t heartbeat_ms = 1000;
  int64_t shutdown_handoff_ms = 3000;
  RedisOptions redis;
  WriteBehindOptions write_behind;  // journal pointer filled in by main
  bool journal = true;
  JournalFormat journal_format = JournalFormat::kLog;
  bool journal_sync = false;
  // Two data centres (docs/TWO_SITES.md): replication is on when dc is set with a remote fleet.
  std::string dc;
  std::vector<std::string> remote_servers;  // each as HostPort::ToString text
  std::optional<HostPort> remote_registry;  // the other site's registry
  WriteBehindOptions replication;
  MemoryStoreOptions memory;
  ThriftServerOptions thrift;
  // Flags that are accepted but no longer do anything, as given: main logs a warning for each.
  std::vector<std::string> ignored_flags;
};

// Reads the parsed flags. InvalidArgument names the first flag that is out of range.
Status ConfigFromFlags(ServerConfig* config);

}  // namespace sessionserver

#endif  // SESSIONSERVER_SERVER_SERVER_FLAGS_H_
