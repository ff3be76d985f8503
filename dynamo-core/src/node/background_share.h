// BackgroundShare: admission control of background work (paper 6.5).
//
// The node notes the latency of every client get, put and delete it
// answers, reads and writes apart. Every period (250 ms) the p99 of each in
// that window is compared with --background-target-p99-ms: when either is
// above it (surely: the latencies are kept in buckets 25% wide, and the
// bucket of the p99 must lie above the target), the share of time background work may take is
// halved (down to 5%); when both are at or below it (or no client was served), it grows back by a
// tenth of the whole (up to 100%).
//
// Background work (anti-entropy exchanges, hint deliveries, partition
// transfers) runs in steps; after a step that took `busy`, it waits
// PauseAfter(busy) = busy * (1 - share) / share before the next, so that it
// takes about share of the time. At 100% it never waits. It never stops
// altogether: at 5% it still gets one step in twenty.
//
// Loop thread only.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

#include "dynamo/transport/loop.h"

namespace dynamo {

class BackgroundShare {
 public:
  static constexpr std::chrono::milliseconds kPeriod{250};
  static constexpr double kMinShare = 0.05;
  static constexpr double kGrowth = 0.1;

  // target_p99_ms 0: no admission control (the share stays 1).
  BackgroundShare(Loop& loop, uint32_t target_p99_ms) : loop_(loop), target_ms_(target_p99_ms) {}

  // Arms the periodic adjustment.
  void Start();
  // A client request answered after `ms`; write: a put or delete.
  void NoteForeground(bool write, double ms);
  // Compares the window's p99 with the target and moves the share; the
  // window starts again. Start's timer calls it; tests may too.
  void Adjust();

  // The pause before the next step of background work after one that took
  // busy, and at least at_least (the task's own pacing); paused_ms counts
  // only what admission control added to at_least.
  std::chrono::milliseconds PauseAfter(std::chrono::steady_clock::duration busy,
                                       std::chrono::milliseconds at_least = {});

  double share() const { return share_; }
  uint32_t target_p99_ms() const { return target_ms_; }
  // The p99 of reads and of writes in the last full window, ms (0 when no
  // client was served).
  double last_p99_ms(bool write) const { return last_p99_ms_[write]; }
  uint64_t cuts() const { return cuts_; }            // times the share was cut
  uint64_t paused_ms() const { return paused_ms_; }  // pauses handed out, in total

 private:
  // Latency buckets: bound i is 0.05 ms * 1.25^i, up to about 10 s.
  static constexpr size_t kBuckets = 56;
  static size_t BucketOf(double ms);
  static double BoundOf(size_t i);

  Loop& loop_;
  const uint32_t target_ms_;
  double share_ = 1.0;
  // Per kind (0 reads, 1 writes).
  std::array<double, 2> last_p99_ms_{};
  std::array<std::array<uint32_t, kBuckets + 1>, 2> window_{};
  std::array<uint64_t, 2> window_count_{};
  uint64_t cuts_ = 0;
  uint64_t paused_ms_ = 0;
};

}  // namespace dynamo
