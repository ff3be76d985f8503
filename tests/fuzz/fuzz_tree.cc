// Fuzz target: anti-entropy's Merkle exchange (TREE payloads): the request
// a peer sends, and the pair lists its replies carry.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "antientropy/tree_messages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  dynamo::TreeRequest req;
  if (dynamo::DecodeTreeRequest(bytes, &req).ok()) {
    dynamo::TreeRequest back;
    if (!dynamo::DecodeTreeRequest(dynamo::EncodeTreeRequest(req), &back).ok() ||
        back.op != req.op || back.partition != req.partition || back.indices != req.indices ||
        back.keys != req.keys) {
      __builtin_trap();
    }
  }
  std::vector<std::pair<std::string, uint64_t>> digests;
  std::vector<std::pair<std::string, std::string>> sets;
  (void)dynamo::ReadPairs(bytes, false, &digests, &sets);
  (void)dynamo::ReadPairs(bytes, true, &digests, &sets);
  return 0;
}
