// Key positions on the ring (paper 4.2): MD5(key) read as a big-endian
// 128-bit number. Engines index keys by the top 64 bits (KeyHash), which is
// enough to select any partition when Q <= 2^64.
#pragma once

#include <cstdint>
#include <string_view>

namespace dynamo {

// Top 64 bits of MD5(key), big-endian.
uint64_t KeyHash(std::string_view key);

// Inclusive range of KeyHash values that partition p of q (a power of two)
// covers: the partition of a key is the top log2(q) bits of its position.
struct HashRange {
  uint64_t lo;
  uint64_t hi;
};
HashRange PartitionHashRange(uint32_t partition, uint32_t q);
uint32_t PartitionOf(uint64_t key_hash, uint32_t q);

}  // namespace dynamo
