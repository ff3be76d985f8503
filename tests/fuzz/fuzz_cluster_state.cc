// Fuzz target: a cluster state from a peer's GOSSIP (or the node's own
// cluster.state file), and a ring. What decodes encodes and decodes alike.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dynamo/membership.h"
#include "dynamo/ring.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto state = dynamo::ClusterState::Decode(bytes); state.ok()) {
    auto again = dynamo::ClusterState::Decode(state->Encode());
    if (!again.ok() || !(again->ring() == state->ring())) __builtin_trap();
  }
  if (auto ring = dynamo::Ring::Decode(bytes); ring.ok()) {
    auto again = dynamo::Ring::Decode(ring->Encode());
    if (!again.ok() || !(*again == *ring)) __builtin_trap();
    if (ring->partitions() > 0 && !ring->empty()) (void)ring->PreferenceList(0);
  }
  return 0;
}
