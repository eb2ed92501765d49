#include "server/thrift_server.h"

#include <glog/logging.h>
#include <netdb.h>
#include <sys/socket.h>
#include <thrift/TConfiguration.h>
#include <thrift/TOutput.h>
#include <thrift/concurrency/ThreadFactory.h>
#include <thrift/concurrency/ThreadManager.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/server/TNonblockingServer.h>
#include <thrift/transport/TNonblockingServerSocket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <utility>

#include "storage/limits.h"
#include "util/clock.h"

namespace sessionserver {

using apache::thrift::TConnectionInfo;
using apache::thrift::TException;
using apache::thrift::TProcessor;
using apache::thrift::TProcessorFactory;
using apache::thrift::concurrency::ThreadFactory;
using apache::thrift::concurrency::ThreadManager;
using apache::thrift::protocol::TBinaryProtocolFactory;
using apache::thrift::protocol::TProtocol;
using apache::thrift::server::TNonblockingServer;
using apache::thrift::server::TServerEventHandler;
using apache::thrift::transport::TNonblockingServerSocket;
using apache::thrift::transport::TSocket;
using apache::thrift::transport::TTransport;

namespace {

// Thrift's internal messages (connection errors, oversize frames) go to glog, not raw stderr.
void ThriftLog(const char* message) { LOG(INFO) << "thrift: " << message; }

// Wraps the generated processor for one connection. The generated code turns handler errors into
// replies itself, so anything that escapes process() means the client's bytes did not decode
// (bad version, a length that lies, a truncated struct). In thread-pool mode Thrift would log it
// and keep reading the same connection; shutting the socket down makes its IO thread see EOF and
// close that connection, and only that one. shutdown(2) is safe here: the connection is idle in
// its IO thread while a worker runs its request, and the fd stays open until that thread closes it.
class ClosingProcessor : public TProcessor {
 public:
  // `fd` is the connection's socket; it is valid whenever process() runs (the connection exists
  // until its IO thread closes it, which cannot happen while its request is being processed).
  ClosingProcessor(std::shared_ptr<TProcessor> inner, int fd) : inner_(std::move(inner)), fd_(fd) {}

  bool process(std::shared_ptr<TProtocol> in, std::shared_ptr<TProtocol> out,
               void* context) override {
    try {
      return inner_->process(in, out, context);
    } catch (const std::exception& e) {
      LOG(WARNING) << "closing connection fd " << fd_ << ": undecodable request: " << e.what();
      if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
      throw;
    }
  }

 private:
  std::shared_ptr<TProcessor> inner_;
  const int fd_;
};

class ClosingProcessorFactory : public TProcessorFactory {
 public:
  explicit ClosingProcessorFactory(std::shared_ptr<TProcessor> inner) : inner_(std::move(inner)) {}
  std::shared_ptr<TProcessor> getProcessor(const TConnectionInfo& info) override {
    auto socket = std::dynamic_pointer_cast<TSocket>(info.transport);
    return std::make_shared<ClosingProcessor>(inner_, socket ? socket->getSocketFD() : -1);
  }

 private:
  std::shared_ptr<TProcessor> inner_;
};

}  // namespace

// How long Start() waits for the event loop to accept its probe connection (TSan builds on a
// loaded machine take a while to start threads).
constexpr int64_t kLoopStartTimeoutUs = 30'000'000;

// Buffer a connection keeps between calls (values of typical 1-5 KiB sessions fit).
constexpr size_t kIdleBufferBytes = 16 << 10;

static_assert(FrameLimit(kMaxValueBytesCeiling) <
                  static_cast<size_t>(apache::thrift::TConfiguration::DEFAULT_MAX_MESSAGE_SIZE),
              "the frame limit must bind before Thrift's own message size limit");

// Tells Start() that serve() is listening (preServe) or has failed, and that its event loop runs
// (it accepted a connection: createContext is called on the loop's thread); tells Stop() that
// serve() has returned.
class ThriftServer::ReadySignal : public TServerEventHandler {
 public:
  void preServe() override { Set(Status::OK()); }
  void* createContext(std::shared_ptr<TProtocol>, std::shared_ptr<TProtocol>) override {
    if (!accepted_.load(std::memory_order_acquire)) {
      MutexLock l(&mu_);
      accepted_.store(true, std::memory_order_release);
      cv_.SignalAll();
    }
    return nullptr;
  }
  // True once the loop has accepted a connection, waiting up to `timeout_us` of real time.
  bool WaitAccepted(int64_t timeout_us) {
    const int64_t deadline = MonotonicMicros() + timeout_us;
    MutexLock l(&mu_);
    while (!accepted_.load(std::memory_order_acquire) && !finished_) {
      const int64_t left = deadline - MonotonicMicros();
      if (left <= 0) break;
      cv_.WaitFor(&mu_, std::min<int64_t>(left, 100'000));
    }
    return accepted_.load(std::memory_order_acquire);
  }
  void SetFinished() {
    MutexLock l(&mu_);
    finished_ = true;
    cv_.SignalAll();
  }
  // True if serve() returned within `timeout_us` of real time.
  bool WaitFinished(int64_t timeout_us) {
    MutexLock l(&mu_);
    if (!finished_) cv_.WaitFor(&mu_, timeout_us);
    return finished_;
  }
  void Set(Status s) {
    MutexLock l(&mu_);
    if (done_) return;
    done_ = true;
    status_ = std::move(s);
    cv_.SignalAll();
  }
  Status Wait() {
    MutexLock l(&mu_);
    while (!done_) cv_.WaitFor(&mu_, 100'000);
    return status_;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  bool done_ GUARDED_BY(mu_) = false;
  bool finished_ GUARDED_BY(mu_) = false;
  std::atomic<bool> accepted_{false};  // written under mu_
  Status status_ GUARDED_BY(mu_);
};

ThriftServer::ThriftServer(const ThriftServerOptions& options,
                           std::shared_ptr<thrift::SessionServiceIf> handler)
    : options_(options), handler_(std::move(handler)) {}

ThriftServer::~ThriftServer() { Stop(); }

Status ThriftServer::Start() {
  MutexLock l(&mu_);
  if (running_) return Status::InvalidArgument("server already started");
  apache::thrift::GlobalOutput.setOutputFunction(ThriftLog);
  const auto frame_limit = static_cast<int32_t>(FrameLimit(options_.max_value_bytes));

  auto protocol = std::make_shared<TBinaryProtocolFactory>(
      /*string_limit=*/frame_limit, /*container_limit=*/1024,
      /*strict_read=*/true, /*strict_write=*/true);
  auto socket = std::make_shared<TNonblockingServerSocket>(options_.host, options_.port);
  auto processor = std::make_shared<ClosingProcessorFactory>(
      std::make_shared<thrift::SessionServiceProcessor>(handler_));

  if (options_.worker_threads > 0) {
    workers_ = ThreadManager::newSimpleThreadManager(options_.worker_threads);
    // Joinable workers: ThreadManager::stop() then joins them before freeing its state.
    workers_->threadFactory(std::make_shared<ThreadFactory>(/*detached=*/false));
    workers_->start();
  }
  server_ = std::make_shared<TNonblockingServer>(processor, protocol, socket, workers_);
  server_->setNumIOThreads(1);  // see the header: Thrift's secondary IO threads race at start
  server_->setMaxFrameSize(static_cast<size_t>(frame_limit));
  server_->setMaxConnections(options_.max_connections);
  server_->setOverloadAction(apache::thrift::server::T_OVERLOAD_CLOSE_ON_ACCEPT);
  // A connection's buffers grow to its largest frame. Trim them after every call to what a
  // typical session needs, so idle connections never hold large-value buffers.
  server_->setResizeBufferEveryN(1);
  server_->setIdleReadBufferLimit(kIdleBufferBytes);
  server_->setIdleWriteBufferLimit(kIdleBufferBytes);
  ready_ = std::make_shared<ReadySignal>();
  server_->setServerEventHandler(ready_);

  auto server = server_;
  auto ready = ready_;
  serve_thread_ = std::thread([server, ready] {
    try {
      server->serve();
      ready->Set(Status::Unavailable("server stopped before it started listening"));
    } catch (const TException& e) {
      ready->Set(Status::IOError(std::string("cannot serve: ") + e.what()));
    }
    ready->SetFinished();
  });
  Status s = ready_->Wait();
  if (s.ok()) s = ProbeLoop(server_->getListenPort());
  if (!s.ok()) {
    while (!ready_->WaitFinished(0)) {  // the loop may run (the probe failed): stop it
      server_->stop();
      ready_->WaitFinished(500'000);
    }
    serve_thread_.join();
    if (workers_) workers_->stop();
    workers_.reset();
    server_.reset();
    return s;
  }
  port_ = server_->getListenPort();
  running_ = true;
  return Status::OK();
}

Status ThriftServer::ProbeLoop(int port) {
  // A wildcard listener is probed on loopback.
  std::string host = options_.host;
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* addrs = nullptr;
  const std::string service = std::to_string(port);
  if (getaddrinfo(host.c_str(), service.c_str(), &hints, &addrs) != 0 || addrs == nullptr) {
    return Status::IOError("cannot resolve " + host + " to probe the listening socket");
  }
  const int fd = ::socket(addrs->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool connected = fd >= 0 && ::connect(fd, addrs->ai_addr, addrs->ai_addrlen) == 0;
  freeaddrinfo(addrs);
  const bool accepted = connected && ready_->WaitAccepted(kLoopStartTimeoutUs);
  if (fd >= 0) ::close(fd);
  if (!connected) return Status::IOError("cannot connect to the listening socket to probe it");
  if (!accepted) return Status::IOError("the serving loop did not accept a connection in 30 s");
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
  // Thrift 0.17 loses the wake-up that stop() sends to an IO thread whose notification pipe does
  // not exist yet. Start() returns only once the loop runs, so that cannot happen any more; the
  // repetition stays as a guard (logged if it is ever needed).
  int attempts = 0;
  do {
    server_->stop();
    if (++attempts > 1) LOG(WARNING) << "Thrift server still running; stop attempt " << attempts;
  } while (!ready_->WaitFinished(500'000));
  serve_thread_.join();
  // Workers first: a request still running refers to its connection and IO thread, which the
  // server owns. ThreadManager::stop() joins them.
  if (workers_) workers_->stop();
  workers_.reset();
  server_.reset();
}

}  // namespace sessionserver
