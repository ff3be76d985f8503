// Node: one dynamod process, a member of a cluster (DESIGN.md 1, 3.1).
//
// The node owns the parts and wires the actors together; it holds no
// mechanism of its own. Requests arrive through a Loop (a ZmqLoop in
// dynamod: one thread owning every socket, docs/design.md "Actors and the
// loop"), are decoded and checked here, and go to the actor whose concern
// they are:
//
//   Coordinator      gets and puts, quorums, forwarding, read repair
//   MembershipActor  gossip, joins, the claimant, the persisted view
//   Handoff          hinted writes and their delivery
//   AntiEntropy      Merkle tree exchanges between replicas
//   Transfer         partitions handed to their new owners
//   StatusReport     STATUS and RING
//
// Actors reach the world only through the Loop and the NodeContext, so the
// same code runs on the real loop and on a SimLoop.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "dynamo/failure_detector.h"
#include "dynamo/membership.h"
#include "dynamo/resolver.h"
#include "dynamo/status.h"
#include "dynamo/transport/loop.h"
#include "dynamo/transport/message.h"
#include "node/options.h"

namespace dynamo {

class AntiEntropy;
class BackendPlugin;
class Coordinator;
class Handoff;
class HintStore;
class LocalStore;
class MembershipActor;
class MetricsServer;
class NodeContext;
class RedisFrontEnd;
class StatusReport;
class Transfer;
class Rebuild;
class Migration;
class ZmqLoop;

class Node : private LoopHandler {
 public:
  explicit Node(NodeOptions options);
  ~Node() override;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Creates the data folder, loads and opens the engine, binds --listen on
  // a ZmqLoop, loads or creates the cluster state. The error is one line for
  // stderr.
  Status Start();
  // The same on a loop of the caller's (a SimLoop in tests), which must
  // outlive the node; nothing is bound. Actors arm timers and calls on it
  // that capture them: stop those (SimLoop::Crash) before destroying the
  // node while the loop goes on.
  Status Start(Loop* loop);

  // Serves until stop_fd (a signalfd) becomes readable; then finishes
  // in-flight engine work, syncs the engine and returns. Each time
  // reload_fd (a signalfd of SIGHUP; -1: none) becomes readable, the
  // authorized keys are read again. Start() only.
  Status Run(int stop_fd, int reload_fd = -1);
  // Arms the actors' timers (Run does it); for a caller's loop.
  void StartActors();

  // A request from inside this process (the Redis front end): checked and
  // dispatched as a network one; the reply goes to ctx.local_reply.
  void SubmitLocal(const std::string& identity, const wire::RequestView& req);

  // The parts, for tests.
  NodeContext& context() { return *ctx_; }
  Coordinator& coordinator() { return *coordinator_; }
  MembershipActor& membership() { return *membership_; }
  Handoff& handoff() { return *handoff_; }
  AntiEntropy& anti_entropy() { return *anti_entropy_; }
  Transfer& transfer() { return *transfer_; }
  Rebuild& rebuild() { return *rebuild_; }

 private:
  // Opens the engine and the hint store; *engine_calls: where the engine
  // allows its calls to run.
  Status OpenStores(Loop::EngineCalls* engine_calls);
  void Wire(Loop* loop);
  // Wire, then the cluster state loaded (or created) and saved, trees built.
  Status Assemble(Loop* loop);
  void OnRequest(const std::string& from, std::string_view frame, curve::Role role) override;
  void OnMalformedEnvelope() override;
  void OnRequestFrame(const std::string& identity, std::string_view frame, bool in_batch,
                      curve::Role role);
  // SIGHUP: the authorized keys again; a file with an error keeps the old.
  void ReloadKeys();
  static std::string DescribeKeys(const curve::AuthorizedKeys& keys);
  // Checks a get, put or delete (a coordinator's or a client's) against the
  // limits.
  Status Validate(const wire::RequestView& req) const;
  // Answers a request refused before any actor took it; a get, put or
  // delete is counted (metrics) as its actor would have.
  void Answer(const std::string& identity, const wire::RequestView& req, const wire::Reply& reply);
  void Dispatch(std::string identity, const wire::RequestView& req);
  // A node that left takes no more data (REPLICA_PUT, hinted or not, and
  // TRANSFER): its last hand-off is done, and what it took would stay here
  // for good (found by the simulator, docs/testing.md). The sender keeps its
  // copy for the keys' current replicas.
  void RefuseDataAfterLeaving(const std::string& identity, const wire::RequestView& req);

  NodeOptions options_;
  std::shared_ptr<BackendPlugin> plugin_;
  Resolvers resolvers_;  // --resolver
  std::unique_ptr<LocalStore> store_;
  std::unique_ptr<HintStore> hints_;
  std::unique_ptr<ZmqLoop> zmq_loop_;  // Start() only
  Loop* loop_ = nullptr;
  ClusterState cluster_;
  FailureDetector detector_;
  std::unique_ptr<NodeContext> ctx_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<MembershipActor> membership_;
  std::unique_ptr<Handoff> handoff_;
  std::unique_ptr<AntiEntropy> anti_entropy_;
  std::unique_ptr<Transfer> transfer_;
  std::unique_ptr<Rebuild> rebuild_;
  std::unique_ptr<Migration> migration_;
  std::unique_ptr<StatusReport> status_;
  std::unique_ptr<RedisFrontEnd> redis_;    // --redis-listen, Start() only
  std::unique_ptr<MetricsServer> metrics_;  // --metrics-listen, Start() only
};

}  // namespace dynamo
