#include "server/thrift_server.h"

#include <glog/logging.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "server/event_loop.h"
#include "server/worker_pool.h"
#include "storage/limits.h"

namespace sessionserver {
namespace {

constexpr size_t kMaxLoops = 8;
constexpr int kListenBacklog = 1024;
// Buffer a connection keeps between calls (values of typical 1-5 KiB sessions fit).
constexpr size_t kIdleBufferBytes = 16 << 10;

}  // namespace

ThriftServer::ThriftServer(const ThriftServerOptions& options,
                           std::shared_ptr<thrift::SessionServiceIf> handler)
    : options_(options), handler_(std::move(handler)) {}

ThriftServer::~ThriftServer() { Stop(); }

Status ThriftServer::Listen() {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* addrs = nullptr;
  const std::string service = std::to_string(options_.port);
  const char* host = options_.host.empty() ? nullptr : options_.host.c_str();
  const int rc = getaddrinfo(host, service.c_str(), &hints, &addrs);
  if (rc != 0 || addrs == nullptr) {
    return Status::IOError("cannot resolve listen address " + options_.host + ": " +
                           gai_strerror(rc));
  }
  std::string error = "no address";
  for (addrinfo* a = addrs; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, kListenBacklog) == 0) {
      sockaddr_storage bound{};
      socklen_t len = sizeof(bound);
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
      port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
      listen_fd_ = fd;
      break;
    }
    error = std::strerror(errno);
    ::close(fd);
  }
  freeaddrinfo(addrs);
  if (listen_fd_ < 0) {
    return Status::IOError("cannot listen on " + options_.host + ":" + service + ": " + error);
  }
  return Status::OK();
}

Status ThriftServer::Start() {
  MutexLock l(&mu_);
  if (running_) return Status::InvalidArgument("server already started");
  Status s = Listen();
  if (!s.ok()) return s;
  size_t loops = options_.loop_threads;
  if (loops == 0) loops = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, kMaxLoops);
  if (options_.worker_threads > 0) {
    workers_ = std::make_unique<WorkerPool>(options_.worker_threads);
  }
  EventLoopOptions lo;
  lo.frame_limit = FrameLimit(options_.max_value_bytes);
  lo.idle_buffer_bytes = kIdleBufferBytes;
  lo.max_connections = options_.max_connections;
  lo.connections = &connections_;
  lo.workers = workers_.get();
  lo.waiters = options_.waiters;
  // The first loop accepts and deals connections to every loop in turn (itself included).
  lo.dispatch = [this](int fd) NO_THREAD_SAFETY_ANALYSIS {
    // loops_ does not change while the loops run (Start fills it first, Stop joins them first).
    loops_[next_loop_.fetch_add(1, std::memory_order_relaxed) % loops_.size()]->Adopt(fd);
  };
  for (size_t i = 0; i < loops && s.ok(); ++i) {
    loops_.push_back(std::make_unique<EventLoop>(lo, handler_));
    s = loops_.back()->Init(i == 0 ? listen_fd_ : -1);
  }
  if (!s.ok()) {
    StopThreads();
    return s;
  }
  for (auto& loop : loops_) loop->Start();
  running_ = true;
  LOG(INFO) << "serving on " << options_.host << ":" << port_ << " with " << loops
            << " event loops and " << options_.worker_threads << " workers";
  return Status::OK();
}

int ThriftServer::port() const {
  MutexLock l(&mu_);
  return port_;
}

void ThriftServer::Stop() {
  MutexLock l(&mu_);
  if (!running_) return;
  running_ = false;
  StopThreads();
}

void ThriftServer::StopThreads() {
  // Loops first (they close every connection), then workers (a running request finishes and
  // posts its reply to a loop that no longer reads it), and only then free the loops.
  for (auto& loop : loops_) loop->Stop();
  if (workers_) workers_->Stop();
  loops_.clear();
  workers_.reset();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

}  // namespace sessionserver
