// WorkerPool: threads that run the requests an event loop may not (they block on a disk or
// Redis read, or wait for a drain's flush). Tasks run in submission order as threads free up.
//
// Thread-safe. Stop (or the destructor) drops tasks not yet started and joins the threads after
// their running tasks finish.
#ifndef SESSIONSERVER_SERVER_WORKER_POOL_H_
#define SESSIONSERVER_SERVER_WORKER_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "util/mutex.h"

namespace sessionserver {

class WorkerPool {
 public:
  explicit WorkerPool(size_t threads);  // REQUIRES threads > 0
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Submit(std::function<void()> task) EXCLUDES(mu_);
  void Stop() EXCLUDES(mu_);

 private:
  void Run() EXCLUDES(mu_);

  Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> tasks_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_SERVER_WORKER_POOL_H_
