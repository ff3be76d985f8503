// WorkerPool: threads that run blocking engine calls off the network loop.
//
// Jobs are queued FIFO; Stop() lets queued jobs finish, then joins. Submit()
// is thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dynamo {

class WorkerPool {
 public:
  using Job = std::function<void()>;
  // thread_init runs once at the start of each worker thread (e.g. to open
  // its per-thread sockets); thread_exit at its end.
  WorkerPool(size_t threads, std::function<void()> thread_init, std::function<void()> thread_exit);
  ~WorkerPool();
  void Submit(Job job);
  // Adds threads until there are `threads` (never removes any); nothing
  // once stopping.
  void Grow(size_t threads);
  size_t size() const {
    std::lock_guard<std::mutex> l(mu_);
    return threads_.size();
  }
  // Finishes queued jobs and joins the threads. Idempotent.
  void Stop();

 private:
  void Run();
  std::function<void()> init_, exit_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;             // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  std::vector<std::thread> threads_;  // guarded by mu_
};

}  // namespace dynamo
