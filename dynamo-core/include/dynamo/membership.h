// ClusterState: the membership view and ring a node gossips (paper 4.8).
//
// Pure value type. Each member entry carries a version; a merge keeps, per
// member, the entry with the higher version, and keeps the ring with the
// higher version (ties broken by the larger encoding, so every node picks
// the same ring). Ring changes are made only by the claimant, the member
// with the smallest node id, so concurrent joins converge: a member the
// winning ring lacks is simply claimed again.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "dynamo/ring.h"
#include "dynamo/status.h"

namespace dynamo {

// kRemoved: removed by an administrator, or done leaving; kept (versioned)
// so gossip does not bring the member back.
enum class MemberState : uint8_t { kJoining = 0, kUp = 1, kLeaving = 2, kDown = 3, kRemoved = 4 };
const char* MemberStateName(MemberState s);

struct Member {
  std::string node_id;
  std::string endpoint;
  MemberState state = MemberState::kJoining;
  uint64_t version = 0;
  bool operator==(const Member&) const = default;
};

class ClusterState {
 public:
  ClusterState() = default;

  const Ring& ring() const { return ring_; }
  const std::map<std::string, Member>& members() const { return members_; }
  const Member* Find(const std::string& node_id) const;

  // Replaces the ring (the caller made a change: its version must be higher).
  void SetRing(Ring ring) { ring_ = std::move(ring); }
  // Adds a member unknown so far (no-op and false when known).
  bool AddMember(const std::string& node_id, const std::string& endpoint, MemberState state);
  // Sets a member's state and endpoint, bumping its version; false when
  // unknown or unchanged.
  bool Update(const std::string& node_id, const std::string& endpoint, MemberState state);

  // Folds another view into this one; true when anything changed.
  bool Merge(const ClusterState& other);

  // The member allowed to change the ring: the smallest node id among the
  // ring's members that are not leaving or removed ("" for an empty ring).
  std::string Claimant() const;

  std::string Encode() const;
  static Result<ClusterState> Decode(std::string_view bytes);
  bool operator==(const ClusterState&) const = default;

 private:
  std::map<std::string, Member> members_;
  Ring ring_;
};

}  // namespace dynamo
