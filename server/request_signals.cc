#include "server/request_signals.h"

namespace sessionserver {
namespace {
thread_local bool may_park = false;
thread_local bool resumed = false;
}  // namespace

bool MayPark() { return may_park; }
bool Resumed() { return resumed; }

ParkScope::ParkScope(bool may, bool again) : previous_(may_park), previous_resumed_(resumed) {
  may_park = may;
  resumed = again;
}
ParkScope::~ParkScope() {
  may_park = previous_;
  resumed = previous_resumed_;
}

}  // namespace sessionserver
