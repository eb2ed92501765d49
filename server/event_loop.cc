#include "server/event_loop.h"

#include <glog/logging.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "server/lock_waiters.h"
#include "server/worker_pool.h"
#include "storage/commit_group.h"
#include "util/blocking.h"
#include "util/clock.h"

namespace sessionserver {
namespace {

constexpr int kMaxEvents = 256;
constexpr size_t kReadChunk = 16 << 10;       // bytes asked of one recv at least
constexpr size_t kMaxReadPerEvent = 1 << 20;  // then other connections get their turn
constexpr size_t kLengthBytes = 4;

uint32_t ReadLength(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// A byte buffer consumed from the front: [begin, end) of `data` holds unread bytes.
class InputBuffer {
 public:
  size_t size() const { return end_ - begin_; }
  const uint8_t* data() const { return data_.get() + begin_; }
  void Consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Room for at least `n` more bytes after the unread ones; returns where to write them.
  uint8_t* Reserve(size_t n) {
    if (capacity_ - end_ >= n) return data_.get() + end_;
    const size_t unread = size();
    if (begin_ > 0 && capacity_ - unread >= n) {  // compact
      std::memmove(data_.get(), data_.get() + begin_, unread);
    } else {
      size_t capacity = capacity_ == 0 ? kReadChunk : capacity_;
      while (capacity - unread < n) capacity *= 2;
      auto grown = std::make_unique<uint8_t[]>(capacity);
      if (unread > 0) std::memcpy(grown.get(), data_.get() + begin_, unread);
      data_ = std::move(grown);
      capacity_ = capacity;
    }
    begin_ = 0;
    end_ = unread;
    return data_.get() + end_;
  }
  size_t room() const { return capacity_ - end_; }
  void Commit(size_t n) { end_ += n; }
  // Lets a large buffer go once it holds nothing.
  void Trim(size_t keep) {
    if (size() == 0 && capacity_ > keep) {
      data_.reset();
      capacity_ = begin_ = end_ = 0;
    }
  }

 private:
  std::unique_ptr<uint8_t[]> data_;
  size_t capacity_ = 0, begin_ = 0, end_ = 0;
};

}  // namespace

struct EventLoop::Connection {
  enum class State { kReady, kAtWorker, kParked };
  explicit Connection(int f) : fd(f) {}
  const int fd;
  InputBuffer in;
  std::string out;  // replies not yet sent, from out_sent on
  size_t out_sent = 0;
  State state = State::kReady;
  uint64_t generation = 0;  // bumped when a wait (worker, park) starts: stale wake-ups are ignored
  std::string held;         // the frame at a worker or parked
  std::string park_id;
  uint64_t park_token = 0;
  uint32_t interest = 0;  // epoll events registered
  bool dirty = false;
  bool closed = false;
};

struct EventLoop::Message {
  enum class Kind { kAdopt, kReply, kWake };
  explicit Message(Kind k) : kind(k) {}
  Kind kind;
  int fd = -1;                       // kAdopt
  std::shared_ptr<Connection> conn;  // kReply, kWake
  uint64_t generation = 0;
  FrameProcessor::Result result = FrameProcessor::Result::kReplied;  // kReply
  std::string reply;
  std::string error;
};

EventLoop::EventLoop(const EventLoopOptions& options,
                     std::shared_ptr<thrift::SessionServiceIf> handler)
    : options_(options), handler_(handler), processor_(std::move(handler), options.frame_limit) {}

EventLoop::~EventLoop() {
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status EventLoop::Init(int listen_fd) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    return Status::IOError(std::string("cannot create an event loop: ") + std::strerror(errno));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &wake_fd_;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    return Status::IOError(std::string("epoll_ctl: ") + std::strerror(errno));
  }
  if (listen_fd >= 0) {
    listen_fd_ = listen_fd;
    ev.events = EPOLLIN;
    ev.data.ptr = &listen_fd_;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
      return Status::IOError(std::string("epoll_ctl: ") + std::strerror(errno));
    }
  }
  return Status::OK();
}

void EventLoop::Start() {
  thread_ = std::thread([this] { Run(); });
}

void EventLoop::Stop() {
  stopping_.store(true);
  const uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

void EventLoop::Adopt(int fd) {
  Message m(Message::Kind::kAdopt);
  m.fd = fd;
  Post(std::move(m));
}

void EventLoop::Post(Message m) {
  bool was_empty;
  {
    MutexLock l(&mailbox_mu_);
    was_empty = mailbox_.empty();
    mailbox_.push_back(std::move(m));
  }
  if (was_empty) {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof(one));
  }
}

void EventLoop::Run() {
  // Requests run here may not block and may be parked; their journal appends wait for the
  // iteration's commit.
  BlockingScope no_blocking(false);
  ParkScope parking(options_.waiters != nullptr);
  epoll_event events[kMaxEvents];
  while (!stopping_.load(std::memory_order_relaxed)) {
    const int n = epoll_wait(epoll_fd_, events, kMaxEvents, WaitTimeoutMs(MonotonicMicros()));
    if (n < 0 && errno != EINTR) {
      PLOG(ERROR) << "epoll_wait";
      continue;
    }
    CommitGroup group;
    CommitGroup::Scope in_group(&group);
    for (int i = 0; i < n; ++i) {
      void* tag = events[i].data.ptr;
      if (tag == &wake_fd_) {
        uint64_t count;
        (void)!::read(wake_fd_, &count, sizeof(count));
        continue;  // the mailbox is read below, every iteration
      }
      if (tag == &listen_fd_) {
        AcceptAll();
        continue;
      }
      auto it = connections_.find(static_cast<int>(reinterpret_cast<intptr_t>(tag)));
      if (it == connections_.end()) continue;
      std::shared_ptr<Connection> c = it->second;
      const uint32_t e = events[i].events;
      if (e & (EPOLLERR | EPOLLHUP)) {
        Close(c, nullptr);
        continue;
      }
      if ((e & EPOLLRDHUP) && !(c->interest & EPOLLIN)) {
        Close(c, nullptr);  // the client went away while its request waits (or its replies do)
        continue;
      }
      if (e & EPOLLIN) OnReadable(c);
      if (!c->closed && (e & EPOLLOUT) && !c->dirty) {
        c->dirty = true;
        dirty_.push_back(c);
      }
    }
    DrainMailbox();
    ExpireTimers(MonotonicMicros());
    while (!dirty_.empty()) {
      group.Commit();  // before any reply of this iteration is sent
      std::vector<std::shared_ptr<Connection>> batch;
      batch.swap(dirty_);
      // Flush may run frames that waited for replies to drain, which dirties connections again.
      for (auto& c : batch) {
        c->dirty = false;
        if (!c->closed) Flush(c);
      }
    }
  }
  for (auto& [fd, c] : connections_) {
    if (c->state == Connection::State::kParked) options_.waiters->Remove(c->park_id, c->park_token);
    c->closed = true;
    ::close(fd);
    options_.connections->fetch_sub(1);
  }
  connections_.clear();
  while (!timers_.empty()) timers_.pop();
  MutexLock l(&mailbox_mu_);
  for (auto& m : mailbox_) {
    if (m.kind != Message::Kind::kAdopt) continue;
    ::close(m.fd);
    options_.connections->fetch_sub(1);  // counted by the accepting loop
  }
  mailbox_.clear();
}

void EventLoop::AcceptAll() {
  while (true) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        LOG_EVERY_N(WARNING, 100) << "accept: " << std::strerror(errno);
      }
      return;
    }
    if (options_.connections->fetch_add(1) >= options_.max_connections) {
      options_.connections->fetch_sub(1);
      LOG_EVERY_N(WARNING, 100) << "closing a new connection: " << options_.max_connections
                                << " connections are open (--max_connections)";
      ::close(fd);
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    options_.dispatch(fd);
  }
}

void EventLoop::AddConnection(int fd) {
  auto c = std::make_shared<Connection>(fd);
  c->interest = EPOLLIN | EPOLLRDHUP;
  epoll_event ev{};
  ev.events = c->interest;
  ev.data.ptr = reinterpret_cast<void*>(static_cast<intptr_t>(fd));
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    PLOG(WARNING) << "epoll_ctl add";
    ::close(fd);
    options_.connections->fetch_sub(1);
    return;
  }
  connections_.emplace(fd, std::move(c));
}

void EventLoop::OnReadable(const std::shared_ptr<Connection>& c) {
  if (c->state != Connection::State::kReady) return;
  size_t total = 0;
  while (total < kMaxReadPerEvent) {
    // Ask for the rest of the frame being read, or a chunk, whichever is more.
    size_t want = kReadChunk;
    if (c->in.size() >= kLengthBytes) {
      const size_t frame = kLengthBytes + ReadLength(c->in.data());
      if (frame <= options_.frame_limit + kLengthBytes && frame > c->in.size() &&
          frame - c->in.size() > want) {
        want = frame - c->in.size();
      }
    }
    uint8_t* to = c->in.Reserve(want);
    const size_t room = c->in.room();
    const ssize_t n = ::recv(c->fd, to, room, 0);
    if (n > 0) {
      c->in.Commit(static_cast<size_t>(n));
      total += static_cast<size_t>(n);
      if (static_cast<size_t>(n) < room) break;  // drained for now (level-triggered: no EAGAIN)
      continue;
    }
    if (n == 0) {  // the client closed; answer nothing more
      Close(c, nullptr);
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      Close(c, nullptr);
      return;
    }
    break;
  }
  ProcessFrames(c);
}

void EventLoop::ProcessFrames(const std::shared_ptr<Connection>& c) {
  while (!c->closed && c->state == Connection::State::kReady && c->in.size() >= kLengthBytes) {
    const uint32_t length = ReadLength(c->in.data());
    if (length == 0 || length > options_.frame_limit) {
      LOG(WARNING) << "closing connection fd " << c->fd << ": frame of " << length
                   << " bytes (limit " << options_.frame_limit << ")";
      Close(c, nullptr);
      return;
    }
    if (c->in.size() < kLengthBytes + length) break;
    if (RunFrame(c, c->in.data() + kLengthBytes, length, /*may_park=*/true)) {
      c->in.Consume(kLengthBytes + length);
    }
  }
  if (c->closed) return;
  if (c->in.size() == 0) c->in.Trim(options_.idle_buffer_bytes);
  UpdateInterest(c.get());
}

bool EventLoop::RunFrame(const std::shared_ptr<Connection>& c, const uint8_t* frame, size_t size,
                         bool may_park, bool resumed) {
  Parked parked;
  std::string error;
  FrameProcessor::Result r;
  {
    ParkScope parking(may_park && options_.waiters != nullptr, resumed);
    r = processor_.Run(frame, size, &c->out, &parked, &error);
  }
  switch (r) {
    case FrameProcessor::Result::kReplied:
      if (!c->dirty) {
        c->dirty = true;
        dirty_.push_back(c);
      }
      return true;
    case FrameProcessor::Result::kBadRequest:
      LOG(WARNING) << "closing connection fd " << c->fd << ": undecodable request: " << error;
      Close(c, nullptr);
      return true;
    case FrameProcessor::Result::kWouldBlock:
      if (options_.workers == nullptr) {  // no workers: this loop blocks
        BlockingScope blocking(true);
        return RunFrame(c, frame, size, may_park, resumed);
      }
      ToWorker(c, std::string(reinterpret_cast<const char*>(frame), size));
      return true;
    case FrameProcessor::Result::kParked: {
      const uint64_t generation = ++c->generation;
      std::weak_ptr<Connection> weak = c;
      const uint64_t token = options_.waiters->Add(parked.session_id, [this, weak, generation] {
        if (auto conn = weak.lock()) {
          Message m(Message::Kind::kWake);
          m.conn = std::move(conn);
          m.generation = generation;
          Post(std::move(m));
        }
      });
      if (token == 0) return false;  // released meanwhile: run it again now
      c->state = Connection::State::kParked;
      c->held.assign(reinterpret_cast<const char*>(frame), size);
      c->park_id = std::move(parked.session_id);
      c->park_token = token;
      timers_.push(Timer{MonotonicMicros() + int64_t{parked.wait_ms} * 1000, c, generation});
      return true;
    }
  }
  return true;
}

void EventLoop::ToWorker(const std::shared_ptr<Connection>& c, std::string frame) {
  c->state = Connection::State::kAtWorker;
  const uint64_t generation = ++c->generation;
  auto conn = c;
  options_.workers->Submit([this, conn, generation, frame = std::move(frame)]() mutable {
    Message m(Message::Kind::kReply);
    {
      FrameProcessor processor(handler_, options_.frame_limit);
      Parked unused;
      m.result = processor.Run(reinterpret_cast<const uint8_t*>(frame.data()), frame.size(),
                               &m.reply, &unused, &m.error);
    }
    m.conn = std::move(conn);
    m.generation = generation;
    Post(std::move(m));
  });
}

void EventLoop::DrainMailbox() {
  std::vector<Message> messages;
  {
    MutexLock l(&mailbox_mu_);
    messages.swap(mailbox_);
  }
  for (auto& m : messages) {
    if (m.kind == Message::Kind::kAdopt) {
      AddConnection(m.fd);
      continue;
    }
    const std::shared_ptr<Connection>& c = m.conn;
    if (c->closed || c->generation != m.generation) continue;
    if (m.kind == Message::Kind::kReply) {
      if (c->state != Connection::State::kAtWorker) continue;
      if (m.result != FrameProcessor::Result::kReplied) {
        LOG(WARNING) << "closing connection fd " << c->fd << ": request failed on a worker: "
                     << (m.error.empty() ? "unexpected result" : m.error);
        Close(c, nullptr);
        continue;
      }
      c->out.append(m.reply);
      c->held.clear();
      c->state = Connection::State::kReady;
      if (!c->dirty) {
        c->dirty = true;
        dirty_.push_back(c);
      }
      ProcessFrames(c);                                   // frames that came meanwhile
    } else if (c->state == Connection::State::kParked) {  // kWake: its lock was released
      c->park_token = 0;                                  // the waiters have forgotten it
      RunHeld(c, /*may_park=*/true);
    }
  }
}

void EventLoop::RunHeld(const std::shared_ptr<Connection>& c, bool may_park) {
  c->state = Connection::State::kReady;
  const std::string frame = std::move(c->held);
  c->held.clear();
  const auto* data = reinterpret_cast<const uint8_t*>(frame.data());
  while (!RunFrame(c, data, frame.size(), may_park, /*resumed=*/true)) {
  }  // not consumed: the lock went while it was being parked; run it again
  if (!c->closed && c->state == Connection::State::kReady) ProcessFrames(c);
}

void EventLoop::ExpireTimers(int64_t now_us) {
  while (!timers_.empty() && timers_.top().deadline_us <= now_us) {
    Timer t = timers_.top();
    timers_.pop();
    const std::shared_ptr<Connection>& c = t.conn;
    if (c->closed || c->generation != t.generation || c->state != Connection::State::kParked) {
      continue;
    }
    options_.waiters->Remove(c->park_id, c->park_token);
    c->park_token = 0;
    RunHeld(c, /*may_park=*/false);  // answers LOCKED if it still is
  }
}

int EventLoop::WaitTimeoutMs(int64_t now_us) const {
  if (timers_.empty()) return -1;
  const int64_t left = timers_.top().deadline_us - now_us;
  if (left <= 0) return 0;
  return static_cast<int>(std::min<int64_t>((left + 999) / 1000, 60'000));
}

void EventLoop::Flush(const std::shared_ptr<Connection>& c) {
  while (c->out_sent < c->out.size()) {
    const ssize_t n =
        ::send(c->fd, c->out.data() + c->out_sent, c->out.size() - c->out_sent, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    Close(c, nullptr);
    return;
  }
  if (c->out_sent == c->out.size()) {
    c->out_sent = 0;
    c->out.clear();
    if (c->out.capacity() > options_.idle_buffer_bytes) c->out.shrink_to_fit();
  }
  UpdateInterest(c.get());
  // Reading was held back by unsent replies: the frames already read may run now.
  if (c->state == Connection::State::kReady && c->in.size() >= kLengthBytes) ProcessFrames(c);
}

void EventLoop::UpdateInterest(Connection* c) {
  if (c->closed) return;
  const size_t unsent = c->out.size() - c->out_sent;
  uint32_t want = EPOLLRDHUP;
  if (c->state == Connection::State::kReady && unsent <= 2 * options_.frame_limit) want |= EPOLLIN;
  if (unsent > 0 && !c->dirty) want |= EPOLLOUT;
  if (want == c->interest) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.ptr = reinterpret_cast<void*>(static_cast<intptr_t>(c->fd));
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c->fd, &ev) == 0) c->interest = want;
}

void EventLoop::Close(const std::shared_ptr<Connection>& c, const char* why) {
  if (c->closed) return;
  if (why != nullptr) LOG(WARNING) << "closing connection fd " << c->fd << ": " << why;
  if (c->state == Connection::State::kParked && c->park_token != 0) {
    options_.waiters->Remove(c->park_id, c->park_token);
  }
  c->closed = true;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
  ::close(c->fd);
  connections_.erase(c->fd);
  options_.connections->fetch_sub(1);
}

}  // namespace sessionserver
