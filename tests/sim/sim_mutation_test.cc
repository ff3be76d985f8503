// Built against a node with one deliberate bug (DYNAMO_MUTATION, see
// tests/sim/CMakeLists.txt): some seed of the simulator must catch it.
// This is what shows the checks can fail.
#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "simulation.h"

namespace dynamo::sim {
namespace {

// Seeds tried at most before the bug counts as missed.
constexpr uint64_t kMaxSeeds = 500;

TEST(SimulatorMutation, SomeSeedCatchesTheBug) {
  for (uint64_t seed = 1; seed <= kMaxSeeds; ++seed) {
    for (const char* engine : {"memory", "file"}) {
      Config c;
      c.seed = seed;
      c.engine = engine;
      c.plugin_dir = DYNAMO_TEST_PLUGIN_DIR;
      const Outcome out = sim::Run(c);
      if (!out.ok()) {
        std::printf("%s caught by %s: %s\n", DYNAMO_MUTATION, out.profile.c_str(),
                    out.failures.front().c_str());
        return;
      }
    }
  }
  FAIL() << "no seed of 1.." << kMaxSeeds << " caught the mutation " << DYNAMO_MUTATION;
}

}  // namespace
}  // namespace dynamo::sim
