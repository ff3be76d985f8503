// The payloads of TREE requests and replies (anti-entropy, paper 4.7): a
// pure codec, apart from the actor that uses it (anti_entropy.h), so it is
// tested and fuzzed alone.
//
// TREE payloads (msgpack), request [op, partition, ring_version, items]:
//   op 1 root:    items []              -> [root, [inner hash x kInner]]
//   op 2 leaves:  items [inner index..] -> [[leaf hash x kFanout] per index]
//   op 3 entries: items [leaf index..]  -> [[key, digest], ...]
//   op 4 fetch:   items [key..]         -> [[key, siblings (empty: none)], ...]
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dynamo/status.h"
#include "dynamo/transport/message.h"
#include "dynamo/msgpack_io.h"

namespace dynamo {

enum TreeOp : uint32_t { kOpRoot = 1, kOpLeaves = 2, kOpEntries = 3, kOpFetch = 4 };
// Keys one exchange repairs at most, and bytes one message carries at most
// (about: one set may pass it); the rest waits for the next exchange.
constexpr size_t kMaxKeysPerExchange = 256;
constexpr size_t kMaxBytesPerMessage = 8u << 20;
// Nesting depth a TREE payload may have.
constexpr size_t kMaxTreeDepth = 8;

struct TreeRequest {
  uint32_t op = 0;
  uint32_t partition = 0;
  uint64_t ring_version = 0;
  std::vector<uint32_t> indices;  // ops 2, 3
  std::vector<std::string> keys;  // op 4
};

std::string EncodeTreeRequest(const TreeRequest& r);
// InvalidArgument("malformed tree exchange") for anything but a well-formed
// request within the limits; indices come back sorted, each once.
Status DecodeTreeRequest(std::string_view bytes, TreeRequest* r);

// Reply payloads are arrays; these read them back.
bool ReadU64Array(const msgpack::object& o, std::vector<uint64_t>* out);
// [[key, digest]...] (digests) or [[key, bytes]...] (sets, second_is_bytes).
bool ReadPairs(std::string_view bytes, bool second_is_bytes,
               std::vector<std::pair<std::string, uint64_t>>* digests,
               std::vector<std::pair<std::string, std::string>>* sets);
wire::Reply TreeReply(uint64_t id, const msgpack::sbuffer& buf);

}  // namespace dynamo
