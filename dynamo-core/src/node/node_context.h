// NodeContext: what every actor of a node shares (not a public header).
//
// The node owns the parts (options, loop, local store, hint store, cluster
// view, failure detector) and hands each actor this context: references to
// them, the few helpers every actor needs (where a member listens, whether
// it is down, a key's preference list, replying to a requester), and the
// request counters status shows. Loop thread only, except the atomics.
#pragma once

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dynamo/failure_detector.h"
#include "dynamo/key_hash.h"
#include "dynamo/membership.h"
#include "dynamo/resolver.h"
#include "dynamo/transport/loop.h"
#include "dynamo/transport/message.h"
#include "node/background_share.h"
#include "node/local_store.h"
#include "node/options.h"
#include "node/request_metrics.h"

namespace dynamo {

class HintStore;
class LocalStore;

class NodeContext {
 public:
  NodeContext(NodeOptions& options, Loop& loop, LocalStore& store, HintStore& hints,
              ClusterState& cluster, FailureDetector& detector)
      : options(options),
        loop(loop),
        store(store),
        hints(hints),
        cluster(cluster),
        detector(detector),
        background(loop, options.background_target_p99_ms) {}
  NodeContext(const NodeContext&) = delete;
  NodeContext& operator=(const NodeContext&) = delete;

  NodeOptions& options;       // membership changes the seeds on an administrator's join
  Loop& loop;                 // sockets, timers, workers, the clock
  LocalStore& store;          // this node's own data (the engine)
  HintStore& hints;           // writes kept for down replicas (paper 4.6)
  ClusterState& cluster;      // the membership view; only membership changes it
  FailureDetector& detector;  // fed by the loop's peer observer

  // The name of this node's dots in new versions (node/incarnation.h): the
  // node id and a suffix that changes unless the last run stopped cleanly,
  // and whenever the node drops keys it handed off.
  ActorName actor;

  const Ring& ring() const { return cluster.ring(); }

  // This node is leaving or removed and no longer in its ring: it holds no
  // partition and takes no more data (what it took now would stay here).
  bool OutOfRing() const {
    const Member* self = cluster.Find(options.node_id);
    return self != nullptr &&
           (self->state == MemberState::kLeaving || self->state == MemberState::kRemoved) &&
           !cluster.ring().empty() && !cluster.ring().Contains(options.node_id);
  }

  // Where a member listens ("" for an unknown one).
  std::string EndpointOf(const std::string& node_id) const {
    const Member* m = cluster.Find(node_id);
    return m ? m->endpoint : std::string();
  }
  // Local failure detection (paper 4.8.3).
  bool IsDownEndpoint(const std::string& endpoint) const {
    return detector.IsDown(endpoint, loop.Now());
  }
  bool IsDownNode(const std::string& node_id) const {
    const std::string endpoint = EndpointOf(node_id);
    return endpoint.empty() || IsDownEndpoint(endpoint);
  }
  // The key's preference list in the current ring (empty without a ring).
  std::vector<std::string> PreferenceListFor(std::string_view key) const {
    return PreferenceListForHash(KeyHash(key));
  }
  // The same from the key's KeyHash, for callers that have it already.
  std::vector<std::string> PreferenceListForHash(uint64_t key_hash) const {
    const Ring& r = cluster.ring();
    if (r.empty()) return {};
    return r.PreferenceList(PartitionOf(key_hash, r.partitions()));
  }
  std::chrono::milliseconds RequestTimeout() const {
    return std::chrono::milliseconds(options.request_timeout_ms);
  }

  // Requesters inside this process (the Redis front end) have identities
  // that begin with this byte; the loop drops network messages whose
  // identity does, so none can take their replies.
  static constexpr char kLocalIdentity = '\xff';
  static bool IsLocal(std::string_view identity) {
    return !identity.empty() && identity[0] == kLocalIdentity;
  }
  // Where replies to local requesters go.
  std::function<void(const std::string& to, const wire::Reply& reply)> local_reply;

  // Requests this node makes of itself (a resolver's write-back): the
  // identity to hand the request's handler with, whose reply goes to done
  // (once). Local identities of their own size, apart from the Redis
  // front end's.
  std::string LocalCall(std::function<void(const wire::Reply&)> done) {
    const uint64_t n = next_local_call_++;
    std::string identity(kLocalCallIdentitySize, kLocalIdentity);
    std::memcpy(identity.data() + 2, &n, sizeof(n));
    local_calls_.emplace(n, std::move(done));
    return identity;
  }

  // Replies to a requester; error replies are counted.
  void Reply(const std::string& to, const wire::Reply& reply) {
    if (reply.type == wire::MsgType::kError && reply.error_code != 0) ++errors;
    if (IsLocal(to)) {
      if (to.size() == kLocalCallIdentitySize) {
        uint64_t n;
        std::memcpy(&n, to.data() + 2, sizeof(n));
        auto it = local_calls_.find(n);
        if (it == local_calls_.end()) return;
        auto done = std::move(it->second);
        local_calls_.erase(it);
        done(reply);
        return;
      }
      if (local_reply) local_reply(to, reply);
      return;
    }
    loop.Reply(to, reply);
  }

  // The resolvers of --resolver (none when empty).
  const Resolvers* resolvers = nullptr;

  // Whether metrics count requests of this type: gets, puts and deletes,
  // a client's or a coordinator's.
  static bool IsDataRequest(wire::MsgType type) {
    using wire::MsgType;
    return type == MsgType::kGet || type == MsgType::kPut || type == MsgType::kDel ||
           type == MsgType::kReplicaGet || type == MsgType::kReplicaPut;
  }
  // A get, put or delete (IsDataRequest) taken now: its op; its role (a
  // coordinator's read or write of this node's copy, and `get --local`, are
  // the replica's); counted unless it is a write another node forwarded
  // here (the node its client sent it to counted it).
  RequestStart Started(const wire::RequestView& req) const {
    using wire::MsgType;
    RequestStart start;
    start.op = req.type == MsgType::kGet || req.type == MsgType::kReplicaGet ? MetricOp::kGet
               : req.type == MsgType::kDel                                   ? MetricOp::kDel
                                                                             : MetricOp::kPut;
    const bool replica = req.type == MsgType::kReplicaGet || req.type == MsgType::kReplicaPut ||
                         (req.type == MsgType::kGet && (req.flags & wire::kFlagLocal));
    start.role = replica ? MetricRole::kReplica : MetricRole::kCoordinator;
    start.at = loop.Now();
    start.counted = replica || !(req.flags & wire::kFlagForwarded);
    return start;
  }
  // Replies to the request taken at start, and counts it (metrics); a
  // client's request's latency also steers background work.
  void Answer(const RequestStart& start, const std::string& to, const wire::Reply& reply) {
    const auto elapsed = loop.Now() - start.at;
    if (start.counted) request_metrics.Record(start, reply, elapsed);
    if (start.role == MetricRole::kCoordinator) {
      background.NoteForeground(start.op != MetricOp::kGet,
                                std::chrono::duration<double, std::milli>(elapsed).count());
    }
    Reply(to, reply);
  }
  // Gets, puts and deletes by op, role and result, with their latencies.
  RequestMetrics request_metrics;
  // The share of time background work may take (admission control).
  BackgroundShare background;

  // Shown by status.
  std::atomic<uint64_t> requests{0};   // requests taken (batches count their parts)
  std::atomic<uint64_t> errors{0};     // error replies sent
  std::atomic<uint64_t> malformed{0};  // messages that could not be decoded
  std::atomic<uint64_t> refused{0};    // requests refused for their key's role
 private:
  static constexpr size_t kLocalCallIdentitySize = 2 + sizeof(uint64_t);
  uint64_t next_local_call_ = 0;
  std::unordered_map<uint64_t, std::function<void(const wire::Reply&)>> local_calls_;
};

}  // namespace dynamo
