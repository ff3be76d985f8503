// Versioned values: siblings, contexts and tombstones (paper 4.4).
//
// Each version records the context its writer had read plus one "dot": the
// (node, counter) event that created it. A version is obsolete once another
// version's context covers its dot, i.e. once some writer had seen it. Plain
// vector clocks cannot tell two writes made from the same old context apart
// when one coordinator makes both (they would get equal or falsely ordered
// clocks); keeping the dot apart from the context keeps them concurrent, as
// dotted version vectors do (docs/design.md, "Versions").
//
// All types here are pure values: no I/O, no locks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dynamo/status.h"
#include "dynamo/vector_clock.h"

namespace dynamo {

struct Version {
  VectorClock context;     // what the writer had read
  std::string dot_node;    // the coordinator that created this version
  uint64_t dot_counter = 0;
  uint64_t timestamp_ms = 0;
  bool tombstone = false;  // a delete; not a value
  std::string value;

  // The version's causal history: its context plus its own dot.
  VectorClock History() const;
  // True when a writer that read `clock` had seen this version.
  bool CoveredBy(const VectorClock& clock) const {
    return clock.Get(dot_node) >= dot_counter;
  }
  bool SameEvent(const Version& o) const {
    return dot_counter == o.dot_counter && dot_node == o.dot_node;
  }
};

// The versions one key holds: causally unrelated siblings, none obsolete.
class SiblingSet {
 public:
  SiblingSet() = default;

  // Applies a write coordinated by `node`: the new version obsoletes every
  // version `context` covers and stays beside the others. Its dot counter is
  // above any counter of `node` this key has seen. Its context is truncated
  // to max_clock_entries (dropping the oldest entries). Returns the new
  // version.
  const Version& Apply(const VectorClock& context, std::string_view node, uint64_t now_ms,
                       std::string value, bool tombstone, size_t max_clock_entries);

  // Reconciles versions from elsewhere (a replica, a hint) into this set:
  // the union with duplicates and obsolete versions removed. Returns true
  // when the set changed.
  bool Merge(const SiblingSet& other);

  // The context a client gets: the merged histories of all versions,
  // tombstones included (so a later put supersedes them).
  VectorClock Context() const;
  // True when no version is a value (empty, or tombstones only).
  bool IsDeleted() const;
  // Values of the live (non-tombstone) versions, in a stable order.
  std::vector<std::string_view> LiveValues() const;

  const std::vector<Version>& versions() const { return versions_; }
  bool empty() const { return versions_.empty(); }
  bool operator==(const SiblingSet& o) const;

  // The encoding stored in engines and sent between nodes (msgpack).
  std::string Encode() const;
  static Result<SiblingSet> Decode(std::string_view bytes);

 private:
  // Inserts v unless it is present or obsolete, pruning what v obsoletes;
  // true when the set changed.
  bool Add(Version v);
  std::vector<Version> versions_;
};

// Contexts on the wire are encoded vector clocks.
std::string EncodeClock(const VectorClock& clock);
// InvalidArgument ("bad context") on anything that is not an encoded clock.
// Empty bytes decode to an empty clock.
Result<VectorClock> DecodeClock(std::string_view bytes);

}  // namespace dynamo
