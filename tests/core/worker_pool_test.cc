#include "dynamo/transport/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace dynamo {
namespace {

TEST(WorkerPoolTest, RunsEveryQueuedJobBeforeStopReturns) {
  std::atomic<int> done{0}, inits{0}, exits{0};
  {
    WorkerPool pool(
        4, [&] { ++inits; }, [&] { ++exits; });
    for (int i = 0; i < 1000; ++i) pool.Submit([&] { ++done; });
    pool.Stop();
    EXPECT_EQ(done.load(), 1000);
    pool.Stop();  // idempotent
  }
  EXPECT_EQ(inits.load(), 4);
  EXPECT_EQ(exits.load(), 4);
}

TEST(WorkerPoolTest, GrowAddsThreadsThatTakeJobsAndNeverShrinks) {
  std::atomic<int> done{0}, inits{0}, exits{0};
  WorkerPool pool(
      1, [&] { ++inits; }, [&] { ++exits; });
  EXPECT_EQ(pool.size(), 1u);
  pool.Grow(3);
  EXPECT_EQ(pool.size(), 3u);
  pool.Grow(2);  // fewer: no change
  EXPECT_EQ(pool.size(), 3u);
  // Three jobs that each wait until all three run at once: only three
  // threads can run them.
  std::atomic<int> running{0};
  for (int i = 0; i < 3; ++i) {
    pool.Submit([&] {
      ++running;
      while (running.load() < 3) std::this_thread::yield();
      ++done;
    });
  }
  pool.Stop();
  EXPECT_EQ(done.load(), 3);
  EXPECT_EQ(inits.load(), 3);
  EXPECT_EQ(exits.load(), 3);
  pool.Grow(5);  // once stopped: nothing
  EXPECT_EQ(pool.size(), 0u);
}

}  // namespace
}  // namespace dynamo
