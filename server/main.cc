// session_server: wires the modules together and serves until SIGTERM or SIGINT.
// Start-up order: flags, clock, memory store, handler, Thrift server, reaper; shutdown reverses it.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "server/expiry_reaper.h"
#include "server/server_flags.h"
#include "server/session_handler.h"
#include "server/thrift_server.h"
#include "storage/disk_tier.h"

namespace sessionserver {
namespace {

// Blocks the shutdown signals in this thread and every thread it starts later, so that only
// WaitForShutdownSignal receives them.
sigset_t BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

int WaitForShutdownSignal(const sigset_t& set) {
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

constexpr int64_t kPersistTimeoutUs = 60'000'000;

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

bool WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out.good()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

int Run() {
  ServerConfig config;
  Status s = ConfigFromFlags(&config);
  if (!s.ok()) {
    LOG(ERROR) << s.ToString();
    return 2;
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
  std::unique_ptr<SessionStore> store = NewMemoryStore(config.memory, clock, &s);
  if (!s.ok()) {
    LOG(ERROR) << "memory tier: " << s.ToString();
    return 2;
  }
  auto handler = std::make_shared<SessionHandler>(config.server_id, store.get(), disk.get(), clock,
                                                  debug_clock.get());
  ThriftServer server(config.thrift, handler);
  s = server.Start();
  if (!s.ok()) {
    LOG(ERROR) << s.ToString();
    return 1;
  }
  if (config.server_id.empty()) {
    handler->SetServerId(config.thrift.host + ":" + std::to_string(server.port()));
  }
  if (!config.port_file.empty() && !WritePortFile(config.port_file, server.port())) {
    LOG(ERROR) << "cannot write --port_file " << config.port_file;
    return 1;
  }
  ExpiryReaper reaper(store.get(), config.expiry_interval_us, config.expiry_budget);
  reaper.Start();
  LOG(INFO) << "session_server listening on " << config.thrift.host << ":" << server.port()
            << ", memory tier " << store->GetStats().capacity_bytes << " bytes";

  const int sig = WaitForShutdownSignal(signals);
  LOG(INFO) << "signal " << sig << ": shutting down";
  reaper.Stop();
  server.Stop();
  if (disk) {
    s = store->PersistAll(kPersistTimeoutUs);
    if (!s.ok()) {
      LOG(ERROR) << "could not write every session to the disk tier: " << s.ToString();
      return 1;
    }
    LOG(INFO) << "memory tier written to " << config.data_dir;
  }
  store.reset();  // stops the spill writer before the disk tier closes
  disk.reset();
  LOG(INFO) << "stopped cleanly";
  return 0;
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
