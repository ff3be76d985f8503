// Fuzz target: an encoded sibling set (REPLICA_PUT payloads, transfers,
// hints, what an engine stores). A set that decodes encodes and decodes to
// an equal set, and merging it into itself changes nothing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dynamo/versioning.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto set = dynamo::SiblingSet::Decode(bytes);
  if (!set.ok()) return 0;
  (void)set->LiveValues();
  (void)set->IsDeleted();
  (void)set->Digest();
  const dynamo::CausalContext context = set->Context();
  auto again = dynamo::SiblingSet::Decode(set->Encode());
  if (!again.ok() || !(*again == *set)) __builtin_trap();
  dynamo::SiblingSet merged = *set;
  if (merged.Merge(*set)) __builtin_trap();
  (void)context;
  return 0;
}
