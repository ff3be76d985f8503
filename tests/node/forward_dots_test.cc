// ForwardDots: the dots a node picks for the writes it forwards.
#include "node/forward_dots.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>

namespace dynamo {
namespace {

TEST(ForwardDotsTest, AKeysDotsCountOnFromOneSoAContextKeepsThemInOneClockEntry) {
  ForwardDots dots(/*first_epoch=*/1000, /*capacity=*/16);
  CausalContext context;
  for (uint64_t i = 1; i <= 50; ++i) {
    const Dot d = dots.Next("n4~a", "cart", context, 7);
    EXPECT_EQ(d.node, "n4~a+f1000");
    EXPECT_EQ(d.counter, i);
    context.Add(d.node, d.counter, d.timestamp_ms);
  }
  EXPECT_EQ(context.clock().size(), 1u);
  EXPECT_TRUE(context.dots().empty());
}

TEST(ForwardDotsTest, ConcurrentWritesOfOneKeyGetDistinctDots) {
  // Two writers with the same (empty) context: never the same dot.
  ForwardDots dots(1, 16);
  const Dot a = dots.Next("n4~a", "k", CausalContext(), 1);
  const Dot b = dots.Next("n4~a", "k", CausalContext(), 1);
  EXPECT_FALSE(a.node == b.node && a.counter == b.counter);
}

TEST(ForwardDotsTest, AKeyTheTableForgotGetsAnActorNeverUsedForIt) {
  ForwardDots dots(1, 2);
  std::set<std::pair<std::string, uint64_t>> seen;
  // Three keys through a table of two, round and round: each eviction
  // moves the epoch on, and no (actor, counter) repeats for a key.
  for (int round = 0; round < 20; ++round) {
    for (const char* key : {"a", "b", "c"}) {
      const Dot d = dots.Next("n4~a", key, CausalContext(), 1);
      EXPECT_TRUE(seen.emplace(std::string(key) + "/" + d.node, d.counter).second)
          << key << " " << d.node << " " << d.counter;
    }
  }
  EXPECT_LE(dots.size(), 2u);
}

TEST(ForwardDotsTest, ACounterStaysAboveWhatAContextCarries) {
  ForwardDots dots(5, 16);
  CausalContext context;
  context.Add("n4~a+f5", 1, 1);
  context.Add("n4~a+f5", 2, 1);
  context.Add("n4~a+f5", 3, 1);
  EXPECT_EQ(dots.Next("n4~a", "k", context, 1).counter, 4u);
}

}  // namespace
}  // namespace dynamo
