// ExpiryReaper: a background thread that reclaims expired sessions a little at a time, so memory
// held by abandoned sessions comes back steadily instead of in a once-a-minute sweep. It only
// schedules work; what is expired is decided by the store's Clock, so tests call
// SessionStore::ReclaimExpired directly with a fake clock instead of running this thread.
//
// Thread-safe. Start once; Stop (or the destructor) joins the thread.
#ifndef SESSIONSERVER_SERVER_EXPIRY_REAPER_H_
#define SESSIONSERVER_SERVER_EXPIRY_REAPER_H_

#include <cstddef>
#include <cstdint>
#include <thread>

#include "storage/session_store.h"
#include "util/periodic_thread.h"

namespace sessionserver {

class ExpiryReaper {
 public:
  // Every `interval_us` of real time, reclaims up to `budget` items; if a round used its whole
  // budget (a wave of expiries), the next round starts at once. Not owned: `store`.
  ExpiryReaper(SessionStore* store, int64_t interval_us, size_t budget);

  void Start() { thread_.Start(); }
  void Stop() { thread_.Stop(); }

 private:
  PeriodicThread thread_;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_SERVER_EXPIRY_REAPER_H_
