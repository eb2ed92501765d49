// session_server: wires the modules together and serves until SIGTERM or SIGINT.
// Start-up order: flags, clock, memory store, handler, Thrift server, reaper; shutdown reverses it.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "server/expiry_reaper.h"
#include "server/heartbeat.h"
#include "server/lock_waiters.h"
#include "server/remote_site.h"
#include "server/server_flags.h"
#include "server/session_handler.h"
#include "server/thrift_server.h"
#include "storage/backing_store.h"
#include "storage/disk_tier.h"
#include "storage/journal.h"
#include "storage/limits.h"
#include "storage/write_behind.h"
#include "util/host_port.h"
#include "util/port_file.h"
#include "util/shutdown_signals.h"

namespace sessionserver {
namespace {

constexpr int64_t kPersistTimeoutUs = 60'000'000;
// How long shutdown waits for Redis to take what is queued (the journal keeps the rest).
constexpr int64_t kShutdownFlushTimeoutUs = 10'000'000;
// How long shutdown waits for the other data centre to take what is queued for it.
constexpr int64_t kReplicationFlushTimeoutUs = 2'000'000;

// The backing store and what writes to it: null members without --redis.
struct BackingParts {
  std::unique_ptr<BackingStore> store;
  std::unique_ptr<Journal> journal;
  std::unique_ptr<WriteBehind> write_behind;
  // Two data centres: the other site, and the queue of changes for it (stopped first).
  std::unique_ptr<RemoteSite> remote;
  std::unique_ptr<WriteBehind> replicator;
};

std::string RedisDescription(const RedisOptions& o) {
  if (o.cluster_seeds.empty()) return "Redis at " + HostPort{o.host, o.port}.ToString();
  std::string seeds;
  for (const HostPort& e : o.cluster_seeds) seeds += (seeds.empty() ? "" : ",") + e.ToString();
  return "Redis Cluster (seeds " + seeds + ")";
}

// With --dc and a remote fleet: the queue that replicates every change made here to the other
// site (docs/TWO_SITES.md).
void OpenReplication(const ServerConfig& config, Clock* clock, BackingParts* parts) {
  if (config.remote_servers.empty() && !config.remote_registry) return;
  RemoteSiteOptions ro;
  ro.dc = config.dc;
  ro.servers = config.remote_servers;
  ro.registry = config.remote_registry;
  parts->remote = std::make_unique<RemoteSite>(ro);
  parts->replicator = std::make_unique<WriteBehind>(parts->remote.get(), clock, config.replication);
  LOG(INFO) << "data centre " << config.dc << ": replicating to the other site ("
            << (ro.registry ? "registry " + ro.registry->ToString()
                            : "servers " + std::to_string(ro.servers.size()))
            << "), window " << config.replication.delay_us / 1000 << " ms";
}

// Serves on in hand-off mode (SessionHandler::SetState) until Redis has every change and no
// request holds a lock, or `timeout_us` passes: a session's clients move on with its latest
// changes rather than failing over to an older copy in Redis while the shutdown flush runs.
void HandOffBeforeClosing(SessionHandler* handler, WriteBehind* write_behind,
                          WriteBehind* replicator, int64_t timeout_us) {
  handler->SetState(fleet::ServerState::kDraining);
  const int64_t deadline = SystemClock()->NowMicros() + timeout_us;
  constexpr int64_t kRoundUs = 50'000;
  while (true) {
    // Locks first: a holder's save lands in the queue before the flush that must see it.
    const bool unlocked = handler->Counters()["locks_held"] == 0;
    if (replicator != nullptr) replicator->Flush(kRoundUs).ok();  // best effort (site may be down)
    const bool flushed = write_behind->Flush(kRoundUs).ok();
    if (unlocked && flushed) {
      LOG(INFO) << "sessions handed off: Redis has every change";
      return;
    }
    if (SystemClock()->NowMicros() >= deadline) {
      LOG(WARNING) << "hand-off unfinished after " << timeout_us / 1000 << " ms; closing";
      return;
    }
    if (flushed) std::this_thread::sleep_for(std::chrono::microseconds(kRoundUs));
  }
}

// Connects to Redis (a Redis that is down now is retried by the queue), opens the journal and
// replays what it holds. False (logged) if the journal is wanted but cannot be opened or read.
bool OpenBacking(const ServerConfig& config, Clock* clock, BackingParts* parts) {
  if (!config.use_redis) {
    LOG(WARNING) << "no --redis or --redis_cluster: standalone; a session does not survive the "
                    "loss of this server";
    return true;
  }
  Status s;
  parts->store = NewRedisBackingStore(config.redis, clock, &s);
  if (!s.ok()) {
    LOG(WARNING) << "Redis not reachable yet (changes queue up and are written when it is): "
                 << s.ToString();
  }
  WriteBehindOptions options = config.write_behind;
  if (config.journal && config.data_dir.empty()) {
    LOG(WARNING) << "no --data_dir: no journal; a crash loses changes Redis does not have yet";
  } else if (config.journal) {
    JournalOptions jo;
    jo.sync = config.journal_sync;
    jo.max_value_bytes = kMaxValueBytesCeiling;  // replay what an earlier --max_value_bytes took
    parts->journal = OpenJournalIn(config.data_dir, config.journal_format, jo, &s);
    if (!s.ok()) {
      LOG(ERROR) << "cannot open the journal (or run with --nojournal): " << s.ToString();
      return false;
    }
    options.journal = parts->journal.get();
  }
  parts->write_behind = std::make_unique<WriteBehind>(parts->store.get(), clock, options);
  s = parts->write_behind->Recover();
  if (!s.ok()) {
    LOG(ERROR) << "cannot replay the journal: " << s.ToString();
    return false;
  }
  LOG(INFO) << "backing store: " << RedisDescription(config.redis) << ", write-behind window "
            << options.delay_us / 1000 << " ms, journal " << (parts->journal ? "on" : "off") << ", "
            << parts->write_behind->GetStats().recovered << " changes replayed from the journal";
  return true;
}

// Opens the disk tier, or returns null (memory only) with the reason logged: a server whose disk
// fails keeps serving from memory, and info() says disk_available=0.
std::unique_ptr<DiskTier> OpenDisk(const ServerConfig& config, Clock* clock) {
  if (config.data_dir.empty()) {
    LOG(WARNING) << "no --data_dir: memory only; evicted sessions are lost, restarts lose all";
    return nullptr;
  }
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  RocksDiskTierOptions options;
  options.path = config.data_dir;
  options.capacity_bytes = config.disk_bytes;
  options.max_value_bytes = config.memory.max_value_bytes;
  Status s;
  std::unique_ptr<DiskTier> disk = OpenRocksDiskTier(options, clock, &s);
  if (!s.ok()) {
    LOG(ERROR) << "disk tier unavailable, serving from memory only: " << s.ToString();
    return nullptr;
  }
  LOG(INFO) << "disk tier at " << config.data_dir << ", " << config.disk_bytes << " bytes";
  return disk;
}

int Run() {
  ServerConfig config;
  Status s = ConfigFromFlags(&config);
  if (!s.ok()) {
    LOG(ERROR) << s.ToString();
    return 2;
  }
  for (const std::string& flag : config.ignored_flags) {
    LOG(WARNING) << flag << " is ignored: the server runs one IO thread (OPERATIONS.md)";
  }
  const sigset_t signals = BlockShutdownSignals();

  std::unique_ptr<OffsetClock> debug_clock;
  Clock* clock = SystemClock();
  if (config.enable_debug_clock) {
    debug_clock = std::make_unique<OffsetClock>(SystemClock());
    clock = debug_clock.get();
    LOG(WARNING) << "--enable_debug_clock: clients can move this server's clock";
  }
  std::unique_ptr<DiskTier> disk = OpenDisk(config, clock);
  config.memory.disk_tier = disk.get();
  BackingParts backing;
  if (!OpenBacking(config, clock, &backing)) return 1;
  if (disk && backing.journal) {
    s = ApplyJournalToDiskTier(backing.journal.get(), disk.get());
    if (!s.ok()) {
      LOG(ERROR) << "cannot bring the disk tier up to date with the journal: " << s.ToString();
      return 1;
    }
  }
  OpenReplication(config, clock, &backing);
  config.memory.write_behind = backing.write_behind.get();
  config.memory.backing_store = backing.store.get();
  config.memory.replicator = backing.replicator.get();
  std::unique_ptr<SessionStore> store = NewMemoryStore(config.memory, clock, &s);
  if (!s.ok()) {
    LOG(ERROR) << "memory tier: " << s.ToString();
    return 2;
  }
  if (backing.write_behind) {
    // Redis holds another state of a session than this server (another server changed it, e.g.
    // after a failover): bring this server's copy up to date rather than serve it.
    backing.write_behind->SetConflictListener([store = store.get()](const std::string& id) {
      WriteResult ignored;
      store->Revalidate(id, &ignored);
    });
  }
  // Unsets the listener before the store goes, on every return path.
  auto unset = [](WriteBehind* wb) {
    if (wb != nullptr) wb->SetConflictListener(nullptr);
  };
  std::unique_ptr<WriteBehind, decltype(unset)> listener_reset(backing.write_behind.get(), unset);

  SessionHandler::Parts parts;
  parts.disk = disk.get();
  parts.write_behind = backing.write_behind.get();
  parts.backing_store = backing.store.get();
  parts.journal = backing.journal.get();
  parts.replicator = backing.replicator.get();
  // Requests parked on a lock (getWaiting), woken by the handler when the lock is released.
  LockWaiters waiters([store = store.get()](std::string_view id) { return store->IsLocked(id); });
  parts.waiters = &waiters;
  auto handler = std::make_shared<SessionHandler>(config.server_id, store.get(), parts, clock,
                                                  debug_clock.get());
  ThriftServerOptions serving = config.thrift;
  serving.waiters = &waiters;
  ThriftServer server(serving, handler);
  s = server.Start();
  if (!s.ok()) {
    LOG(ERROR) << s.ToString();
    return 1;
  }
  // Clients, cookies and the registry name this server by its address as HostPort text.
  const std::string address = HostPort{config.thrift.host, server.port()}.ToString();
  if (config.server_id.empty()) handler->SetServerId(address);
  if (!config.port_file.empty() && !WritePortFile(config.port_file, server.port())) {
    LOG(ERROR) << "cannot write --port_file " << config.port_file;
    return 1;
  }
  ExpiryReaper reaper(store.get(), config.expiry_interval_us, config.expiry_budget);
  reaper.Start();
  std::unique_ptr<Heartbeat> heartbeat;
  if (config.use_redis) {
    HeartbeatOptions ho;
    ho.redis_cluster = !config.redis.cluster_seeds.empty();
    ho.redis_nodes = ho.redis_cluster
                         ? config.redis.cluster_seeds
                         : std::vector<HostPort>{{config.redis.host, config.redis.port}};
    ho.address = address;
    ho.server_id = config.server_id.empty() ? ho.address : config.server_id;
    ho.interval_ms = config.heartbeat_ms;
    ho.dc = config.dc;
    heartbeat = std::make_unique<Heartbeat>(ho, handler.get(), backing.write_behind.get(),
                                            backing.replicator.get());
    heartbeat->Start();
  }
  LOG(INFO) << "session_server listening on " << address << ", memory tier "
            << store->GetStats().capacity_bytes << " bytes";

  const int sig = WaitForShutdownSignal(signals);
  LOG(INFO) << "signal " << sig << ": shutting down";
  if (heartbeat) heartbeat->Stop();  // the registry entry expires by itself
  if (backing.write_behind && config.shutdown_handoff_ms > 0) {
    HandOffBeforeClosing(handler.get(), backing.write_behind.get(), backing.replicator.get(),
                         config.shutdown_handoff_ms * 1000);
  }
  reaper.Stop();
  server.Stop();
  int exit_code = 0;
  if (disk) {
    s = store->PersistAll(kPersistTimeoutUs);
    if (!s.ok()) {
      LOG(ERROR) << "could not write every session to the disk tier: " << s.ToString();
      exit_code = 1;
    } else {
      LOG(INFO) << "memory tier written to " << config.data_dir;
    }
  }
  if (backing.write_behind) {
    s = backing.write_behind->Flush(kShutdownFlushTimeoutUs);
    if (s.ok()) {
      LOG(INFO) << "every change is in Redis";
    } else {
      LOG(WARNING) << s.ToString()
                   << (backing.journal ? "; they stay in the journal"
                                       : "; without a journal they are lost");
    }
  }
  listener_reset.reset();  // the listener uses the store
  if (backing.replicator && !backing.replicator->Flush(kReplicationFlushTimeoutUs).ok()) {
    LOG(WARNING) << "some changes did not reach the other site (repl_queue_depth)";
  }
  store.reset();  // stops the spill writer before the disk tier closes
  backing.replicator.reset();
  backing.write_behind.reset();  // stops the flusher before Redis and the journal close
  backing.journal.reset();
  backing.store.reset();
  disk.reset();
  if (exit_code == 0) LOG(INFO) << "stopped cleanly";
  return exit_code;
}

}  // namespace
}  // namespace sessionserver

int main(int argc, char** argv) {
  gflags::SetUsageMessage("session_server: a SessionServer (see README.md)");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  return sessionserver::Run();
}
