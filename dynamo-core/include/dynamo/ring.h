// Ring: partition ownership and preference lists (paper 4.2, 4.3, and
// 6.2 strategy 3: Q equal partitions, each owned by one physical node).
//
// A pure value type: no I/O, no clocks, no threads. Not thread-safe; callers
// that share one copy it or guard it. Every operation is deterministic, so
// nodes that apply the same changes to the same ring agree without talking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dynamo/status.h"

namespace dynamo {

// Q equal partitions (Q a power of two); partition p is owned by one node; a
// key's partition is PartitionOf(KeyHash(key), Q) (key_hash.h).
class Ring {
 public:
  // Largest Q accepted by Create and Decode.
  static constexpr uint32_t kMaxPartitions = 65536;
  // Longest node name accepted by Join and Decode.
  static constexpr size_t kMaxNodeName = 1024;

  Ring() = default;  // empty: no partitions, no nodes

  // Q partitions, all owned by `first`; replicas = N; version 1.
  // REQUIRES: partitions a power of two <= kMaxPartitions, replicas >= 1,
  // first non-empty and at most kMaxNodeName bytes; otherwise the result is
  // an empty ring.
  static Ring Create(uint32_t partitions, uint32_t replicas, const std::string& first);

  uint32_t partitions() const { return static_cast<uint32_t>(owners_.size()); }  // Q
  uint32_t replicas() const { return replicas_; }                                // N
  // Bumped by every Join/Leave that changes ownership.
  uint64_t version() const { return version_; }
  bool empty() const { return owners_.empty(); }

  // Distinct nodes owning at least one partition, sorted.
  std::vector<std::string> nodes() const { return names_; }
  size_t node_count() const { return names_.size(); }
  bool Contains(const std::string& node) const;
  // Owner of partition; an empty string when partition >= partitions().
  const std::string& Owner(uint32_t partition) const;
  // Via KeyHash + PartitionOf; 0 for an empty ring.
  uint32_t PartitionForKey(std::string_view key) const;
  // How many partitions node owns (0 when absent).
  size_t OwnedBy(const std::string& node) const;

  // Preference list of a partition: its owner, then the next distinct nodes
  // clockwise (partition p+1, p+2, ... wrapping), N in all; fewer when the
  // ring has fewer than N nodes (never the same node twice). Empty when
  // partition >= partitions().
  std::vector<std::string> PreferenceList(uint32_t partition) const;
  // Every distinct node in that clockwise order (the first N are the
  // preference list): the extended list for sloppy quorum (paper 4.6).
  std::vector<std::string> ExtendedPreferenceList(uint32_t partition) const;

  // Adds node: it takes partitions from the most loaded nodes until ownership
  // is balanced (max-min <= 1); only partitions moving to the new node change
  // owner. Returns false and changes nothing when node is already present,
  // the ring is empty, node is empty or longer than kMaxNodeName, or every
  // partition already has a node of its own (S == Q). Deterministic.
  bool Join(const std::string& node);
  // Removes node, giving its partitions to the least loaded remaining nodes,
  // one at a time, so the result is balanced; only the leaver's partitions
  // change owner. Returns false and changes nothing when node is absent or
  // is the last node. Deterministic.
  bool Leave(const std::string& node);

  // msgpack [format=1, version, Q, N, [names...], [owner index per partition]]
  // for gossip and the node's state file (the empty ring is
  // [1, 0, 0, 0, [], []]). Decode returns Corruption on anything malformed
  // and never crashes: Q a power of two <= kMaxPartitions, N >= 1, names
  // non-empty, sorted, unique and each owning a partition, owner indexes in
  // range, no trailing bytes.
  std::string Encode() const;
  static Result<Ring> Decode(std::string_view bytes);

  bool operator==(const Ring&) const = default;

 private:
  // Index of node in names_, or names_.size() when absent.
  uint32_t IndexOf(std::string_view node) const;
  // How far apart (in partitions) the claim heuristics try to keep two
  // partitions of one node, for a ring of `nodes` nodes.
  uint32_t SpreadCap(size_t nodes) const;
  // Walks clockwise from partition, collecting distinct owners, at most limit.
  std::vector<std::string> Walk(uint32_t partition, size_t limit) const;

  uint64_t version_ = 0;
  uint32_t replicas_ = 0;
  std::vector<std::string> names_;  // sorted, unique; each owns >= 1 partition
  std::vector<uint32_t> owners_;    // owners_[p] indexes names_; size Q
};

}  // namespace dynamo
