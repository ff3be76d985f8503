// MerkleTree: one partition's hash tree for anti-entropy (paper 4.7).
//
// The tree covers (key, digest of the key's version set) for every key a
// node holds in one partition. Leaves cut the partition's key-hash range
// into kLeaves equal slices; a leaf's hash combines its keys' entries
// (order-free, so an update is O(1): the old entry is taken out, the new
// one put in); inner nodes hash their kFanout children and are recomputed
// lazily, only where a leaf below changed. Replicas compare root, then the
// children of differing nodes, then the keys of differing leaves, and
// exchange only those keys.
//
// Pure value type: no I/O, no locks (the owner serialises access).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dynamo/key_hash.h"

namespace dynamo {

class MerkleTree {
 public:
  static constexpr uint32_t kFanout = 16;
  static constexpr uint32_t kInner = kFanout;             // level 1
  static constexpr uint32_t kLeaves = kFanout * kFanout;  // level 2

  explicit MerkleTree(HashRange range);

  // Records key's digest; 0 removes the key. key_hash must lie in the range.
  void Set(std::string_view key, uint64_t key_hash, uint64_t digest);
  // As Set, unless the key is already recorded (a scan filling a tree that
  // writes already update: the write is newer than what the scan read).
  void SetIfAbsent(std::string_view key, uint64_t key_hash, uint64_t digest);

  uint32_t LeafOf(uint64_t key_hash) const;
  uint64_t Root();
  uint64_t Inner(uint32_t i);  // i < kInner
  uint64_t Leaf(uint32_t i) const { return leaves_[i]; }
  // The (key, digest) entries under leaf i, sorted by key.
  std::vector<std::pair<std::string, uint64_t>> Entries(uint32_t leaf) const;
  // The inclusive key-hash range of leaf i.
  HashRange LeafRange(uint32_t leaf) const;
  size_t size() const { return size_; }

 private:
  static uint64_t EntryHash(uint64_t key_hash, uint64_t digest);
  HashRange range_;
  std::vector<std::unordered_map<std::string, uint64_t>> entries_;  // per leaf
  std::vector<uint64_t> leaves_;
  std::vector<uint64_t> inner_;
  std::vector<bool> inner_dirty_;
  uint64_t root_ = 0;
  bool root_dirty_ = true;
  size_t size_ = 0;
};

}  // namespace dynamo
