#include "node/background_share.h"

#include <algorithm>
#include <cmath>

namespace dynamo {

void BackgroundShare::Start() {
  if (target_ms_ == 0) return;
  loop_.After(kPeriod, [this] {
    Adjust();
    Start();
  });
}

size_t BackgroundShare::BucketOf(double ms) {
  if (!(ms > 0.05)) return 0;
  const double i = std::ceil(std::log(ms / 0.05) / std::log(1.25));
  return i >= kBuckets ? kBuckets : static_cast<size_t>(i);
}

double BackgroundShare::BoundOf(size_t i) { return 0.05 * std::pow(1.25, static_cast<double>(i)); }

void BackgroundShare::NoteForeground(bool write, double ms) {
  if (target_ms_ == 0) return;
  ++window_[write][BucketOf(ms)];
  ++window_count_[write];
}

void BackgroundShare::Adjust() {
  bool over = false;
  for (size_t k = 0; k < 2; ++k) {
    last_p99_ms_[k] = 0;
    if (window_count_[k] == 0) continue;
    // The bound of the bucket that holds the 99th percentile.
    const uint64_t rank = window_count_[k] - window_count_[k] / 100;  // >= 99% at or below
    uint64_t seen = 0;
    size_t i = 0;
    for (; i < kBuckets; ++i) {
      seen += window_[k][i];
      if (seen >= rank) break;
    }
    last_p99_ms_[k] = BoundOf(i);
    // Above the target only when the whole bucket is: the lower bound too
    // (never throttled for a p99 that may be at the target).
    if (i > 0 && BoundOf(i - 1) >= target_ms_) over = true;
    window_[k].fill(0);
    window_count_[k] = 0;
  }
  if (over) {
    share_ = std::max(kMinShare, share_ / 2);
    ++cuts_;
  } else {
    share_ = std::min(1.0, share_ + kGrowth);
  }
}

std::chrono::milliseconds BackgroundShare::PauseAfter(std::chrono::steady_clock::duration busy,
                                                      std::chrono::milliseconds at_least) {
  if (share_ >= 1.0) return at_least;
  const double busy_ms = std::chrono::duration<double, std::milli>(busy).count();
  // At least a millisecond per step when throttled: a step that completed
  // at once (a cached answer) still yields the loop to clients.
  const double pause = std::max(1.0, busy_ms * (1 - share_) / share_);
  const auto ms = std::chrono::milliseconds(static_cast<int64_t>(std::min(pause, 60000.0)));
  if (ms <= at_least) return at_least;
  paused_ms_ += static_cast<uint64_t>((ms - at_least).count());  // only what it added
  return ms;
}

}  // namespace dynamo
