// MembershipActor: membership and failure detection (paper 4.8).
//
// Joins through seeds, gossips the membership view with one random member
// every --gossip-interval-ms (and probes members not heard from lately, so
// the local failure detector stays fresh), makes ring changes when this node
// is the claimant (adds joining members, takes out leaving and removed
// ones), serves the administrator's join, leave and remove, and keeps the
// view durable in DATA_DIR/cluster.state. The view itself lives in the
// NodeContext; this actor is the only one that changes it.
//
// Loop thread only (the state file is written on a worker).
#pragma once

#include <functional>
#include <string>

#include "dynamo/membership.h"
#include "dynamo/status.h"
#include "dynamo/transport/message.h"
#include "node/newest_file.h"
#include "node/node_context.h"

namespace dynamo {

class MembershipActor {
 public:
  struct Hooks {
    // The ring changed from `from` to `to`: partitions move, trees follow.
    std::function<void(const Ring& from, const Ring& to)> on_ring_change;
    // After every gossip round (partition transfers make progress).
    std::function<void()> on_round;
  };

  MembershipActor(NodeContext& ctx, Hooks hooks);

  // Reads DATA_DIR/cluster.state, or starts a cluster (no seeds) or a join.
  Status LoadOrCreate();
  // Writes the view on a worker (atomically, durably); newer views win.
  void Save();
  // Arms the gossip timer; the first round runs at once.
  void Start();

  void ServeGossip(std::string identity, const wire::RequestView& req);
  void ServeJoin(std::string identity, const wire::RequestView& req);
  void ServeAdminJoin(std::string identity, const wire::RequestView& req);
  void ServeAdminLeave(std::string identity, const wire::RequestView& req);
  void ServeAdminRemove(std::string identity, const wire::RequestView& req);

  // This node left: every partition and hint is handed off.
  void MarkSelfRemoved();

 private:
  // An administrator's join: refused while this node is in a ring of
  // several; once the seed answered, this node starts over as a joining
  // member of its cluster.
  Status CanJoin() const;
  void StartJoining(const std::string& seed);
  void GossipTimer();
  // Gossip at once (a new membership to spread), then every interval.
  void GossipSoon();
  void GossipTick();
  void ProbeTick();
  void GossipOnce();
  void ClaimTick();
  // Folds a received view into ours; handles ring changes and saves.
  void MergeClusterState(std::string_view encoded);
  void OnClusterChanged(const Ring& old_ring);

  NodeContext& ctx_;
  Hooks hooks_;
  Loop::TimerId gossip_timer_ = 0;
  size_t join_attempts_ = 0;
  // A node told to join another cluster keeps its old ring, so the keys it
  // holds reach their replicas in the new one.
  Ring pre_join_ring_;
  NewestFile state_file_;  // <data-dir>/cluster.state
};

}  // namespace dynamo
