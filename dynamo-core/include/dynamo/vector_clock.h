// VectorClock: a pure value type (paper 4.4).
//
// A list of (node, counter, timestamp) entries, kept sorted by node so that
// comparison and merge are linear. The timestamp is the wall-clock time (ms)
// at which the entry last advanced; it is used only to choose which entry to
// drop when a clock grows past its threshold.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dynamo {

struct ClockEntry {
  std::string node;
  uint64_t counter = 0;
  uint64_t timestamp_ms = 0;
  bool operator==(const ClockEntry&) const = default;
};

class VectorClock {
 public:
  enum class Order { kEqual, kBefore, kAfter, kConcurrent };

  // Default threshold of DESIGN.md 1 (paper 4.4).
  static constexpr size_t kDefaultMaxEntries = 10;

  VectorClock() = default;

  // Counter of node, 0 when absent.
  uint64_t Get(std::string_view node) const;
  // Advances node's counter by one and stamps it with now_ms.
  void Increment(std::string_view node, uint64_t now_ms);
  // Sets node's counter (and timestamp) to exactly these values.
  void Set(std::string_view node, uint64_t counter, uint64_t timestamp_ms);
  // Pointwise maximum; the timestamp follows the larger counter (the later
  // one on a tie).
  void Merge(const VectorClock& other);
  // kBefore: *this happened before other (other descends from *this).
  Order Compare(const VectorClock& other) const;
  // True when every counter of other is <= the one here.
  bool Descends(const VectorClock& other) const;
  // Drops the entries with the oldest timestamps until at most max_entries
  // remain. Returns how many were dropped.
  size_t Truncate(size_t max_entries);

  const std::vector<ClockEntry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  bool operator==(const VectorClock&) const = default;

  // Builds a clock from entries in any order; duplicates keep the larger
  // counter.
  static VectorClock FromEntries(std::vector<ClockEntry> entries);

 private:
  std::vector<ClockEntry>::iterator Find(std::string_view node);
  std::vector<ClockEntry> entries_;  // sorted by node, unique
};

}  // namespace dynamo
