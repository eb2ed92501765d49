#include "server/expiry_reaper.h"

namespace sessionserver {

ExpiryReaper::ExpiryReaper(SessionStore* store, int64_t interval_us, size_t budget)
    : thread_(interval_us, [store, budget] { return store->ReclaimExpired(budget) >= budget; }) {}

}  // namespace sessionserver
