#include "node/peer_latency.h"

#include <algorithm>
#include <cmath>

namespace dynamo {

void PeerLatency::Note(const std::string& node, Kind kind, Duration rtt) {
  const double ms = std::chrono::duration<double, std::milli>(rtt).count();
  Estimate& e = peers_[node][kind];
  if (e.samples == 0) {
    e.srtt_ms = ms;
    e.rttvar_ms = ms / 2;
  } else {
    // RFC 6298 section 2: beta 1/4, alpha 1/8.
    e.rttvar_ms = 0.75 * e.rttvar_ms + 0.25 * std::abs(e.srtt_ms - ms);
    e.srtt_ms = 0.875 * e.srtt_ms + 0.125 * ms;
  }
  if (e.samples < kMinSamples) ++e.samples;
}

std::chrono::milliseconds PeerLatency::Deadline(const std::string& node, Kind kind,
                                                std::chrono::milliseconds floor,
                                                std::chrono::milliseconds cap) const {
  auto it = peers_.find(node);
  if (it == peers_.end() || it->second[kind].samples < kMinSamples) return cap;
  const Estimate& e = it->second[kind];
  const auto ms =
      std::chrono::milliseconds(static_cast<int64_t>(std::ceil(e.srtt_ms + 4 * e.rttvar_ms)));
  return std::clamp(ms, floor, std::max(floor, cap));
}

}  // namespace dynamo
