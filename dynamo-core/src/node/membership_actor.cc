// Membership (paper 4.8): joining through seeds, gossip with one random peer
// per interval, ring changes by the claimant, and the persisted view.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "node/node_internal.h"
#include "util/log.h"

namespace dynamo {

using wire::MsgType;
using wire::Reply;
using wire::Request;

namespace {

std::string StatePath(const NodeOptions& o) { return o.data_dir + "/cluster.state"; }

// Writes bytes to path atomically and durably: temp file, fsync, rename,
// fsync of the folder.
Status WriteFileAtomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("cannot write " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return Status::IOError("cannot write " + tmp + ": " + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) return Status::IOError("cannot sync " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::IOError("cannot rename " + tmp + ": " + std::strerror(errno));
  }
  std::string dir = path.substr(0, path.rfind('/'));
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::OK();
}

}  // namespace

Status Node::LoadOrCreateClusterState() {
  const std::string path = StatePath(options_);
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
    cluster_ = std::move(loaded).value();
    const Member* self = cluster_.Find(options_.node_id);
    if (self == nullptr) {
      cluster_.AddMember(options_.node_id, options_.listen, MemberState::kJoining);
    } else if (self->endpoint != options_.listen) {
      cluster_.Update(options_.node_id, options_.listen, self->state);
    }
    log::Info("loaded cluster state: " + std::to_string(cluster_.members().size()) +
              " members, ring version " + std::to_string(cluster_.ring().version()));
    return Status::OK();
  }
  if (options_.seeds.empty()) {
    cluster_.AddMember(options_.node_id, options_.listen, MemberState::kUp);
    cluster_.SetRing(Ring::Create(options_.partitions, options_.replicas, options_.node_id));
    log::Info("created a new cluster: " + std::to_string(options_.partitions) +
              " partitions, N=" + std::to_string(options_.replicas));
  } else {
    cluster_.AddMember(options_.node_id, options_.listen, MemberState::kJoining);
    log::Info("joining the cluster of " + options_.seeds.front());
  }
  return Status::OK();
}

void Node::SaveClusterState() {
  const uint64_t seq = ++state_seq_;
  loop_->RunOnWorker([this, seq, bytes = cluster_.Encode()] {
    std::lock_guard<std::mutex> l(save_mu_);
    if (seq <= saved_seq_) return;  // a newer view was written already
    Status s = WriteFileAtomically(StatePath(options_), bytes);
    if (!s.ok()) {
      log::Error("cannot save the cluster state: " + s.ToString());
      return;
    }
    saved_seq_ = seq;
  });
}

void Node::GossipOnce() {
  std::vector<const Member*> peers;
  for (const auto& [id, m] : cluster_.members()) {
    if (id != options_.node_id && !m.endpoint.empty() && m.state != MemberState::kRemoved) {
      peers.push_back(&m);
    }
  }
  std::string endpoint;
  if (!peers.empty()) {
    endpoint = peers[loop_->Random() % peers.size()]->endpoint;
  } else if (!options_.seeds.empty()) {
    endpoint = options_.seeds[loop_->Random() % options_.seeds.size()];
  } else {
    return;
  }
  Request g;
  g.type = MsgType::kGossip;
  g.payload = cluster_.Encode();
  loop_->Call(endpoint, std::move(g), RequestTimeout(), [this](Result<Reply> rep) {
    if (rep.ok() && rep->type == MsgType::kGossipReply) MergeClusterState(rep->payload);
  });
}

// Keeps the local failure detector fresh: a member not heard from lately,
// or taken for down, gets a PING each tick until it answers.
void Node::ProbeTick() {
  for (const auto& [id, m] : cluster_.members()) {
    if (id == options_.node_id || m.endpoint.empty() || m.state == MemberState::kRemoved ||
        !detector_.WantsProbe(m.endpoint, loop_->Now())) {
      continue;
    }
    Request ping;
    ping.type = MsgType::kPing;
    const bool was_down = IsDownEndpoint(m.endpoint);
    loop_->Call(m.endpoint, std::move(ping), RequestTimeout(),
                [this, id = id, was_down](Result<Reply> rep) {
                  if (was_down && rep.ok()) log::Info("member " + id + " answers again");
                });
  }
}

void Node::GossipTick() {
  ProbeTick();
  // Only a joining node asks: one that left or was removed stays out until
  // an administrator's join.
  const Member* self = cluster_.Find(options_.node_id);
  const bool joining = self != nullptr && self->state == MemberState::kJoining;
  if (joining && !cluster_.ring().Contains(options_.node_id) && !options_.seeds.empty()) {
    // Ask a seed to let us in; its answer carries its view of the cluster.
    Request j;
    j.type = MsgType::kJoin;
    j.node_id = options_.node_id;
    j.endpoint = options_.listen;
    const std::string& seed = options_.seeds[join_attempts_++ % options_.seeds.size()];
    loop_->Call(seed, std::move(j), RequestTimeout(), [this, seed](Result<Reply> rep) {
      if (!rep.ok()) {
        log::Warn("join through seed " + seed + " failed: " + rep.status().ToString());
        return;
      }
      if (rep->type == MsgType::kGossipReply) MergeClusterState(rep->payload);
    });
  }
  GossipOnce();
}

void Node::ServeGossip(std::string identity, Request req) {
  if (!ClusterState::Decode(req.payload).ok()) {
    return SendReply(
        identity,
        Reply::Error(req.id, Status::InvalidArgument("gossip carries no valid cluster view")));
  }
  MergeClusterState(req.payload);
  Reply r;
  r.type = MsgType::kGossipReply;
  r.id = req.id;
  r.payload = cluster_.Encode();
  SendReply(identity, r);
}

void Node::ServeJoin(std::string identity, Request req) {
  if (req.node_id.empty() || req.node_id.size() > Ring::kMaxNodeName ||
      (req.endpoint.rfind("tcp://", 0) != 0 && req.endpoint.rfind("ipc://", 0) != 0)) {
    return SendReply(identity, Reply::Error(req.id, Status::InvalidArgument(
                                                        "join needs a node id and a tcp:// or "
                                                        "ipc:// endpoint")));
  }
  const Ring old_ring = cluster_.ring();
  const Member* m = cluster_.Find(req.node_id);
  bool changed = false;
  if (m == nullptr) {
    changed = cluster_.AddMember(req.node_id, req.endpoint, MemberState::kJoining);
    log::Info("node " + req.node_id + " at " + req.endpoint + " asks to join");
  } else if (m->state == MemberState::kRemoved) {
    // A removed (or left) node asking again joins afresh.
    changed = cluster_.Update(req.node_id, req.endpoint, MemberState::kJoining);
    log::Info("node " + req.node_id + " at " + req.endpoint + ", removed before, asks to join");
  } else if (m->endpoint != req.endpoint) {
    changed = cluster_.Update(req.node_id, req.endpoint, m->state);
  }
  if (changed) OnClusterChanged(old_ring);
  ClaimTick();
  Reply r;
  r.type = MsgType::kGossipReply;
  r.id = req.id;
  r.payload = cluster_.Encode();
  SendReply(identity, r);
}

// The claimant adds members that are not in the ring yet (paper 4.8.1: an
// administrator's join, here made by the seed contacted) and takes out
// those leaving or removed.
void Node::ClaimTick() {
  if (cluster_.Claimant() != options_.node_id) return;
  const Ring old_ring = cluster_.ring();
  Ring ring = old_ring;
  bool changed = false;
  for (const auto& [id, m] : cluster_.members()) {
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
  if (changed) cluster_.SetRing(ring);
  // Members in the ring are up.
  std::vector<std::pair<std::string, std::string>> now_up;
  for (const auto& [id, m] : cluster_.members()) {
    if (m.state == MemberState::kJoining && ring.Contains(id)) now_up.emplace_back(id, m.endpoint);
  }
  for (const auto& [id, ep] : now_up)
    changed = cluster_.Update(id, ep, MemberState::kUp) || changed;
  if (changed) OnClusterChanged(old_ring);
}

// ---- administration (dynamoctl join / leave / remove, DESIGN.md 3.2)

void Node::ServeAdminJoin(std::string identity, Request req) {
  const std::string& seed = req.endpoint;
  if (seed.rfind("tcp://", 0) != 0 && seed.rfind("ipc://", 0) != 0) {
    return SendReply(
        identity, Reply::Error(req.id, Status::InvalidArgument("join needs a tcp:// or ipc:// seed "
                                                               "endpoint, got '" +
                                                               seed + "'")));
  }
  if (seed == options_.listen) {
    return SendReply(identity,
                     Reply::Error(req.id, Status::InvalidArgument("a node cannot join itself")));
  }
  const Ring& ring = cluster_.ring();
  if (ring.nodes().size() > 1 && ring.Contains(options_.node_id)) {
    return SendReply(
        identity,
        Reply::Error(req.id, Status::InvalidArgument("this node is already in a cluster of " +
                                                     std::to_string(ring.nodes().size()) +
                                                     " nodes; leave it first")));
  }
  if (!ring.empty() && ring.Contains(options_.node_id)) pre_join_ring_ = ring;
  // Start over as a joining member of the seed's cluster; the seed's view,
  // ring included, arrives with its answer to our JOIN.
  ClusterState fresh;
  fresh.AddMember(options_.node_id, options_.listen, MemberState::kJoining);
  cluster_ = std::move(fresh);
  options_.seeds = {seed};
  join_attempts_ = 0;
  SaveClusterState();
  log::Info("joining the cluster of " + seed + " on an administrator's request");
  GossipSoon();
  SendReply(identity, Reply::Ack(req.id));
}

void Node::ServeAdminLeave(std::string identity, Request req) {
  const Ring& ring = cluster_.ring();
  if (!ring.Contains(options_.node_id)) {
    return SendReply(
        identity, Reply::Error(req.id, Status::InvalidArgument("this node holds no partitions of a "
                                                               "cluster (not in the ring)")));
  }
  if (ring.nodes().size() == 1) {
    return SendReply(
        identity, Reply::Error(req.id, Status::InvalidArgument("the last node of a cluster cannot "
                                                               "leave it")));
  }
  const Ring old_ring = ring;
  if (cluster_.Update(options_.node_id, options_.listen, MemberState::kLeaving)) {
    log::Info(
        "leaving the cluster: the claimant reassigns this node's partitions, "
        "then they are handed off");
    OnClusterChanged(old_ring);
  }
  SendReply(identity, Reply::Ack(req.id));
}

void Node::ServeAdminRemove(std::string identity, Request req) {
  const std::string& id = req.node_id;
  const Member* m = cluster_.Find(id);
  if (m == nullptr || m->state == MemberState::kRemoved) {
    return SendReply(identity,
                     Reply::Error(req.id, Status::NotFound("no member named '" + id + "'")));
  }
  if (id == options_.node_id) {
    return SendReply(
        identity, Reply::Error(req.id, Status::InvalidArgument("a node cannot remove itself; use "
                                                               "leave")));
  }
  const Ring& ring = cluster_.ring();
  if (ring.Contains(id) && ring.nodes().size() == 1) {
    return SendReply(
        identity, Reply::Error(req.id, Status::InvalidArgument("cannot remove the last node of the "
                                                               "ring")));
  }
  const Ring old_ring = ring;
  cluster_.Update(id, m->endpoint, MemberState::kRemoved);
  log::Info("member " + id + " removed by an administrator");
  ClaimTick();  // when this node is the claimant, the ring changes now (and it
                // handles the change)
  if (cluster_.ring() == old_ring) OnClusterChanged(old_ring);
  SendReply(identity, Reply::Ack(req.id));
}

void Node::MergeClusterState(std::string_view encoded) {
  auto other = ClusterState::Decode(encoded);
  if (!other.ok()) {
    log::Warn("ignoring a cluster view: " + other.status().ToString());
    return;
  }
  const Ring old_ring = cluster_.ring();
  if (cluster_.Merge(*other)) OnClusterChanged(old_ring);
}

void Node::OnClusterChanged(const Ring& old_ring) {
  const Ring& ring = cluster_.ring();
  if (!(old_ring == ring)) {
    log::Info("ring version " + std::to_string(ring.version()) + ": " +
              std::to_string(ring.nodes().size()) + " nodes, " +
              std::to_string(ring.OwnedBy(options_.node_id)) + " partitions owned here");
    if (!pre_join_ring_.empty() && ring.Contains(options_.node_id) &&
        !old_ring.Contains(options_.node_id)) {
      // Joined another cluster on an administrator's request: what this
      // node held in its own cluster goes to the keys' replicas here.
      PlanTransfers(pre_join_ring_, ring);
      pre_join_ring_ = Ring();
    } else {
      PlanTransfers(old_ring, ring);
    }
    SyncTreesWithRing();
  }
  SaveClusterState();
  GossipOnce();  // spread the news now rather than at the next tick
}

}  // namespace dynamo
