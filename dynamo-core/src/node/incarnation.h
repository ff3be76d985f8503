// Incarnation: the name a node's new versions carry in their dots
// (docs/design.md, "A node's dots after a restart").
//
// A coordinator picks a dot counter above any of its own that the key's
// versions mention. A node that lost what it wrote (a memory engine
// restarted, a disk that lost unsynced pages at a power cut, a wiped data
// folder) would pick counters it handed out before, and its new write would
// look like the old event that other replicas already saw superseded: they
// would drop it, acknowledged or not. So the dots of a node are named
// `<node-id>~<start time, ms, base 36>`, a name no earlier run used, unless
// the previous run stopped cleanly (its engine synced and closed) on a
// durable engine: then nothing was lost and the name is kept, so clocks do
// not grow with clean restarts.
//
// The same holds for a key a node handed off and dropped (partition
// transfer): if the key comes back to it, counting on from what it then holds
// could repeat its old dots. So a node takes a new name before it drops
// handed-off keys (Rename).
//
// On disk: <data-dir>/incarnation, one line "<name> running" while the node
// runs, "<name> clean" after a clean stop; replaced atomically.
#pragma once

#include <cstdint>
#include <string>

#include "dynamo/status.h"

namespace dynamo {

class Incarnation {
 public:
  // Reads <data_dir>/incarnation, picks the name for this run and records
  // it as running (fsync'ed) before the node takes any write.
  static Result<std::string> Begin(const std::string& data_dir, const std::string& node_id,
                                   bool durable_engine, uint64_t wall_ms);
  // A new name for node_id, different from `previous`.
  static std::string Rename(const std::string& node_id, uint64_t wall_ms,
                            const std::string& previous);
  // Records a clean stop of the run named `name`: call once the engine has
  // synced and nothing more will be written.
  static Status End(const std::string& data_dir, const std::string& name);
};

}  // namespace dynamo
