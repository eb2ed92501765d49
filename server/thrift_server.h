// ThriftServer: the serving edge. Serves a SessionServiceIf over framed binary Thrift (the wire
// format every client speaks: session_client, generated clients in other languages) on a few
// event-loop threads of our own (server/event_loop.h) around the generated processor.
//
// Why our own loops and not Thrift's TNonblockingServer (docs/SERVING.md has the measurements):
// Thrift's server hands every request from its IO thread to a worker and back through a
// notification pipe (about 2 context switches and 4 extra syscalls per request), reads a
// frame's length and body in separate calls, and its secondary IO threads race at start. Here a
// loop runs each in-memory request in place, answers a batch of pipelined or concurrent
// requests with one journal append and one send per connection, and hands only the requests
// that must wait for I/O to worker threads.
//
// Threads: `loop_threads` event loops (the first also accepts and deals new connections to the
// loops in turn); `worker_threads` workers for requests that block (0: they block a loop).
//
// Limits: a frame may be up to FrameLimit(max_value_bytes) = 2 * max_value_bytes + 64 KiB
// (storage/limits.h, which the client sizes its frames with too), so a value somewhat over the
// limit still parses and gets a clear InvalidRequest; a frame above the limit (or one that lies
// about its size, or bytes that are not Thrift) closes that connection only. Strings and
// binaries inside a frame are bounded by the same limit, containers by 1,024 elements. Past
// max_connections, new connections are closed on accept.
//
// Thread-safe: Start, Stop and port may be called from any thread; Stop is idempotent.
#ifndef SESSIONSERVER_SERVER_THRIFT_SERVER_H_
#define SESSIONSERVER_SERVER_THRIFT_SERVER_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "SessionService.h"
#include "util/mutex.h"
#include "util/status.h"

namespace sessionserver {

class EventLoop;
class LockWaiters;
class WorkerPool;

struct ThriftServerOptions {
  std::string host = "127.0.0.1";  // listen address
  int port = 7500;                 // 0 picks a free port (read it back with port())
  size_t loop_threads = 0;         // event loops; 0: one per core (at most 8)
  size_t worker_threads = 4;       // threads for requests that block; 0 runs them on the loops
  size_t max_value_bytes = 1 << 20;
  size_t max_connections = 10'000;  // past this, new connections are closed on accept
  LockWaiters* waiters = nullptr;   // not owned; null: getWaiting answers without waiting
};

class ThriftServer {
 public:
  ThriftServer(const ThriftServerOptions& options,
               std::shared_ptr<thrift::SessionServiceIf> handler);
  ~ThriftServer();  // stops the server if running

  // Binds, listens and starts the loops. Returns once they serve, or the reason it could not.
  Status Start() EXCLUDES(mu_);
  // The bound port. REQUIRES: Start() returned OK.
  int port() const EXCLUDES(mu_);
  // Stops accepting, closes connections, joins every thread.
  void Stop() EXCLUDES(mu_);

 private:
  Status Listen() REQUIRES(mu_);
  void StopThreads() REQUIRES(mu_);

  const ThriftServerOptions options_;
  std::shared_ptr<thrift::SessionServiceIf> handler_;

  mutable Mutex mu_;
  int listen_fd_ GUARDED_BY(mu_) = -1;
  int port_ GUARDED_BY(mu_) = 0;
  bool running_ GUARDED_BY(mu_) = false;
  std::unique_ptr<WorkerPool> workers_ GUARDED_BY(mu_);
  std::vector<std::unique_ptr<EventLoop>> loops_ GUARDED_BY(mu_);
  std::atomic<size_t> connections_{0};
  std::atomic<size_t> next_loop_{0};
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_SERVER_THRIFT_SERVER_H_
