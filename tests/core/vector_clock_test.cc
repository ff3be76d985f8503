#include "dynamo/vector_clock.h"

#include <gtest/gtest.h>

#include <random>

namespace dynamo {
namespace {

using Order = VectorClock::Order;

VectorClock Clock(std::initializer_list<std::pair<const char*, uint64_t>> entries) {
  VectorClock c;
  uint64_t ts = 1;
  for (auto [n, v] : entries) c.Set(n, v, ts++);
  return c;
}

TEST(VectorClockTest, EmptyClocksAreEqual) {
  EXPECT_EQ(VectorClock().Compare(VectorClock()), Order::kEqual);
  EXPECT_EQ(VectorClock().Get("a"), 0u);
}

TEST(VectorClockTest, IncrementAdvancesOneNode) {
  VectorClock c;
  c.Increment("a", 10);
  c.Increment("a", 11);
  c.Increment("b", 12);
  EXPECT_EQ(c.Get("a"), 2u);
  EXPECT_EQ(c.Get("b"), 1u);
  EXPECT_EQ(c.Get("c"), 0u);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.entries()[0].timestamp_ms, 11u);
}

TEST(VectorClockTest, CompareBeforeAfterEqualConcurrent) {
  VectorClock a = Clock({{"a", 1}});
  VectorClock ab = Clock({{"a", 1}, {"b", 1}});
  VectorClock a2 = Clock({{"a", 2}});
  EXPECT_EQ(a.Compare(ab), Order::kBefore);
  EXPECT_EQ(ab.Compare(a), Order::kAfter);
  EXPECT_EQ(ab.Compare(Clock({{"b", 1}, {"a", 1}})), Order::kEqual);
  EXPECT_EQ(ab.Compare(a2), Order::kConcurrent);
  EXPECT_EQ(a2.Compare(ab), Order::kConcurrent);
  EXPECT_EQ(VectorClock().Compare(a), Order::kBefore);
}

TEST(VectorClockTest, MergeIsPointwiseMaximum) {
  VectorClock x = Clock({{"a", 3}, {"b", 1}});
  VectorClock y = Clock({{"b", 4}, {"c", 2}});
  x.Merge(y);
  EXPECT_EQ(x.Get("a"), 3u);
  EXPECT_EQ(x.Get("b"), 4u);
  EXPECT_EQ(x.Get("c"), 2u);
  EXPECT_TRUE(x.Descends(y));
  EXPECT_EQ(x.Compare(y), Order::kAfter);
}

TEST(VectorClockTest, MergeLawsHoldOnRandomClocks) {
  std::mt19937 rng(42);
  auto random_clock = [&] {
    VectorClock c;
    for (int i = 0; i < 5; ++i) {
      if (rng() % 2) c.Set(std::string(1, static_cast<char>('a' + i)), rng() % 4 + 1, rng() % 100);
    }
    return c;
  };
  for (int i = 0; i < 500; ++i) {
    VectorClock x = random_clock(), y = random_clock(), z = random_clock();
    VectorClock xy = x;
    xy.Merge(y);
    VectorClock yx = y;
    yx.Merge(x);
    // Commutative in counters, and an upper bound of both.
    EXPECT_EQ(xy.Compare(yx), Order::kEqual);
    EXPECT_TRUE(xy.Descends(x));
    EXPECT_TRUE(xy.Descends(y));
    // Idempotent.
    VectorClock xx = x;
    xx.Merge(x);
    EXPECT_EQ(xx, x);
    // Associative.
    VectorClock l = xy;
    l.Merge(z);
    VectorClock r = y;
    r.Merge(z);
    VectorClock x2 = x;
    x2.Merge(r);
    EXPECT_EQ(l.Compare(x2), Order::kEqual);
    // Compare is antisymmetric.
    Order o = x.Compare(y), p = y.Compare(x);
    if (o == Order::kBefore) {
      EXPECT_EQ(p, Order::kAfter);
    } else if (o == Order::kConcurrent) {
      EXPECT_EQ(p, Order::kConcurrent);
    } else if (o == Order::kEqual) {
      EXPECT_EQ(p, Order::kEqual);
    }
  }
}

TEST(VectorClockTest, TruncateDropsOldestTimestamps) {
  VectorClock c;
  for (int i = 0; i < 12; ++i) c.Set("n" + std::to_string(i), 1, 100 + (11 - i));
  // n11 has the oldest timestamp (100), n10 the next (101).
  EXPECT_EQ(c.Truncate(10), 2u);
  EXPECT_EQ(c.size(), 10u);
  EXPECT_EQ(c.Get("n11"), 0u);
  EXPECT_EQ(c.Get("n10"), 0u);
  EXPECT_EQ(c.Get("n0"), 1u);
  EXPECT_EQ(c.Truncate(10), 0u);
}

TEST(VectorClockTest, FromEntriesSortsAndKeepsLargerDuplicate) {
  VectorClock c = VectorClock::FromEntries({{"b", 1, 1}, {"a", 2, 1}, {"b", 5, 2}});
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c.entries()[0].node, "a");
  EXPECT_EQ(c.Get("b"), 5u);
}

}  // namespace
}  // namespace dynamo
