#include "server/lock_waiters.h"

namespace sessionserver {

LockWaiters::LockWaiters(std::function<bool(std::string_view)> is_locked)
    : is_locked_(std::move(is_locked)) {}

LockWaiters::Shard& LockWaiters::ShardOf(std::string_view id) {
  return shards_[std::hash<std::string_view>()(id) % kShards];
}

uint64_t LockWaiters::Add(const std::string& id, Wake wake) {
  Shard& shard = ShardOf(id);
  MutexLock l(&shard.mu);
  // Counted before the check, so that a Release running after the check sees a waiter.
  count_.fetch_add(1, std::memory_order_seq_cst);
  if (!is_locked_(id)) {
    count_.fetch_sub(1, std::memory_order_relaxed);
    return 0;
  }
  const uint64_t token = next_token_.fetch_add(1, std::memory_order_relaxed);
  shard.waiters[id].emplace_back(token, std::move(wake));
  return token;
}

void LockWaiters::Remove(const std::string& id, uint64_t token) {
  Shard& shard = ShardOf(id);
  MutexLock l(&shard.mu);
  auto it = shard.waiters.find(id);
  if (it == shard.waiters.end()) return;
  auto& list = it->second;
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].first != token) continue;
    list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
    count_.fetch_sub(1, std::memory_order_relaxed);
    break;
  }
  if (list.empty()) shard.waiters.erase(it);
}

void LockWaiters::Release(std::string_view id) {
  // The release itself happened before this call (under the store's segment lock); a waiter
  // that counted itself in before checking the lock is visible here.
  if (count_.load(std::memory_order_seq_cst) == 0) return;
  std::vector<std::pair<uint64_t, Wake>> woken;
  {
    Shard& shard = ShardOf(id);
    MutexLock l(&shard.mu);
    auto it = shard.waiters.find(std::string(id));
    if (it == shard.waiters.end()) return;
    woken = std::move(it->second);
    shard.waiters.erase(it);
    count_.fetch_sub(woken.size(), std::memory_order_relaxed);
  }
  for (auto& [token, wake] : woken) wake();
}

}  // namespace sessionserver
