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

// What a writer has seen: a vector clock of events seen contiguously from
// each node's first, plus single events beyond it ("dots"). A put returns
// its reader's context plus the put's own dot, which is usually not
// contiguous (a concurrent sibling may hold the counters in between); a
// plain clock would have to round that up and so claim the sibling as seen,
// and the writer's next put would drop a version it never read.
struct Dot {
  std::string node;
  uint64_t counter = 0;
  uint64_t timestamp_ms = 0;
  bool operator==(const Dot&) const = default;
};

class CausalContext {
 public:
  CausalContext() = default;
  explicit CausalContext(VectorClock clock) : clock_(std::move(clock)) {}

  const VectorClock& clock() const { return clock_; }
  const std::vector<Dot>& dots() const { return dots_; }
  bool empty() const { return clock_.empty() && dots_.empty(); }

  // True when event (node, counter) is part of this context.
  bool Covers(std::string_view node, uint64_t counter) const;
  // The highest counter of node this context holds, 0 if none.
  uint64_t Max(std::string_view node) const;
  // Adds one event; it joins the clock when it is the next one of its node.
  void Add(std::string_view node, uint64_t counter, uint64_t timestamp_ms);
  void Merge(const CausalContext& other);
  // Keeps at most max_entries clock entries and as many dots, dropping the
  // oldest (paper 4.4). Dropping only makes later writes keep more siblings.
  void Truncate(size_t max_entries);
  bool operator==(const CausalContext&) const = default;

 private:
  void Normalize();  // drops dots the clock covers, folds contiguous ones in
  VectorClock clock_;
  std::vector<Dot> dots_;  // sorted by (node, counter), none covered by clock_
};

struct Version {
  CausalContext context;  // what the writer had read
  std::string dot_node;   // the coordinator that created this version
  uint64_t dot_counter = 0;
  uint64_t timestamp_ms = 0;
  bool tombstone = false;  // a delete; not a value
  std::string value;

  // The version's causal history: its context plus its own dot.
  CausalContext History() const;
  // True when a writer whose context is `c` had seen this version.
  bool CoveredBy(const CausalContext& c) const { return c.Covers(dot_node, dot_counter); }
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
  // min_counter: the dot counter is at least this (a coordinator that keeps
  // no copy of the key, and so cannot see its own earlier dots, passes a
  // counter it never reuses).
  const Version& Apply(const CausalContext& context, std::string_view node, uint64_t now_ms,
                       std::string value, bool tombstone, size_t max_clock_entries,
                       uint64_t min_counter = 0);

  // Applies a write whose dot was chosen elsewhere: a node that forwards a
  // write to a replica fixes its dot, so that every replica asked to
  // coordinate that one write (the first did not answer in time, say) makes
  // the same version, not siblings. As Apply otherwise; applying it again,
  // or after a later write covered it, changes nothing. Returns the new
  // version's history (the writer's next context).
  CausalContext ApplyAt(const CausalContext& context, const Dot& dot, std::string value,
                        bool tombstone, size_t max_clock_entries);

  // Reconciles versions from elsewhere (a replica, a hint) into this set:
  // the union with duplicates and obsolete versions removed. Returns true
  // when the set changed.
  bool Merge(const SiblingSet& other);

  // The context a client gets: the merged histories of all versions,
  // tombstones included (so a later put supersedes them).
  CausalContext Context() const;
  // True when no version is a value (empty, or tombstones only).
  bool IsDeleted() const;
  // Values of the live (non-tombstone) versions, in a stable order.
  std::vector<std::string_view> LiveValues() const;

  const std::vector<Version>& versions() const { return versions_; }
  bool empty() const { return versions_.empty(); }
  bool operator==(const SiblingSet& o) const;

  // The encoding stored in engines and sent between nodes (msgpack).
  std::string Encode() const;
  // 64 bits of MD5 over the versions in a canonical order (by dot), so
  // replicas holding the same versions agree whatever order they arrived
  // in. 0 for an empty set, never 0 otherwise (anti-entropy's trees).
  uint64_t Digest() const;
  static Result<SiblingSet> Decode(std::string_view bytes);

 private:
  // Inserts v unless it is present or obsolete, pruning what v obsoletes;
  // true when the set changed.
  bool Add(Version v);
  std::vector<Version> versions_;
};

// Contexts on the wire: [[[node, counter, timestamp_ms], ...] (the clock),
// [[node, counter, timestamp_ms], ...] (the dots)], and when coordinator is
// not empty a third item: the node that answered the read fastest (or
// coordinated the write), which should coordinate the next write (paper
// 6.4, read-your-writes). The hint never enters a stored version.
std::string EncodeContext(const CausalContext& context, std::string_view coordinator = {});
// InvalidArgument ("bad context") on anything that is not an encoded
// context. Empty bytes decode to an empty context. The hint, if any, goes to
// *coordinator (cleared otherwise).
Result<CausalContext> DecodeContext(std::string_view bytes, std::string* coordinator = nullptr);

}  // namespace dynamo
