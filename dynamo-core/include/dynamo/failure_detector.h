// FailureDetector: this node's local view of which peers answer (paper 4.8.3).
//
// Pure and clock-driven (the caller passes the time), so it is tested
// without a network. A peer is down once a request to it has gone
// unanswered for longer than the timeout while nothing else came back from
// it; any answer brings it up again. A pause shorter than the timeout never
// marks a peer down, and a slow but answering peer never flaps: only the
// oldest unanswered request since its last answer counts.
#pragma once

#include <chrono>
#include <string>
#include <unordered_map>

namespace dynamo {

class FailureDetector {
 public:
  using Clock = std::chrono::steady_clock;

  explicit FailureDetector(std::chrono::milliseconds timeout) : timeout_(timeout) {}

  // A request was sent to peer at `now`.
  void OnSent(const std::string& peer, Clock::time_point now);
  // An answer (any reply) came from peer at `now`.
  void OnAnswer(const std::string& peer, Clock::time_point now);
  // True when peer is down at `now` for this node.
  bool IsDown(const std::string& peer, Clock::time_point now) const;
  // True when peer was last heard from (or first tried) longer ago than half
  // the timeout: worth a probe so its state stays fresh.
  bool WantsProbe(const std::string& peer, Clock::time_point now) const;

 private:
  struct PeerState {
    Clock::time_point last_answer{};       // epoch: never
    Clock::time_point oldest_unanswered{};  // epoch: none outstanding
    bool waiting = false;
  };
  std::chrono::milliseconds timeout_;
  std::unordered_map<std::string, PeerState> peers_;
};

}  // namespace dynamo
