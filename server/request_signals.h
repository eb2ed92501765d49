// How the session handler tells the serving edge that a request cannot be answered where it
// runs. Both are thrown through the generated Thrift processor (they do not derive from
// std::exception, so its catch-all, which turns handler errors into error replies, lets them
// pass) before anything is written to the reply, and nothing has changed.
//
//   WouldBlock: the request needs I/O and the thread may not block (util/blocking.h). The edge
//   runs the same frame again on a worker thread.
//   Parked: a get that found the session locked, on a thread that may park (ParkScope(true)), with
//   a wait from the client. The edge keeps the frame and runs it again when the lock of
//   `session_id` is released (server/lock_waiters.h), or, after `wait_ms`, once more outside
//   any ParkScope (which answers LOCKED if it is still locked).
#ifndef SESSIONSERVER_SERVER_REQUEST_SIGNALS_H_
#define SESSIONSERVER_SERVER_REQUEST_SIGNALS_H_

#include <cstdint>
#include <string>

namespace sessionserver {

struct WouldBlock {};

struct Parked {
  std::string session_id;
  int32_t wait_ms = 0;
};

// Whether the calling thread may park a request (false by default).
bool MayPark();

// Whether the request running on the calling thread was parked before (it runs again).
bool Resumed();

// Sets whether the calling thread may park requests, and whether the request it runs was parked
// before, for the scope's lifetime. Scopes nest.
class ParkScope {
 public:
  explicit ParkScope(bool may_park, bool resumed = false);
  ~ParkScope();
  ParkScope(const ParkScope&) = delete;
  ParkScope& operator=(const ParkScope&) = delete;

 private:
  const bool previous_, previous_resumed_;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_SERVER_REQUEST_SIGNALS_H_
