#include "server/worker_pool.h"

#include <utility>

namespace sessionserver {

WorkerPool::WorkerPool(size_t threads) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Submit(std::function<void()> task) {
  MutexLock l(&mu_);
  if (stopping_) return;
  tasks_.push_back(std::move(task));
  cv_.SignalAll();
}

void WorkerPool::Stop() {
  {
    MutexLock l(&mu_);
    stopping_ = true;
    tasks_.clear();
    cv_.SignalAll();
  }
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void WorkerPool::Run() {
  while (true) {
    std::function<void()> task;
    {
      MutexLock l(&mu_);
      while (tasks_.empty() && !stopping_) cv_.WaitFor(&mu_, 1'000'000);
      if (stopping_) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace sessionserver
