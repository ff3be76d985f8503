#include "dynamo/failure_detector.h"

namespace dynamo {

void FailureDetector::OnSent(const std::string& peer, Clock::time_point now) {
  PeerState& p = peers_[peer];
  if (!p.waiting) {
    p.waiting = true;
    p.oldest_unanswered = now;
  }
}

void FailureDetector::OnAnswer(const std::string& peer, Clock::time_point now) {
  PeerState& p = peers_[peer];
  p.last_answer = now;
  p.waiting = false;
}

bool FailureDetector::IsDown(const std::string& peer, Clock::time_point now) const {
  auto it = peers_.find(peer);
  if (it == peers_.end() || !it->second.waiting) return false;
  return now - it->second.oldest_unanswered > timeout_;
}

bool FailureDetector::WantsProbe(const std::string& peer, Clock::time_point now) const {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return true;
  const PeerState& p = it->second;
  if (p.waiting) return IsDown(peer, now);  // a probe is out; retry once it failed
  return now - p.last_answer > timeout_ / 2;
}

}  // namespace dynamo
