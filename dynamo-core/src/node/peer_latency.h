// Recent round-trip times per peer, and from them how long a request waits
// for one before treating it as down for that request (issue: sloppy quorum
// on timeout). The estimator is TCP's retransmission timer (RFC 6298): a
// smoothed mean and mean deviation of the answered calls' round trips.
//
// Loop thread only.
#pragma once

#include <array>
#include <chrono>
#include <string>
#include <unordered_map>

namespace dynamo {

class PeerLatency {
 public:
  using Duration = std::chrono::steady_clock::duration;
  // A replica's own work (REPLICA_GET, REPLICA_PUT: one hop), or a write
  // forwarded to a replica that coordinates it (two hops and its quorum).
  enum Kind { kHop = 0, kForward = 1 };

  // One answered call to node (answers of every kind count: an error reply
  // is an answer; a timeout is not).
  void Note(const std::string& node, Kind kind, Duration rtt);

  // srtt + 4 * rttvar of node's calls of this kind, within [floor, cap];
  // cap while fewer than kMinSamples were answered.
  std::chrono::milliseconds Deadline(const std::string& node, Kind kind,
                                     std::chrono::milliseconds floor,
                                     std::chrono::milliseconds cap) const;

  static constexpr int kMinSamples = 4;

 private:
  struct Estimate {
    double srtt_ms = 0, rttvar_ms = 0;
    int samples = 0;
  };
  std::unordered_map<std::string, std::array<Estimate, 2>> peers_;
};

}  // namespace dynamo
