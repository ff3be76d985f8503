// RequestMetrics: requests by operation, role and result, and a latency
// histogram per operation and role (DESIGN.md 3.9, docs/operations.md
// "Metrics"); and the Prometheus text format the node's metrics are
// written in.
//
// Recording is a few additions into fixed arrays: no allocation, no lock,
// no atomic. Loop thread only (the metrics are rendered on the loop too).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dynamo/histogram.h"
#include "dynamo/transport/message.h"

namespace dynamo {

enum class MetricOp : uint8_t { kGet, kPut, kDel };
enum class MetricRole : uint8_t {
  kCoordinator,  // a client's request this node answered (coordinated or forwarded)
  kReplica       // a coordinator's read or write of this node's copy; `get --local`
};
enum class MetricResult : uint8_t {
  kOk,
  kNotFound,     // a get of a key with no live version
  kRejected,     // bad input, unknown message, not authorized
  kUnavailable,  // quorum not reached, timeout, no ring, not a replica
  kError         // any other failure (engine, I/O, corruption)
};
const char* MetricOpName(MetricOp op);
const char* MetricRoleName(MetricRole role);
const char* MetricResultName(MetricResult result);

// When and as what a request was taken; carried to its reply.
struct RequestStart {
  MetricOp op = MetricOp::kGet;
  MetricRole role = MetricRole::kCoordinator;
  std::chrono::steady_clock::time_point at;
  // False for a write another node forwarded here: its client's node
  // counts it, once.
  bool counted = true;
};

class RequestMetrics {
 public:
  static constexpr size_t kOps = 3, kRoles = 2, kResults = 5;
  // Latency bucket bounds in microseconds: 100 us to 10 s.
  static constexpr size_t kBounds = 16;
  static constexpr std::array<uint64_t, kBounds> kBoundsMicros = {
      100,   250,    500,    1000,   2500,    5000,    10000,   25000,
      50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
  using Histogram = FixedHistogram<kBounds>;

  // The reply sent for a request taken at `start`, `elapsed` later.
  void Record(const RequestStart& start, const wire::Reply& reply,
              std::chrono::steady_clock::duration elapsed);
  static MetricResult ResultOf(const wire::Reply& reply);

  uint64_t count(MetricOp op, MetricRole role, MetricResult result) const {
    return counts_[Index(op, role)][static_cast<size_t>(result)];
  }
  const Histogram& latency(MetricOp op, MetricRole role) const { return latency_[Index(op, role)]; }

 private:
  static size_t Index(MetricOp op, MetricRole role) {
    return static_cast<size_t>(op) * kRoles + static_cast<size_t>(role);
  }
  std::array<std::array<uint64_t, kResults>, kOps * kRoles> counts_{};
  std::array<Histogram, kOps* kRoles> latency_ = MakeHistograms();
  static std::array<Histogram, kOps * kRoles> MakeHistograms();
};

// Writes metrics in the Prometheus text exposition format (version 0.0.4):
// a family's HELP and TYPE once, then its samples.
class PromWriter {
 public:
  // Starts a family; type: counter, gauge or histogram.
  void Family(std::string_view name, std::string_view type, std::string_view help);
  // One sample; labels: already written as name="value" pairs, comma
  // separated (Label() escapes a value), or empty.
  void Sample(std::string_view name, std::string_view labels, uint64_t value);
  void Sample(std::string_view name, std::string_view labels, double value);
  // A histogram's samples (_bucket per bound, +Inf, _sum, _count); bounds
  // and sum are divided by scale (1e6: microseconds shown as seconds).
  template <size_t N>
  void Histogram(std::string_view name, std::string_view labels, const FixedHistogram<N>& h,
                 double scale) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < N; ++i) {
      cumulative += h.bucket(i);
      HistogramBucket(name, labels, FormatNumber(static_cast<double>(h.bounds()[i]) / scale),
                      cumulative);
    }
    cumulative += h.bucket(N);
    HistogramBucket(name, labels, "+Inf", cumulative);
    Sample(std::string(name) + "_sum", labels, static_cast<double>(h.sum()) / scale);
    Sample(std::string(name) + "_count", labels, h.count());
  }
  // name="value", the value escaped as the format asks (\\, \", \n).
  static std::string Label(std::string_view name, std::string_view value);
  static std::string FormatNumber(double v);

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void HistogramBucket(std::string_view name, std::string_view labels, const std::string& le,
                       uint64_t cumulative);
  std::string out_;
};

}  // namespace dynamo
