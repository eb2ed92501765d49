// ThriftServer: serves a SessionServiceIf over Thrift's nonblocking server (framed transport,
// binary protocol) with every size limit derived from the largest accepted value.
//
// Limits: a frame may be up to FrameLimit(max_value_bytes) = 2 * max_value_bytes + 64 KiB
// (storage/limits.h, which the client sizes its frames with too), so a value somewhat over the
// limit still parses and gets a clear InvalidRequest; a frame above the limit (or one that lies
// about its size, or bytes that are not Thrift) closes that connection only. Other connections
// are unaffected.
//
// Where the limits live: the nonblocking server reads each frame itself (bounded by
// setMaxFrameSize = FrameLimit) and decodes it from an internal memory buffer that carries
// Thrift's default TConfiguration (100 MiB message size); the binary protocol factory bounds every
// string and binary to FrameLimit and containers to 1,024 elements. FrameLimit at the largest
// allowed value stays below that 100 MiB (static_assert in thrift_server.cc), so the frame limit
// is always the one that binds.
//
// Threads: one event-loop thread (the serving thread) reads and writes every socket, and
// worker_threads run the requests. Thrift 0.17's secondary IO threads are not used: each creates
// the socketpair that other threads wake it through in its own thread, after the server may
// already hand it connections or a stop, with nothing ordering the two (a real race, reported by
// TSan as send() in TNonblockingIOThread::notify against socketpair() in
// createNotificationPipe). With one IO thread, the pipe is created on the serving thread before
// its loop runs, and Start() returns only once that loop has accepted a connection of its own, so
// every later wake-up (a worker's reply, Stop) is ordered after the pipe exists.
//
// Thread-safe: Start, Stop and port may be called from any thread; Stop is idempotent.
#ifndef SESSIONSERVER_SERVER_THRIFT_SERVER_H_
#define SESSIONSERVER_SERVER_THRIFT_SERVER_H_

#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "SessionService.h"
#include "util/mutex.h"
#include "util/status.h"

namespace apache::thrift::server {
class TNonblockingServer;
}
namespace apache::thrift::concurrency {
class ThreadManager;
}

namespace sessionserver {

struct ThriftServerOptions {
  std::string host = "127.0.0.1";  // listen address
  int port = 7500;                 // 0 picks a free port (read it back with port())
  size_t worker_threads = 4;       // threads running requests; 0 runs them on the IO thread
  size_t max_value_bytes = 1 << 20;
  size_t max_connections = 10'000;  // past this, new connections are closed on accept
};

class ThriftServer {
 public:
  ThriftServer(const ThriftServerOptions& options,
               std::shared_ptr<thrift::SessionServiceIf> handler);
  ~ThriftServer();  // stops the server if running

  // Binds and starts serving on background threads. Returns once the event loop is serving (it
  // has accepted a probe connection from Start itself), or the reason it could not.
  Status Start() EXCLUDES(mu_);
  // The bound port. REQUIRES: Start() returned OK.
  int port() const EXCLUDES(mu_);
  // Stops accepting, closes connections, joins the serving thread.
  void Stop() EXCLUDES(mu_);

 private:
  class ReadySignal;

  // Connects to the listening socket and waits until the event loop has accepted the connection.
  Status ProbeLoop(int port) REQUIRES(mu_);

  const ThriftServerOptions options_;
  std::shared_ptr<thrift::SessionServiceIf> handler_;
  std::shared_ptr<ReadySignal> ready_;
  std::shared_ptr<apache::thrift::concurrency::ThreadManager> workers_;
  std::shared_ptr<apache::thrift::server::TNonblockingServer> server_;
  std::thread serve_thread_;

  mutable Mutex mu_;
  int port_ GUARDED_BY(mu_) = 0;
  bool running_ GUARDED_BY(mu_) = false;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_SERVER_THRIFT_SERVER_H_
