// Shutdown signals for the project's binaries: SIGTERM and SIGINT are blocked in the calling
// thread (and so in every thread it starts later) and received only by WaitForShutdownSignal;
// SIGPIPE is ignored (a peer closing a socket is an I/O error, not a reason to die).
#ifndef SESSIONSERVER_UTIL_SHUTDOWN_SIGNALS_H_
#define SESSIONSERVER_UTIL_SHUTDOWN_SIGNALS_H_

#include <signal.h>

namespace sessionserver {

// Call from main before starting any thread. Returns the set to wait on.
sigset_t BlockShutdownSignals();

// Blocks until one of `set` arrives; returns its number.
int WaitForShutdownSignal(const sigset_t& set);

}  // namespace sessionserver

#endif  // SESSIONSERVER_UTIL_SHUTDOWN_SIGNALS_H_
