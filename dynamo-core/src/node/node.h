// Node: one dynamod process, a member of a cluster (DESIGN.md 1, 3.1).
//
// The node reaches the world only through a Loop (dynamo/transport/loop.h):
// requests arrive through it, replies, peer requests, timers and engine work
// leave through it. A ZmqLoop (one thread owning every socket) runs it in
// dynamod; all coordination state lives on that thread and needs no locks.
// The parts of the node live in separate files: node.cc (dispatch, status),
// coordinator.cc (get/put, quorums, forwarding, read repair),
// membership_actor.cc (join, gossip, claimant, persisted state), handoff.cc,
// anti_entropy.cc, transfer.cc (moving partitions whose owners changed).
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "dynamo/failure_detector.h"
#include "dynamo/membership.h"
#include "dynamo/status.h"
#include "dynamo/transport/loop.h"
#include "dynamo/transport/message.h"
#include "dynamo/versioning.h"
#include "node/options.h"

namespace dynamo {

class HintStore;
struct HintStoreHint;
class LocalStore;
class BackendPlugin;
class ZmqLoop;

class Node : private LoopHandler {
 public:
  explicit Node(NodeOptions options);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Creates the data folder, loads and opens the engine, loads or creates
  // the cluster state, binds --listen. The error is one line for stderr.
  Status Start();

  // Serves until stop_fd (a signalfd) becomes readable; then finishes
  // in-flight engine work, syncs the engine and returns.
  Status Run(int stop_fd);

 private:
  using Clock = std::chrono::steady_clock;
  struct GetOp;
  struct PutOp;
  struct TransferTask;
  struct AeExchange;

  // ---- requests and timers (node.cc)
  void OnRequest(const std::string& from, std::string_view frame) override;
  void OnMalformedEnvelope() override;
  void SendReply(const std::string& identity, const wire::Reply& reply);
  void OnRequestFrame(const std::string& identity, std::string_view frame, bool in_batch);
  // Arms the periodic timers: gossip, claims and transfers; handoff;
  // anti-entropy.
  void StartTimers();
  void GossipTimer();
  void HandoffTimer();
  // Gossip at once (a new membership to spread), then every interval.
  void GossipSoon();
  // The next anti-entropy look, `delay` from now.
  void ScheduleAntiEntropy(std::chrono::milliseconds delay);
  // Local failure detection (paper 4.8.3), fed by the loop.
  bool IsDownEndpoint(const std::string& endpoint) const;
  void Dispatch(std::string identity, wire::Request req);
  Status Validate(const wire::Request& req) const;
  wire::Reply StatusReply(uint64_t id, const std::string& engine_stats);
  wire::Reply RingReply(uint64_t id);

  // ---- coordination (coordinator.cc)
  void CoordinateGet(std::string identity, wire::Request req);
  void CoordinatePut(std::string identity, wire::Request req);
  void ForwardPut(std::string identity, wire::Request req, std::vector<std::string> targets,
                  size_t next, bool refused = false);
  void OnGetAnswer(const std::shared_ptr<GetOp>& op, size_t target, Result<SiblingSet> set);
  const std::string& NextWriteCoordinator(const GetOp& op) const;
  void ReadRepair(const std::shared_ptr<GetOp>& op);
  void OnPutAck(const std::shared_ptr<PutOp>& op, const Status& s);
  // A put's state: the client, W capped at the replicas, the key's lists.
  std::shared_ptr<PutOp> NewPutOp(std::string identity, const wire::Request& req, size_t replicas);
  void CoordinateAsStandIn(std::string identity, wire::Request req,
                           std::vector<std::string> targets);
  // Sends the put's set to replica `target` (hint: the owner it stands in
  // for, "" when target is a replica itself); a failure hands the owner's
  // copy to the next healthy node of the extended list (sloppy quorum).
  void SendReplicaPut(const std::shared_ptr<PutOp>& op, const std::string& target,
                      const std::string& hint);
  // Picks the next healthy node of the extended list not written yet and
  // sends it the set with a hint for owner; false when there is none.
  bool SendHinted(const std::shared_ptr<PutOp>& op, const std::string& owner);
  void NoteForegroundLatency(Clock::time_point start);
  bool IsDownNode(const std::string& node_id) const;
  void ServeReplicaGet(std::string identity, wire::Request req);
  void ServeReplicaPut(std::string identity, wire::Request req);
  void ServeLocalGet(std::string identity, wire::Request req);
  std::vector<std::string> PreferenceListFor(std::string_view key) const;
  std::string EndpointOf(const std::string& node_id) const;
  std::chrono::milliseconds RequestTimeout() const;

  // ---- membership (membership_actor.cc)
  Status LoadOrCreateClusterState();
  void GossipTick();
  void ProbeTick();
  void GossipOnce();
  void ClaimTick();
  void ServeGossip(std::string identity, wire::Request req);
  void ServeJoin(std::string identity, wire::Request req);
  // Folds a received view into ours; handles ring changes and saves.
  void MergeClusterState(std::string_view encoded);
  void OnClusterChanged(const Ring& old_ring);
  void SaveClusterState();

  // ---- hinted handoff (handoff.cc)
  using Delivered = std::vector<std::pair<std::string, uint64_t>>;
  void ServeHintedPut(std::string identity, wire::Request req);
  // Reads the hint store on a worker into hint_snapshot_, then (plan)
  // hands hints to their owners.
  void HandoffTick(bool plan = true);
  void PlanHandoff();
  void ReadHints(const std::string& target, bool reroute_all);
  void DeliverHints(const std::string& target, std::vector<HintStoreHint> hints);
  void RerouteHints(const std::string& target, std::vector<HintStoreHint> hints);
  void ForgetHints(const std::string& target, std::shared_ptr<Delivered> done,
                   const std::string& how);

  // ---- anti-entropy (anti_entropy.cc)
  void AntiEntropyTick();
  void AeCompareRoot(std::shared_ptr<AeExchange> ex);
  void AeCompareLeaves(std::shared_ptr<AeExchange> ex, std::vector<uint32_t> inner);
  void AeCompareEntries(std::shared_ptr<AeExchange> ex, std::vector<uint32_t> leaves);
  void AeRepair(std::shared_ptr<AeExchange> ex, std::vector<uint32_t> leaves,
                std::vector<std::pair<std::string, uint64_t>> theirs);
  void AeDone(const std::shared_ptr<AeExchange>& ex, const std::string& problem);
  void ServeTree(std::string identity, wire::Request req);
  // Trees follow ownership: built for replicated partitions on first use,
  // dropped for the others.
  void SyncTreesWithRing();

  // ---- administration (membership_actor.cc)
  void ServeAdminJoin(std::string identity, wire::Request req);
  void ServeAdminLeave(std::string identity, wire::Request req);
  void ServeAdminRemove(std::string identity, wire::Request req);

  // ---- state transfer (transfer.cc)
  void PlanTransfers(const Ring& old_ring, const Ring& new_ring);
  void TransferTick();
  void PlanOrphanTransfers();
  void TransferSlice(std::shared_ptr<TransferTask> task);
  void SendTransferBatch(std::shared_ptr<TransferTask> task,
                         std::shared_ptr<std::vector<std::pair<std::string, std::string>>> items,
                         size_t offset);
  void DropSlice(std::shared_ptr<TransferTask> task,
                 std::shared_ptr<std::vector<std::pair<std::string, std::string>>> items);
  void NextSlice(const std::shared_ptr<TransferTask>& task);
  void RetargetTransfer(const std::shared_ptr<TransferTask>& task);
  void FinishTransfer(std::shared_ptr<TransferTask> task);
  void ServeTransfer(std::string identity, wire::Request req);

  NodeOptions options_;
  std::shared_ptr<BackendPlugin> plugin_;
  std::unique_ptr<LocalStore> store_;
  std::unique_ptr<ZmqLoop> zmq_loop_;
  Loop* loop_ = nullptr;  // zmq_loop_
  FailureDetector detector_;

  // Loop-thread state.
  ClusterState cluster_;
  Loop::TimerId gossip_timer_ = 0;
  size_t join_attempts_ = 0;
  std::deque<std::shared_ptr<TransferTask>> transfers_;
  bool transfer_running_ = false;
  std::shared_ptr<TransferTask> current_transfer_;  // the one running, if any
  uint64_t keys_transferred_ = 0;
  uint64_t transfer_round_keys_ = 0;  // since the queue last ran dry
  uint64_t transfer_round_partitions_ = 0;
  std::atomic<uint64_t> state_seq_{0};
  std::mutex save_mu_;      // serialises writes of the state file
  uint64_t saved_seq_ = 0;  // guarded by save_mu_

  // Hinted handoff.
  std::unique_ptr<HintStore> hints_;
  std::unordered_set<std::string> handoff_busy_;  // targets with a delivery in flight
  bool handoff_scan_running_ = false;
  bool snapshot_again_ = false;
  // The hint store as last read (status shows it; the loop never reads the
  // store itself, whose appends fsync under its lock).
  struct HintSnapshot {
    std::map<std::string, size_t> by_target;
    size_t pending = 0;
    uint64_t bytes = 0, dropped = 0;
  };
  HintSnapshot hint_snapshot_;
  uint64_t hints_stored_ = 0;                 // hinted writes this node accepted
  uint64_t hints_delivered_ = 0;              // hints acknowledged by their owners
  uint64_t hints_sent_ = 0;                   // hinted writes this node coordinated
  std::atomic<uint64_t> standin_counter_{0};  // dot counters of stand-in writes
  // A node told to join another cluster keeps its old ring, so the keys it
  // holds reach their replicas in the new one.
  Ring pre_join_ring_;

  // Anti-entropy.
  Loop::TimerId ae_timer_ = 0;
  bool ae_running_ = false;
  uint32_t ae_next_partition_ = 0;
  uint64_t ae_exchanges_ = 0, ae_keys_repaired_ = 0, ae_partitions_differing_ = 0;
  uint64_t ae_rounds_ = 0, ae_yields_ = 0;
  double fg_latency_ms_ = 0;  // moving average of client request latency
  uint64_t fg_samples_ = 0;   // client requests finished since anti-entropy last looked

  // Counters shown by status.
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> malformed_{0};
  uint64_t forwarded_ = 0;
  uint64_t read_repairs_ = 0;
};

}  // namespace dynamo
