// FixedHistogram: counts of values by fixed upper bounds, for metrics
// (request latencies, peer batch sizes). Adding is a short scan and three
// additions: no allocation, no lock. Not thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace dynamo {

// A histogram over fixed upper bounds (each bucket counts the values at
// most its bound and above the previous one; the last is +Inf).
template <size_t kBounds>
class FixedHistogram {
 public:
  explicit constexpr FixedHistogram(const std::array<uint64_t, kBounds>& bounds)
      : bounds_(bounds) {}
  void Add(uint64_t value) {
    size_t i = 0;
    while (i < kBounds && value > bounds_[i]) ++i;
    ++counts_[i];
    sum_ += value;
    ++count_;
  }
  const std::array<uint64_t, kBounds>& bounds() const { return bounds_; }
  uint64_t bucket(size_t i) const { return counts_[i]; }  // i == kBounds: +Inf
  uint64_t sum() const { return sum_; }
  uint64_t count() const { return count_; }

 private:
  std::array<uint64_t, kBounds> bounds_;
  std::array<uint64_t, kBounds + 1> counts_{};
  uint64_t sum_ = 0;
  uint64_t count_ = 0;
};

}  // namespace dynamo
