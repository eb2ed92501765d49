// SessionHandler: the Thrift edge of the server. It checks nothing itself: it hands each request
// to the SessionStore, translates Status into the protocol's InvalidRequest, and counts requests.
// Exceptions exist only here, because Thrift-generated code expects them.
//
// On the serving edge's event loops (util/blocking.h, server/request_signals.h) it throws
// WouldBlock, before changing anything, for a request that must wait for I/O (a session not in
// memory; revalidate, locate, info, replicate; any request while draining), and Parked for a
// getWaiting that found the session locked. It wakes parked requests (LockWaiters) when a lock
// is released.
//
// Thread-safe: the edge calls it from many threads at once.
#ifndef SESSIONSERVER_SERVER_SESSION_HANDLER_H_
#define SESSIONSERVER_SERVER_SESSION_HANDLER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>

#include "SessionService.h"
#include "fleet/server_state.h"
#include "server/lock_waiters.h"
#include "storage/backing_store.h"
#include "storage/disk_tier.h"
#include "storage/journal.h"
#include "storage/session_store.h"
#include "storage/write_behind.h"
#include "util/clock.h"
#include "util/mutex.h"

namespace sessionserver {

class SessionHandler : public thrift::SessionServiceIf {
 public:
  // The parts below the store whose counters info() reports; each may be null (not configured).
  struct Parts {
    const DiskTier* disk = nullptr;       // also null if it failed to open
    WriteBehind* write_behind = nullptr;  // also hands sessions off while draining
    const BackingStore* backing_store = nullptr;
    const Journal* journal = nullptr;
    WriteBehind* replicator = nullptr;  // the queue to the other data centre
    LockWaiters* waiters = nullptr;     // requests parked on a lock (getWaiting); may be null
  };

  // None of the pointers is owned; all must outlive the handler. `debug_clock` is null unless
  // the server runs with --enable_debug_clock; it must be the clock the store reads.
  SessionHandler(std::string server_id, SessionStore* store, const Parts& parts, const Clock* clock,
                 OffsetClock* debug_clock);

  void get(thrift::GetResult& result, const std::string& session_id) override;
  void getExclusive(thrift::GetResult& result, const std::string& session_id) override;
  void getWaiting(thrift::GetResult& result, const std::string& session_id, bool exclusive,
                  int32_t wait_ms) override;
  void startSession(thrift::GetResult& result, const std::string& session_id,
                    int32_t timeout_minutes) override;
  thrift::Status::type releaseExclusive(const std::string& session_id,
                                        int64_t lock_cookie) override;
  thrift::Status::type put(const std::string& session_id, const std::string& data,
                           int32_t timeout_minutes, int64_t lock_cookie,
                           bool create_uninitialized) override;
  thrift::Status::type remove(const std::string& session_id, int64_t lock_cookie) override;
  thrift::Status::type resetTimeout(const std::string& session_id) override;
  thrift::Status::type revalidate(const std::string& session_id) override;
  void locate(thrift::Location& result, const std::string& session_id) override;
  void replicate(std::vector<int32_t>& result, const std::vector<thrift::ReplicaOp>& ops,
                 const std::string& origin_dc) override;
  void info(thrift::ServerInfo& result) override;
  void debugAdvanceClock(int64_t millis) override;

  // Sets the identity info() reports (the bound port is known only after the server starts).
  void SetServerId(std::string id) EXCLUDES(id_mu_);
  // Sets the state info() reports (as its text, fleet/server_state.h), from the fleet registry
  // and the heartbeat. In any state but kActive the handler hands sessions off: a request for
  // a session no request here holds the lock of is answered MOVED once the backing store (and,
  // with two data centres, the other site) has every change of it (a session whose changes cannot
  // be written within a second is served here as usual, so a drain never fails a request). Without
  // a backing store nothing is handed off.
  void SetState(fleet::ServerState state) EXCLUDES(id_mu_);
  fleet::ServerState State() const EXCLUDES(id_mu_);

  // The counters info() reports, by name.
  std::map<std::string, int64_t> Counters() const;

 private:
  enum Op {
    kGet,
    kGetExclusive,
    kRelease,
    kPut,
    kRemove,
    kResetTimeout,
    kRevalidate,
    kLocate,
    kReplicate,
    kInfo,
    kGetWaiting,
    kStartSession,
    kOpCount
  };

  void Count(Op op) { requests_[op].fetch_add(1, std::memory_order_relaxed); }
  // Throws InvalidRequest (bad input) or TApplicationException (anything else) if !s.ok().
  void ThrowIfError(const Status& s);
  // ThrowIfError, but a WouldBlock status un-counts `op` and throws WouldBlock (request_signals.h).
  void Check(Op op, const Status& s);
  [[noreturn]] void Yield(Op op);
  // get, getExclusive and getWaiting (counted as `op`).
  void Read(Op op, const std::string& session_id, bool exclusive, thrift::GetResult* result);
  // Wakes the requests parked on the lock of `id` (a request may just have released it).
  void Released(const std::string& id);
  // Moves the read's data into the reply.
  static void FillGetResult(ReadResult&& r, thrift::GetResult* out);
  // Draining: true if the request for `id` is to be answered MOVED (see SetState).
  bool HandOff(const std::string& id);
  // Draining: writes the change just made to `id` through to Redis before the answer.
  void WriteThrough(const std::string& id);

  mutable Mutex id_mu_;
  std::string server_id_ GUARDED_BY(id_mu_);
  fleet::ServerState state_ GUARDED_BY(id_mu_) = fleet::ServerState::kActive;
  SessionStore* const store_;
  const Parts parts_;
  const Clock* const clock_;
  OffsetClock* const debug_clock_;
  const int64_t start_us_;
  std::array<std::atomic<uint64_t>, kOpCount> requests_{};
  std::atomic<uint64_t> invalid_requests_{0};
  std::atomic<bool> handing_off_{false};
  std::atomic<int64_t> handoff_paused_until_us_{0};  // after a flush timed out (Redis slow)
  std::atomic<uint64_t> handoffs_{0}, handoff_timeouts_{0}, handoff_replication_timeouts_{0},
      revalidations_{0}, revalidate_errors_{0};
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_SERVER_SESSION_HANDLER_H_
