#include "server/server_flags.h"

#include <gflags/gflags.h>

#include <cstdlib>

#include "storage/limits.h"
#include "util/redis_connection.h"

DEFINE_string(host, "127.0.0.1",
              "Address to listen on. Default loopback; set a routable address only behind a "
              "firewall that admits the web tier alone (the protocol has no authentication).");
DEFINE_int32(port, 7500, "TCP port; 0 picks a free one (see --port_file).");
DEFINE_string(port_file, "", "If set, the bound port is written to this file once listening.");
DEFINE_string(server_id, "", "This server's identity in the fleet; default host:port.");
DEFINE_uint64(memory_bytes, 256ull << 20,
              "Byte budget of the memory tier, per-item overhead included. More keeps more "
              "sessions hot; the process uses about this plus a few MiB.");
DEFINE_uint64(memory_segments, 64,
              "Independently locked memory segments (power of two; lowered automatically so a "
              "segment holds at least 8 maximum-size values).");
DEFINE_uint64(max_value_bytes, 1 << 20,
              "Largest session value accepted (default 1 MiB, ceiling 32 MiB). Bigger values "
              "get InvalidRequest; frames over 2x this plus 64 KiB close the connection.");
DEFINE_int64(max_lock_age_seconds, 120,
             "The server drops a lock older than this (clients force-release earlier with their "
             "request timeout). 0 disables the server-side limit.");
DEFINE_string(data_dir, "",
              "Directory of the RocksDB disk tier: sessions evicted from memory go there, and a "
              "server restarted on the same directory serves every unexpired session it had. "
              "Empty: memory only (evicted sessions are lost; a restart loses everything).");
DEFINE_uint64(disk_bytes, 4ull << 30,
              "Bound of the disk tier (encoded records). Past it, the records spilled longest "
              "ago are deleted first.");
DEFINE_uint64(io_threads, 1,
              "Ignored (replaced by --loop_threads). Accepted so that flagfiles of earlier "
              "versions still start.");
DEFINE_uint64(loop_threads, 0,
              "Event-loop threads that read, run and answer requests (docs/SERVING.md). 0: one "
              "per core, at most 8.");
DEFINE_uint64(worker_threads, 4,
              "Threads for requests that wait for a disk or Redis read (or a drain's flush); "
              "0 runs them on the event loops, which then stall while they wait.");
DEFINE_uint64(max_connections, 10000, "Connections beyond this are closed on accept.");
DEFINE_int64(expiry_interval_ms, 100, "How often the expiry reaper runs.");
DEFINE_uint64(expiry_budget, 2000, "Most expired items the reaper reclaims per run.");
DEFINE_string(redis, "",
              "host:port of the fleet's Redis (the backing store). Every change is written "
              "behind to it, and sessions missing here are restored from it. Empty: standalone "
              "(memory and disk tiers only; a session does not survive the loss of this server).");
DEFINE_string(redis_cluster, "",
              "host:port[,host:port...]: seed nodes of a Redis Cluster to use as the backing "
              "store (and fleet registry) instead of --redis. Each session key goes to the "
              "master of its hash slot; resharding and failover are followed (MOVED, ASK). "
              "Give several seeds so a start survives the loss of one.");
DEFINE_int64(write_behind_delay_ms, 100,
             "Changes to a session within this window coalesce into one Redis write. Longer "
             "saves Redis writes for hot sessions; shorter narrows what other servers may miss "
             "after this one dies (the journal keeps it for this server's restart either way).");
DEFINE_int64(redis_timeout_ms, 500,
             "Redis command timeout; a hung Redis costs a write-behind round or a restore read "
             "at most about twice this.");
DEFINE_bool(journal, true,
            "Journal every acknowledged change in <data_dir> until Redis has it, so a crash "
            "(kill -9) loses nothing. Needs --data_dir and --redis. Costs one append per group "
            "of puts/removes (BENCHMARKS.md); off, a crash loses the unwritten window.");
DEFINE_string(journal_format, "log",
              "log: segment files of our own in <data_dir>/journal-log, one write(2) per group "
              "of changes. rocksdb: a RocksDB database in <data_dir>/journal (the format before "
              "the log; costs more CPU per change). A start with one format moves what the "
              "other format's directory holds into it first (docs/JOURNAL.md).");
DEFINE_bool(journal_sync, false,
            "fsync the journal on every append: survives power loss too, at the cost of an fsync "
            "per (grouped) write. Off, journaled changes survive process crashes.");
DEFINE_uint64(max_pending_bytes, 64ull << 20,
              "Bytes of changes queued for Redis kept in memory. Past it, queued values live "
              "only in the journal; without a journal, further puts are refused (Unavailable) "
              "until Redis catches up.");
DEFINE_string(dc, "",
              "This server's data centre (site) name. With --remote_servers or "
              "--remote_registry, every change made here is replicated to the other site "
              "(docs/TWO_SITES.md); it is also shown by sessionctl.");
DEFINE_string(remote_servers, "",
              "The other site's servers, host:port,host:port (a static view of that fleet).");
DEFINE_string(remote_registry, "",
              "host:port of the other site's registry Redis: its fleet is read from there (and "
              "re-read every second), instead of --remote_servers.");
DEFINE_int64(replication_delay_ms, 10,
             "Changes to one session inside this window are sent to the other site as one. "
             "Shorter: a fresher copy there; longer: fewer cross-site writes for hot sessions.");
DEFINE_uint64(max_replication_bytes, 64ull << 20,
              "Bytes of changes waiting for the other site. Past it, changes of further sessions "
              "are not replicated (counted in repl_dropped): requests are never held back by the "
              "other site.");
DEFINE_int64(shutdown_handoff_ms, 3000,
             "With --redis: on SIGTERM, up to this long (ms) is spent handing sessions off "
             "before the server closes: requests are still served, but each session's next "
             "request is answered MOVED once Redis has its changes, and requests holding a lock "
             "finish. It ends as soon as Redis has everything and no lock is held. 0: close at "
             "once (clients then fail over, possibly to a copy in Redis that lacks the last "
             "changes, until the shutdown flush completes).");
DEFINE_int64(heartbeat_ms, 1000,
             "With --redis: how often this server renews its fleet registry entry (which lives 3 "
             "intervals, so a dead server leaves the view after about 3 of them) and picks up "
             "a drain request (sessionctl drain).");
DEFINE_bool(enable_debug_clock, false,
            "Testing only: lets clients move this server's clock forward (debugAdvanceClock).");

namespace sessionserver {

constexpr int64_t kOneYearSeconds = 365LL * 24 * 3600;

namespace {

// "host:port,host:port" (util/host_port.h) into `out`; empty text gives none. The error names
// the flag.
Status ParseFlag(const std::string& text, const char* flag, std::vector<HostPort>* out) {
  out->clear();
  if (text.empty()) return Status::OK();
  const Status s = ParseHostPortList(text, out);
  return s.ok() ? s : Status::InvalidArgument(std::string(flag) + ": " + s.message());
}

}  // namespace

Status ConfigFromFlags(ServerConfig* c) {
  if (FLAGS_port < 0 || FLAGS_port > 65535) return Status::InvalidArgument("--port out of range");
  if (FLAGS_max_value_bytes == 0 || FLAGS_max_value_bytes > kMaxValueBytesCeiling) {
    return Status::InvalidArgument("--max_value_bytes must be 1.." +
                                   std::to_string(kMaxValueBytesCeiling));
  }
  if (FLAGS_max_lock_age_seconds < 0 || FLAGS_max_lock_age_seconds > kOneYearSeconds) {
    return Status::InvalidArgument("--max_lock_age_seconds must be 0..31536000 (one year)");
  }
  if (FLAGS_expiry_interval_ms <= 0 || FLAGS_expiry_interval_ms > 60'000) {
    return Status::InvalidArgument("--expiry_interval_ms must be 1..60000");
  }
  if (FLAGS_expiry_budget == 0) return Status::InvalidArgument("--expiry_budget must be positive");
  if (FLAGS_write_behind_delay_ms < 0 || FLAGS_write_behind_delay_ms > 60'000) {
    return Status::InvalidArgument("--write_behind_delay_ms must be 0..60000");
  }
  if (FLAGS_redis_timeout_ms <= 0 || FLAGS_redis_timeout_ms > 60'000) {
    return Status::InvalidArgument("--redis_timeout_ms must be 1..60000");
  }
  if (!FLAGS_redis.empty() && !FLAGS_redis_cluster.empty()) {
    return Status::InvalidArgument("give --redis (one Redis) or --redis_cluster, not both");
  }
  std::vector<HostPort> redis;
  Status s = ParseFlag(FLAGS_redis, "--redis", &redis);
  if (!s.ok()) return s;
  if (redis.size() > 1) return Status::InvalidArgument("--redis is one host:port");
  if (!redis.empty()) {
    c->redis.host = redis[0].host;
    c->redis.port = redis[0].port;
  }
  s = ParseFlag(FLAGS_redis_cluster, "--redis_cluster", &c->redis.cluster_seeds);
  if (!s.ok()) return s;
  if (!FLAGS_redis.empty() || !FLAGS_redis_cluster.empty()) {
    c->redis.command_timeout_us = FLAGS_redis_timeout_ms * 1000;
    c->redis.max_value_bytes = kMaxValueBytesCeiling;  // decode what any server wrote
  }

  if (!gflags::GetCommandLineFlagInfoOrDie("io_threads").is_default) {
    c->ignored_flags.push_back("--io_threads=" + std::to_string(FLAGS_io_threads));
  }
  c->thrift.host = FLAGS_host;
  c->thrift.port = FLAGS_port;
  c->thrift.loop_threads = FLAGS_loop_threads;
  c->thrift.worker_threads = FLAGS_worker_threads;
  c->thrift.max_value_bytes = FLAGS_max_value_bytes;
  c->thrift.max_connections = FLAGS_max_connections;
  c->memory.capacity_bytes = FLAGS_memory_bytes;
  c->memory.segments = FLAGS_memory_segments;
  c->memory.max_value_bytes = FLAGS_max_value_bytes;
  c->memory.max_lock_age_us = FLAGS_max_lock_age_seconds * 1'000'000;
  c->server_id = FLAGS_server_id;
  c->data_dir = FLAGS_data_dir;
  c->disk_bytes = FLAGS_disk_bytes;
  c->port_file = FLAGS_port_file;
  c->enable_debug_clock = FLAGS_enable_debug_clock;
  c->expiry_interval_us = FLAGS_expiry_interval_ms * 1000;
  c->expiry_budget = FLAGS_expiry_budget;
  c->use_redis = !FLAGS_redis.empty() || !FLAGS_redis_cluster.empty();
  if (FLAGS_heartbeat_ms < 10 || FLAGS_heartbeat_ms > 60'000) {
    return Status::InvalidArgument("--heartbeat_ms must be 10..60000");
  }
  c->heartbeat_ms = FLAGS_heartbeat_ms;
  if (FLAGS_shutdown_handoff_ms < 0 || FLAGS_shutdown_handoff_ms > 600'000) {
    return Status::InvalidArgument("--shutdown_handoff_ms must be 0..600000");
  }
  c->shutdown_handoff_ms = FLAGS_shutdown_handoff_ms;
  c->write_behind.delay_us = FLAGS_write_behind_delay_ms * 1000;
  c->write_behind.max_pending_bytes = FLAGS_max_pending_bytes;
  c->journal = FLAGS_journal;
  if (FLAGS_journal_format == "log") {
    c->journal_format = JournalFormat::kLog;
  } else if (FLAGS_journal_format == "rocksdb") {
    c->journal_format = JournalFormat::kRocksDb;
  } else {
    return Status::InvalidArgument("--journal_format must be log or rocksdb");
  }
  c->journal_sync = FLAGS_journal_sync;

  c->dc = FLAGS_dc;
  std::vector<HostPort> servers;
  s = ParseFlag(FLAGS_remote_servers, "--remote_servers", &servers);
  if (!s.ok()) return s;
  for (const HostPort& server : servers) c->remote_servers.push_back(server.ToString());
  std::vector<HostPort> registry;
  s = ParseFlag(FLAGS_remote_registry, "--remote_registry", &registry);
  if (!s.ok()) return s;
  if (registry.size() > 1) return Status::InvalidArgument("--remote_registry is one host:port");
  if (!registry.empty()) c->remote_registry = registry[0];
  const bool remote = !c->remote_servers.empty() || c->remote_registry.has_value();
  if (remote && (c->dc.empty() || !c->use_redis)) {
    return Status::InvalidArgument("--remote_servers/--remote_registry need --dc and --redis");
  }
  if (FLAGS_replication_delay_ms < 0 || FLAGS_replication_delay_ms > 60'000) {
    return Status::InvalidArgument("--replication_delay_ms must be 0..60000");
  }
  c->replication.delay_us = FLAGS_replication_delay_ms * 1000;
  c->replication.max_pending_bytes = FLAGS_max_replication_bytes;
  c->replication.drop_when_full = true;
  return Status::OK();
}

}  // namespace sessionserver
