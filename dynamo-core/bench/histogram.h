// LatencyHistogram: an HdrHistogram-style log-linear histogram of latencies
// in microseconds, from 1 us to 60 s.
//
// Each power of two is cut into 128 linear sub-buckets, so a recorded value
// is known to within 1/128 (< 0.8 %) of itself; values below 128 us are
// exact. 2,560 counters (20 KiB), no allocation after construction: Record()
// is a shift, a count-leading-zeros and an increment. Not thread-safe: one
// histogram per worker thread, merged at the end with Add().
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace dynamo::bench {

class LatencyHistogram {
 public:
  static constexpr uint64_t kMaxMicros = 60ull * 1000 * 1000;  // 60 s; larger values clamp

  void Record(uint64_t micros) {
    micros = std::clamp<uint64_t>(micros, 1, kMaxMicros);
    ++counts_[Index(micros)];
    ++total_;
    max_ = std::max(max_, micros);
    sum_ += micros;
  }

  void Add(const LatencyHistogram& o) {
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    max_ = std::max(max_, o.max_);
    sum_ += o.sum_;
  }

  uint64_t count() const { return total_; }
  uint64_t max() const { return max_; }
  double mean() const { return total_ ? static_cast<double>(sum_) / total_ : 0.0; }

  // The smallest recorded-bucket upper bound at or below which a fraction q
  // (0..1) of the values lie, as HdrHistogram's "highest equivalent value";
  // never above the exact maximum. 0 when empty.
  uint64_t Percentile(double q) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<uint64_t>(std::max(1.0, q * static_cast<double>(total_) + 0.5));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(UpperBound(i), max_);
    }
    return max_;
  }

 private:
  static constexpr unsigned kSubBits = 7;  // 128 sub-buckets per power of two
  static constexpr uint64_t kSub = 1ull << kSubBits;
  // 2^25 <= kMaxMicros < 2^26: the top shift is 25 - 7 = 18, so the last
  // index is 18 * 128 + 255.
  static constexpr size_t kBuckets = (26 - kSubBits + 1) * kSub;

  static size_t Index(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    const unsigned shift = static_cast<unsigned>(std::bit_width(v)) - 1 - kSubBits;
    return static_cast<size_t>(shift * kSub + (v >> shift));
  }
  // Largest value that maps to bucket i.
  static uint64_t UpperBound(size_t i) {
    if (i < 2 * kSub) return i;
    const uint64_t shift = i / kSub - 1;
    const uint64_t base = i - shift * kSub;  // in [128, 256)
    return ((base + 1) << shift) - 1;
  }

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
  uint64_t sum_ = 0;
};

}  // namespace dynamo::bench
