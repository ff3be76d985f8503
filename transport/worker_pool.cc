#include "dynamo/transport/worker_pool.h"

namespace dynamo {

WorkerPool::WorkerPool(size_t threads, std::function<void()> thread_init,
                       std::function<void()> thread_exit)
    : init_(std::move(thread_init)), exit_(std::move(thread_exit)) {
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Submit(Job job) {
  {
    std::lock_guard<std::mutex> l(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void WorkerPool::Grow(size_t threads) {
  std::lock_guard<std::mutex> l(mu_);
  if (stopping_) return;
  while (threads_.size() < threads) threads_.emplace_back([this] { Run(); });
}

void WorkerPool::Stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
}

void WorkerPool::Run() {
  if (init_) init_();
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
  if (exit_) exit_();
}

}  // namespace dynamo
