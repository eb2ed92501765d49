// EventLoop: one thread of the serving edge. It owns the connections handed to it and runs each
// request to completion on its own thread: it reads whatever bytes a connection has, runs every
// complete frame through the generated processor in place (pipelined frames included), journals
// the changes of everything it ran in one append (storage/commit_group.h), and then writes each
// connection's replies with one send.
//
// What it does not run itself (request_signals.h):
//   - a request that would block (its session must be read from disk, the journal or Redis; or
//     a drain's flush) goes to the WorkerPool; its reply comes back through the mailbox;
//   - a getWaiting that finds the session locked is parked in LockWaiters and run again when the
//     lock is released, or, at the end of its wait, once more to answer LOCKED.
// Meanwhile that connection is not read, so its requests are answered in order.
//
// Bounds: a frame longer than frame_limit (or of length <= 0) closes its connection; a
// connection with more than 2 * frame_limit of replies unsent is not read until they drain;
// buffers shrink back to idle_buffer_bytes between requests.
//
// Thread-safe: Adopt, Post* may be called from any thread; Start and Stop from one owner.
#ifndef SESSIONSERVER_SERVER_EVENT_LOOP_H_
#define SESSIONSERVER_SERVER_EVENT_LOOP_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "SessionService.h"
#include "server/frame_processor.h"
#include "util/mutex.h"
#include "util/status.h"

namespace sessionserver {

class LockWaiters;
class WorkerPool;

struct EventLoopOptions {
  size_t frame_limit = 0;  // REQUIRES > 0
  size_t idle_buffer_bytes = 16 << 10;
  size_t max_connections = 10'000;             // across all loops (shared counter below)
  std::atomic<size_t>* connections = nullptr;  // REQUIRED: open connections of all loops
  WorkerPool* workers = nullptr;               // null: blocking requests run on the loop
  LockWaiters* waiters = nullptr;              // null: getWaiting answers at once
  // The loop that accepts: called with each accepted socket to hand it to a loop (maybe this
  // one). Only for the loop given a listening socket.
  std::function<void(int fd)> dispatch;
};

class EventLoop {
 public:
  EventLoop(const EventLoopOptions& options, std::shared_ptr<thrift::SessionServiceIf> handler);
  ~EventLoop();  // REQUIRES: stopped (or never started)
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Creates the epoll set; `listen_fd` (>= 0: this loop accepts; not owned) joins it.
  Status Init(int listen_fd);
  void Start();
  // Stops the thread and closes every connection. Replies still arriving are dropped.
  void Stop();

  // Hands an accepted socket to this loop (which then owns it).
  void Adopt(int fd);

  struct Connection;

 private:
  struct Message;
  struct Timer {
    int64_t deadline_us;
    std::shared_ptr<Connection> conn;
    uint64_t generation;
    bool operator>(const Timer& o) const { return deadline_us > o.deadline_us; }
  };

  void Run();
  void Post(Message m) EXCLUDES(mailbox_mu_);
  void DrainMailbox() EXCLUDES(mailbox_mu_);
  void AcceptAll();
  void AddConnection(int fd);
  void OnReadable(const std::shared_ptr<Connection>& c);
  // Runs the complete frames buffered on `c` while it is ready for them.
  void ProcessFrames(const std::shared_ptr<Connection>& c);
  // Runs one frame (whole, in c's input buffer); returns false if it was not consumed (run it
  // again: its lock went while it was being parked).
  // `resumed`: it was parked before (getWaiting then reports that it waited).
  bool RunFrame(const std::shared_ptr<Connection>& c, const uint8_t* frame, size_t size,
                bool may_park, bool resumed = false);
  void ToWorker(const std::shared_ptr<Connection>& c, std::string frame);
  // Runs the frame c holds (parked) again, then the frames that came meanwhile.
  void RunHeld(const std::shared_ptr<Connection>& c, bool may_park);
  void ExpireTimers(int64_t now_us);
  int WaitTimeoutMs(int64_t now_us) const;
  void Flush(const std::shared_ptr<Connection>& c);
  void UpdateInterest(Connection* c);
  void Close(const std::shared_ptr<Connection>& c, const char* why);

  const EventLoopOptions options_;
  std::shared_ptr<thrift::SessionServiceIf> handler_;
  FrameProcessor processor_;  // loop thread only
  int epoll_fd_ = -1;
  int wake_fd_ = -1;    // eventfd: the mailbox has messages, or Stop
  int listen_fd_ = -1;  // not owned
  std::thread thread_;
  std::atomic<bool> stopping_{false};

  // Loop thread only.
  std::unordered_map<int, std::shared_ptr<Connection>> connections_;
  std::vector<std::shared_ptr<Connection>> dirty_;  // replies to send this iteration
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;

  Mutex mailbox_mu_;
  std::vector<Message> mailbox_ GUARDED_BY(mailbox_mu_);
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_SERVER_EVENT_LOOP_H_
