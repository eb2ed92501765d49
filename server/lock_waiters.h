// LockWaiters: requests parked on a locked session until its lock is released (the server side
// of getWaiting, proto/session.thrift). The serving edge parks a request that found the lock
// held; the session handler calls Release after every request that may have released a lock
// (releaseExclusive, put, remove), which wakes that session's waiters at once, and the edge
// runs their requests again.
//
// No wake-up is lost: Add registers the waiter and then asks whether the session is still
// locked, under the same shard lock that Release takes after the release, so a release either
// finds the waiter or happened before the check (Add then registers nothing and says so).
//
// Thread-safe. Lock order: a shard's mutex, then the store's segment lock (through is_locked);
// wake functions are called with no lock held.
#ifndef SESSIONSERVER_SERVER_LOCK_WAITERS_H_
#define SESSIONSERVER_SERVER_LOCK_WAITERS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "util/mutex.h"

namespace sessionserver {

class LockWaiters {
 public:
  using Wake = std::function<void()>;

  // `is_locked(id)`: whether a request holds the lock of `id` now (SessionStore::IsLocked).
  explicit LockWaiters(std::function<bool(std::string_view)> is_locked);

  // Registers `wake` to be called once when the lock of `id` is released, and returns a token
  // (> 0) for Remove. Returns 0 and registers nothing if `id` is not locked any more: run the
  // request again now.
  uint64_t Add(const std::string& id, Wake wake);

  // Drops the registration `token` of `id` (its wait ended otherwise). No-op if it was woken.
  void Remove(const std::string& id, uint64_t token);

  // Wakes every waiter of `id` (each wake is called once, with no lock held) and forgets them.
  // Cheap when nothing waits anywhere.
  void Release(std::string_view id);

  // Waiters registered now.
  size_t size() const { return count_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    Mutex mu;
    std::unordered_map<std::string, std::vector<std::pair<uint64_t, Wake>>> waiters GUARDED_BY(mu);
  };
  Shard& ShardOf(std::string_view id);

  const std::function<bool(std::string_view)> is_locked_;
  std::array<Shard, kShards> shards_;
  std::atomic<uint64_t> next_token_{1};
  std::atomic<size_t> count_{0};
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_SERVER_LOCK_WAITERS_H_
