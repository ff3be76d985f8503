#include "dynamo/transport/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>

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

}  // namespace
}  // namespace dynamo
