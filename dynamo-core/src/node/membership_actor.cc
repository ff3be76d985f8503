// Membership (paper 4.8): joining through seeds, gossip with one random peer
// per interval, ring changes by the claimant, and the persisted view.
#include "node/membership_actor.h"

#include <fstream>
#include <sstream>

#include "dynamo/log.h"

namespace dynamo {

using wire::MsgType;
using wire::Reply;
using wire::Request;
using wire::RequestView;

namespace {

std::string StatePath(const NodeOptions& o) { return o.data_dir + "/cluster.state"; }

}  // namespace

MembershipActor::MembershipActor(NodeContext& ctx, Hooks hooks)
    : ctx_(ctx),
      hooks_(std::move(hooks)),
      state_file_(ctx.loop, StatePath(ctx.options), "the cluster state") {}

Status MembershipActor::LoadOrCreate() {
  const std::string path = StatePath(ctx_.options);
  std::ifstream in(path, std::ios::binary);
  if (in) {
    std::stringstream buf;
    buf << in.rdbuf();
    auto loaded = ClusterState::Decode(buf.str());
    if (!loaded.ok()) {
      return Status::Corruption("cannot read the cluster state " + path + ": " +
                                loaded.status().message() +
                                " (move the file away to start this node afresh)");
    }
    ctx_.cluster = std::move(loaded).value();
    const Member* self = ctx_.cluster.Find(ctx_.options.node_id);
    if (self == nullptr) {
      ctx_.cluster.AddMember(ctx_.options.node_id, ctx_.options.listen, MemberState::kJoining);
    } else if (self->endpoint != ctx_.options.listen) {
      ctx_.cluster.Update(ctx_.options.node_id, ctx_.options.listen, self->state);
    }
    log::Info("loaded cluster state: " + std::to_string(ctx_.cluster.members().size()) +
              " members, ring version " + std::to_string(ctx_.cluster.ring().version()));
    return Status::OK();
  }
  if (ctx_.options.seeds.empty()) {
    ctx_.cluster.AddMember(ctx_.options.node_id, ctx_.options.listen, MemberState::kUp);
    ctx_.cluster.SetRing(
        Ring::Create(ctx_.options.partitions, ctx_.options.replicas, ctx_.options.node_id));
    log::Info("created a new cluster: " + std::to_string(ctx_.options.partitions) +
              " partitions, N=" + std::to_string(ctx_.options.replicas));
  } else {
    ctx_.cluster.AddMember(ctx_.options.node_id, ctx_.options.listen, MemberState::kJoining);
    log::Info("joining the cluster of " + ctx_.options.seeds.front());
  }
  return Status::OK();
}

void MembershipActor::Save() { state_file_.Write(ctx_.cluster.Encode()); }

void MembershipActor::Start() { GossipSoon(); }

void MembershipActor::GossipSoon() {
  ctx_.loop.Cancel(gossip_timer_);
  gossip_timer_ = ctx_.loop.After(std::chrono::milliseconds(0), [this] { GossipTimer(); });
}

void MembershipActor::GossipTimer() {
  gossip_timer_ = 0;
  GossipTick();
  ClaimTick();
  if (hooks_.on_round) hooks_.on_round();
  if (gossip_timer_ == 0) {
    gossip_timer_ = ctx_.loop.After(std::chrono::milliseconds(ctx_.options.gossip_interval_ms),
                                    [this] { GossipTimer(); });
  }
}

void MembershipActor::GossipOnce() {
  std::vector<const Member*> peers;
  for (const auto& [id, m] : ctx_.cluster.members()) {
    if (id != ctx_.options.node_id && !m.endpoint.empty() && m.state != MemberState::kRemoved) {
      peers.push_back(&m);
    }
  }
  std::string endpoint;
  if (!peers.empty()) {
    endpoint = peers[ctx_.loop.Random() % peers.size()]->endpoint;
  } else if (!ctx_.options.seeds.empty()) {
    endpoint = ctx_.options.seeds[ctx_.loop.Random() % ctx_.options.seeds.size()];
  } else {
    return;
  }
  Request g;
  g.type = MsgType::kGossip;
  g.payload = ctx_.cluster.Encode();
  ctx_.loop.Call(endpoint, std::move(g), ctx_.RequestTimeout(), [this](Result<Reply> rep) {
    if (rep.ok() && rep->type == MsgType::kGossipReply) MergeClusterState(rep->payload);
  });
}

// Keeps the local failure detector fresh: a member not heard from lately,
// or taken for down, gets a PING each tick until it answers.
void MembershipActor::ProbeTick() {
  for (const auto& [id, m] : ctx_.cluster.members()) {
    if (id == ctx_.options.node_id || m.endpoint.empty() || m.state == MemberState::kRemoved ||
        !ctx_.detector.WantsProbe(m.endpoint, ctx_.loop.Now())) {
      continue;
    }
    Request ping;
    ping.type = MsgType::kPing;
    const bool was_down = ctx_.IsDownEndpoint(m.endpoint);
    ctx_.loop.Call(m.endpoint, std::move(ping), ctx_.RequestTimeout(),
                   [this, id = id, was_down](Result<Reply> rep) {
                     if (was_down && rep.ok()) log::Info("member " + id + " answers again");
                   });
  }
}

void MembershipActor::GossipTick() {
  ProbeTick();
  // Only a joining node asks: one that left or was removed stays out until
  // an administrator's join.
  const Member* self = ctx_.cluster.Find(ctx_.options.node_id);
  const bool joining = self != nullptr && self->state == MemberState::kJoining;
  if (joining && !ctx_.cluster.ring().Contains(ctx_.options.node_id) &&
      !ctx_.options.seeds.empty()) {
    // Ask a seed to let us in; its answer carries its view of the cluster.
    Request j;
    j.type = MsgType::kJoin;
    j.node_id = ctx_.options.node_id;
    j.endpoint = ctx_.options.listen;
    const std::string& seed = ctx_.options.seeds[join_attempts_++ % ctx_.options.seeds.size()];
    ctx_.loop.Call(seed, std::move(j), ctx_.RequestTimeout(), [this, seed](Result<Reply> rep) {
      if (!rep.ok()) {
        log::Warn("join through seed " + seed + " failed: " + rep.status().ToString());
        return;
      }
      if (rep->type == MsgType::kGossipReply) MergeClusterState(rep->payload);
    });
  }
  GossipOnce();
}

void MembershipActor::ServeGossip(std::string identity, const RequestView& req) {
  if (!ClusterState::Decode(req.payload).ok()) {
    return ctx_.Reply(
        identity,
        Reply::Error(req.id, Status::InvalidArgument("gossip carries no valid cluster view")));
  }
  MergeClusterState(req.payload);
  Reply r;
  r.type = MsgType::kGossipReply;
  r.id = req.id;
  r.payload = ctx_.cluster.Encode();
  ctx_.Reply(identity, r);
}

void MembershipActor::ServeJoin(std::string identity, const RequestView& req) {
  const std::string node_id(req.node_id), endpoint(req.endpoint);
  if (req.node_id.empty() || req.node_id.size() > Ring::kMaxNodeName ||
      (req.endpoint.rfind("tcp://", 0) != 0 && req.endpoint.rfind("ipc://", 0) != 0)) {
    return ctx_.Reply(identity, Reply::Error(req.id, Status::InvalidArgument(
                                                         "join needs a node id and a tcp:// or "
                                                         "ipc:// endpoint")));
  }
  const Ring old_ring = ctx_.cluster.ring();
  const Member* m = ctx_.cluster.Find(node_id);
  bool changed = false;
  if (m == nullptr) {
    changed = ctx_.cluster.AddMember(node_id, endpoint, MemberState::kJoining);
    log::Info("node " + node_id + " at " + endpoint + " asks to join");
  } else if (m->state == MemberState::kRemoved) {
    // A removed (or left) node asking again joins afresh.
    changed = ctx_.cluster.Update(node_id, endpoint, MemberState::kJoining);
    log::Info("node " + node_id + " at " + endpoint + ", removed before, asks to join");
  } else if (m->endpoint != endpoint) {
    changed = ctx_.cluster.Update(node_id, endpoint, m->state);
  }
  if (changed) OnClusterChanged(old_ring);
  ClaimTick();
  Reply r;
  r.type = MsgType::kGossipReply;
  r.id = req.id;
  r.payload = ctx_.cluster.Encode();
  ctx_.Reply(identity, r);
}

// The claimant adds members that are not in the ring yet (paper 4.8.1: an
// administrator's join, here made by the seed contacted) and takes out
// those leaving or removed.
void MembershipActor::ClaimTick() {
  if (ctx_.cluster.Claimant() != ctx_.options.node_id) return;
  const Ring old_ring = ctx_.cluster.ring();
  Ring ring = old_ring;
  bool changed = false;
  for (const auto& [id, m] : ctx_.cluster.members()) {
    const bool going = m.state == MemberState::kLeaving || m.state == MemberState::kRemoved;
    if (going && ring.Contains(id) && ring.Leave(id)) {
      log::Info("took " + id + " out of the ring (" + MemberStateName(m.state) + ")");
      changed = true;
    }
    if (m.state != MemberState::kJoining && m.state != MemberState::kUp) continue;
    if (!ring.Contains(id)) {
      ring.Join(id);
      log::Info("claimed " + std::to_string(ring.OwnedBy(id)) + " partitions for " + id);
      changed = true;
    }
  }
  if (changed) ctx_.cluster.SetRing(ring);
  // Members in the ring are up.
  std::vector<std::pair<std::string, std::string>> now_up;
  for (const auto& [id, m] : ctx_.cluster.members()) {
    if (m.state == MemberState::kJoining && ring.Contains(id)) now_up.emplace_back(id, m.endpoint);
  }
  for (const auto& [id, ep] : now_up)
    changed = ctx_.cluster.Update(id, ep, MemberState::kUp) || changed;
  if (changed) OnClusterChanged(old_ring);
}

// ---- administration (dynamoctl join / leave / remove, DESIGN.md 3.2)

void MembershipActor::ServeAdminJoin(std::string identity, const RequestView& req) {
  const std::string seed(req.endpoint);
  if (seed.rfind("tcp://", 0) != 0 && seed.rfind("ipc://", 0) != 0) {
    return ctx_.Reply(
        identity, Reply::Error(req.id, Status::InvalidArgument("join needs a tcp:// or ipc:// seed "
                                                               "endpoint, got '" +
                                                               seed + "'")));
  }
  if (seed == ctx_.options.listen) {
    return ctx_.Reply(identity,
                      Reply::Error(req.id, Status::InvalidArgument("a node cannot join itself")));
  }
  if (Status s = CanJoin(); !s.ok()) return ctx_.Reply(identity, Reply::Error(req.id, s));
  // The seed must answer first: a node that started over as a joining
  // member of a seed that is not there (a mistyped endpoint) would serve
  // nothing until it joined somewhere.
  Request ping;
  ping.type = MsgType::kPing;
  ctx_.loop.Call(
      seed, std::move(ping), ctx_.RequestTimeout(),
      [this, identity = std::move(identity), id = req.id, seed](Result<Reply> rep) {
        Status s = rep.ok() ? rep->ToStatus() : rep.status();
        if (!s.ok()) {
          return ctx_.Reply(
              identity,
              Reply::Error(id, Status::Unavailable("seed " + seed + " did not answer (" +
                                                   s.message() + "); this node is as it was")));
        }
        // Checked again: the cluster may have changed meanwhile.
        if (Status again = CanJoin(); !again.ok()) {
          return ctx_.Reply(identity, Reply::Error(id, again));
        }
        StartJoining(seed);
        ctx_.Reply(identity, Reply::Ack(id));
      });
}

Status MembershipActor::CanJoin() const {
  const Ring& ring = ctx_.cluster.ring();
  if (ring.nodes().size() > 1 && ring.Contains(ctx_.options.node_id)) {
    return Status::InvalidArgument("this node is already in a cluster of " +
                                   std::to_string(ring.nodes().size()) + " nodes; leave it first");
  }
  return Status::OK();
}

void MembershipActor::StartJoining(const std::string& seed) {
  const Ring& ring = ctx_.cluster.ring();
  if (!ring.empty() && ring.Contains(ctx_.options.node_id)) pre_join_ring_ = ring;
  // Start over as a joining member of the seed's cluster; the seed's view,
  // ring included, arrives with its answer to our JOIN.
  ClusterState fresh;
  fresh.AddMember(ctx_.options.node_id, ctx_.options.listen, MemberState::kJoining);
  ctx_.cluster = std::move(fresh);
  ctx_.options.seeds = {seed};
  join_attempts_ = 0;
  Save();
  log::Info("joining the cluster of " + seed + " on an administrator's request");
  GossipSoon();
}

void MembershipActor::ServeAdminLeave(std::string identity, const RequestView& req) {
  const Ring& ring = ctx_.cluster.ring();
  if (!ring.Contains(ctx_.options.node_id)) {
    return ctx_.Reply(
        identity, Reply::Error(req.id, Status::InvalidArgument("this node holds no partitions of a "
                                                               "cluster (not in the ring)")));
  }
  if (ring.nodes().size() == 1) {
    return ctx_.Reply(
        identity, Reply::Error(req.id, Status::InvalidArgument("the last node of a cluster cannot "
                                                               "leave it")));
  }
  const Ring old_ring = ring;
  if (ctx_.cluster.Update(ctx_.options.node_id, ctx_.options.listen, MemberState::kLeaving)) {
    log::Info(
        "leaving the cluster: the claimant reassigns this node's partitions, "
        "then they are handed off");
    OnClusterChanged(old_ring);
  }
  ctx_.Reply(identity, Reply::Ack(req.id));
}

void MembershipActor::ServeAdminRemove(std::string identity, const RequestView& req) {
  const std::string id(req.node_id);
  const Member* m = ctx_.cluster.Find(id);
  if (m == nullptr || m->state == MemberState::kRemoved) {
    return ctx_.Reply(identity,
                      Reply::Error(req.id, Status::NotFound("no member named '" + id + "'")));
  }
  if (id == ctx_.options.node_id) {
    return ctx_.Reply(
        identity, Reply::Error(req.id, Status::InvalidArgument("a node cannot remove itself; use "
                                                               "leave")));
  }
  const Ring& ring = ctx_.cluster.ring();
  if (ring.Contains(id) && ring.nodes().size() == 1) {
    return ctx_.Reply(
        identity, Reply::Error(req.id, Status::InvalidArgument("cannot remove the last node of the "
                                                               "ring")));
  }
  const Ring old_ring = ring;
  ctx_.cluster.Update(id, m->endpoint, MemberState::kRemoved);
  log::Info("member " + id + " removed by an administrator");
  ClaimTick();  // when this node is the claimant, the ring changes now (and it
                // handles the change)
  if (ctx_.cluster.ring() == old_ring) OnClusterChanged(old_ring);
  ctx_.Reply(identity, Reply::Ack(req.id));
}

void MembershipActor::MergeClusterState(std::string_view encoded) {
  auto other = ClusterState::Decode(encoded);
  if (!other.ok()) {
    log::Warn("ignoring a cluster view: " + other.status().ToString());
    return;
  }
  const Ring old_ring = ctx_.cluster.ring();
  if (ctx_.cluster.Merge(*other)) OnClusterChanged(old_ring);
}

void MembershipActor::OnClusterChanged(const Ring& old_ring) {
  const Ring& ring = ctx_.cluster.ring();
  if (!(old_ring == ring)) {
    log::Info("ring version " + std::to_string(ring.version()) + ": " +
              std::to_string(ring.nodes().size()) + " nodes, " +
              std::to_string(ring.OwnedBy(ctx_.options.node_id)) + " partitions owned here");
    if (!pre_join_ring_.empty() && ring.Contains(ctx_.options.node_id) &&
        !old_ring.Contains(ctx_.options.node_id)) {
      // Joined another cluster on an administrator's request: what this
      // node held in its own cluster goes to the keys' replicas here.
      const Ring from = std::move(pre_join_ring_);
      pre_join_ring_ = Ring();
      if (hooks_.on_ring_change) hooks_.on_ring_change(from, ring);
    } else if (hooks_.on_ring_change) {
      hooks_.on_ring_change(old_ring, ring);
    }
  }
  Save();
  GossipOnce();  // spread the news now rather than at the next tick
}

void MembershipActor::MarkSelfRemoved() {
  const Ring ring = ctx_.cluster.ring();
  ctx_.cluster.Update(ctx_.options.node_id, ctx_.options.listen, MemberState::kRemoved);
  OnClusterChanged(ring);
}

}  // namespace dynamo
