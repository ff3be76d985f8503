// The cluster simulator: a whole cluster of real nodes (every actor, a real
// engine plugin, real hint stores and state files) in one process, on one
// SimNetwork, through a random schedule of faults and client operations
// drawn from one seed; then every node is healed and the run is checked
// (docs/testing.md, "The simulator").
//
// One seed, one run: the same seed and options replay the same run, event
// for event (Outcome::digest tells). What a seed draws: the number of
// nodes, the message faults (loss, duplication, delays), whether
// anti-entropy runs, and a schedule of partitions (both ways and one way),
// pauses, crashes and restarts, joins, leaves and removes, while clients
// read and write a few keys through random nodes.
//
// The checks, after the faults are healed and the cluster has settled:
//  - no acknowledged write is lost: each is present on the replicas, or was
//    read by a client whose later write (present, or itself superseded)
//    replaced it;
//  - siblings, in any read and in the final state, are only writes that
//    were truly concurrent (neither was written by a client that had read
//    the other), and a write is never two siblings;
//  - the replicas of every key hold the same versions, and a read at R=N
//    returns them;
//  - no hint, transfer or anti-entropy exchange is stuck;
//  - every member has the same ring, and its members are the expected ones.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dynamo::sim {

struct Config {
  uint64_t seed = 1;
  std::string engine = "memory";  // "memory" or "file"
  std::string plugin_dir;         // where memory.so and file.so are
  std::string work_dir;           // the run's folders go under it (default: $TMPDIR or /tmp)
  bool verbose = false;           // every fault and client operation to stderr
  bool debug_log = false;         // and the nodes' debug log, tagged with their ports
  std::string trace;              // a written value: log each change of the nodes holding it
};

struct Outcome {
  bool ok() const { return failures.empty(); }
  std::vector<std::string> failures;  // one line each
  std::string profile;                // what the seed drew, one line
  uint64_t digest = 0;                // of everything that happened: equal runs, equal digests
  uint64_t puts_acked = 0, puts_failed = 0, gets_ok = 0, gets_failed = 0;
  uint64_t faults = 0;  // fault actions taken, of which:
  uint64_t partitions = 0, isolations = 0, heals = 0, pauses = 0, crashes = 0, power_losses = 0,
           joins = 0, leaves = 0, removes = 0;
  uint64_t messages_lost = 0, messages_duplicated = 0;
  uint64_t events = 0;      // simulator events run
  double virtual_secs = 0;  // simulated time the run took
};

// Runs one seed. Never throws for a failed check; errors of the simulator
// itself (cannot create its folder) are failures too.
Outcome Run(const Config& config);

// The command that replays a run.
std::string ReplayCommand(const Config& config);

}  // namespace dynamo::sim
