// Whether the calling thread may block on I/O. The serving edge's event-loop threads must not: a
// request whose item is not in memory (it is on disk, in the journal or in Redis) would stall
// every other connection of the loop. They run requests inside a BlockingScope(false); code that
// would read a lower tier checks MayBlock() first and, if it may not, returns Status::WouldBlock
// having changed nothing, and the edge runs the request again on a worker thread, which may block.
//
// Every other thread (workers, background threads, tests) may block: that is the default.
// Thread-safe: the flag is per thread.
#ifndef SESSIONSERVER_UTIL_BLOCKING_H_
#define SESSIONSERVER_UTIL_BLOCKING_H_

namespace sessionserver {

// False inside a BlockingScope(false) on this thread (innermost scope wins).
bool MayBlock();

// Sets whether the calling thread may block, for the scope's lifetime. Scopes nest.
class BlockingScope {
 public:
  explicit BlockingScope(bool may_block);
  ~BlockingScope();
  BlockingScope(const BlockingScope&) = delete;
  BlockingScope& operator=(const BlockingScope&) = delete;

 private:
  const bool previous_;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_UTIL_BLOCKING_H_
