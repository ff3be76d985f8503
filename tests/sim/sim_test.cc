// The cluster simulator under ctest (docs/testing.md, "The simulator"):
// a fixed range of seeds on both engines, exact replay, the seeds that found
// bugs, and a check that the schedules really cause every kind of fault.
#include <string>

#include "gtest/gtest.h"
#include "simulation.h"

namespace dynamo::sim {
namespace {

Config ConfigFor(uint64_t seed, const std::string& engine) {
  Config c;
  c.seed = seed;
  c.engine = engine;
  c.plugin_dir = DYNAMO_TEST_PLUGIN_DIR;
  return c;
}

std::string Report(const Config& c, const Outcome& out) {
  std::string r = out.profile + "\n";
  for (const auto& f : out.failures) r += "  " + f + "\n";
  return r + "  replay: " + ReplayCommand(c) + "\n";
}

// Seeds 1 to 1,000 on each engine, 100 per test so ctest runs them side by
// side.
constexpr int kSeedsPerTest = 100;
class SeedRange : public ::testing::TestWithParam<int> {};

TEST_P(SeedRange, EveryCheckHolds) {
  const uint64_t first = 1 + static_cast<uint64_t>(GetParam()) * kSeedsPerTest;
  for (uint64_t seed = first; seed < first + kSeedsPerTest; ++seed) {
    for (const char* engine : {"memory", "file"}) {
      const Config c = ConfigFor(seed, engine);
      const Outcome out = sim::Run(c);
      EXPECT_TRUE(out.ok()) << Report(c, out);
      EXPECT_GT(out.puts_acked, 0u) << out.profile;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, SeedRange, ::testing::Range(0, 10));

TEST(Simulator, ASeedReplaysExactly) {
  for (const char* engine : {"memory", "file"}) {
    const Outcome a = sim::Run(ConfigFor(7, engine));
    const Outcome b = sim::Run(ConfigFor(7, engine));
    const Outcome other = sim::Run(ConfigFor(8, engine));
    EXPECT_EQ(a.digest, b.digest) << engine;
    EXPECT_EQ(a.events, b.events) << engine;
    EXPECT_EQ(a.puts_acked, b.puts_acked) << engine;
    EXPECT_NE(a.digest, other.digest) << engine;
  }
}

// Over the first 100 seeds, the schedules cause every fault the simulator
// knows, and clients see both successes and failures.
TEST(Simulator, SchedulesCauseEveryKindOfFault) {
  Outcome sum;
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    for (const char* engine : {"memory", "file"}) {
      const Outcome o = sim::Run(ConfigFor(seed, engine));
      sum.partitions += o.partitions;
      sum.isolations += o.isolations;
      sum.heals += o.heals;
      sum.pauses += o.pauses;
      sum.crashes += o.crashes;
      sum.power_losses += o.power_losses;
      sum.joins += o.joins;
      sum.leaves += o.leaves;
      sum.removes += o.removes;
      sum.messages_lost += o.messages_lost;
      sum.messages_duplicated += o.messages_duplicated;
      sum.puts_acked += o.puts_acked;
      sum.puts_failed += o.puts_failed;
      sum.gets_ok += o.gets_ok;
      sum.gets_failed += o.gets_failed;
    }
  }
  EXPECT_GT(sum.partitions, 0u);
  EXPECT_GT(sum.isolations, 0u);
  EXPECT_GT(sum.heals, 0u);
  EXPECT_GT(sum.pauses, 0u);
  EXPECT_GT(sum.crashes, 0u);
  EXPECT_GT(sum.power_losses, 0u);
  EXPECT_GT(sum.joins, 0u);
  EXPECT_GT(sum.leaves, 0u);
  EXPECT_GT(sum.removes, 0u);
  EXPECT_GT(sum.messages_lost, 0u);
  EXPECT_GT(sum.messages_duplicated, 0u);
  EXPECT_GT(sum.puts_acked, 0u);
  EXPECT_GT(sum.puts_failed, 0u);
  EXPECT_GT(sum.gets_ok, 0u);
  EXPECT_GT(sum.gets_failed, 0u);
}

// The seeds that found bugs, each with the bug (docs/testing.md). Each
// replays the run that failed before the fix.
struct Regression {
  uint64_t seed;
  const char* engine;
  const char* bug;
};

TEST(Simulator, SeedsThatFoundBugsPass) {
  const Regression regressions[] = {
      {2, "memory",
       "a forwarded write whose replica answered too late was coordinated again by the next "
       "replica: one write, two siblings"},
      {28, "memory",
       "a restarted memory node counted its dots from 1 again: its next write looked like one "
       "the other replicas had seen superseded, and they dropped it"},
      {11, "memory",
       "a node that had handed off and dropped a key counted its dots from what it then held: "
       "a later write of it through that node was dropped"},
      {393, "memory",
       "a node's stand-in dots and its dots as a replica shared one name, and their counters "
       "met: a write was dropped as one already superseded"},
      {2210, "memory",
       "a leaving node handed a hint to the key's other replicas, which already held the write: "
       "one copy fewer, and a crash of the one left lost it"},
      {790, "file",
       "a node that had left took a partition handed to it on an older ring, and kept it: the "
       "write was nowhere else"},
  };
  for (const Regression& r : regressions) {
    const Config c = ConfigFor(r.seed, r.engine);
    const Outcome out = sim::Run(c);
    EXPECT_TRUE(out.ok()) << r.bug << "\n" << Report(c, out);
  }
}

}  // namespace
}  // namespace dynamo::sim
