// Coordinator: gets and puts (paper 4.5, 4.6, 6.4).
//
// A get goes to every replica of the key's preference list and is answered
// after R of them, with every causally unrelated sibling and one context;
// when all answered (or timed out), replicas that were stale get the
// reconciled set (read repair). A put is coordinated by a replica of the key
// (others forward it, to the one the context names first: read-your-writes):
// it adds its own version, stores it, sends the stored set to the other
// replicas (a down one's copy to a stand-in, with a hint) and answers after
// W acknowledgements. When no replica can be reached at all, this node
// stands in for them (sloppy quorum). Replica-side requests (a replica's get
// and put) are served here too.
//
// Loop thread only. Owns the state of the requests in flight.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dynamo/transport/message.h"
#include "dynamo/versioning.h"
#include "node/local_store.h"
#include "node/node_context.h"

namespace dynamo {

class Coordinator {
 public:
  struct Hooks {
    // A client's get or put was answered after `ms` (anti-entropy yields to
    // slow foreground requests, paper 6.5).
    std::function<void(double ms)> on_latency;
    // A write no replica took was kept here as a hint (hinted handoff
    // delivers it).
    std::function<void()> on_hint_stored;
  };
  struct Stats {
    uint64_t forwarded = 0;     // puts sent on to a replica of the key
    uint64_t read_repairs = 0;  // stale replicas sent the reconciled set
    uint64_t hints_sent = 0;    // copies sent to stand-ins with a hint
  };

  Coordinator(NodeContext& ctx, Hooks hooks);

  // A client's GET (R of the replicas) and PUT or DEL (W of them).
  void CoordinateGet(std::string identity, const wire::RequestView& req);
  void CoordinatePut(std::string identity, const wire::RequestView& req);
  // A coordinator's REPLICA_GET and REPLICA_PUT (no hint); a GET with the
  // local flag (what this node's own engine holds).
  void ServeReplicaGet(std::string identity, const wire::RequestView& req);
  void ServeReplicaPut(std::string identity, const wire::RequestView& req);
  void ServeLocalGet(std::string identity, const wire::RequestView& req);

  const Stats& stats() const { return stats_; }

 private:
  using Clock = Loop::Clock;
  struct GetOp;
  struct PutOp;

  void OnGetAnswer(const std::shared_ptr<GetOp>& op, size_t target, Result<SiblingSet> set);
  const std::string& NextWriteCoordinator(const GetOp& op) const;
  void ReadRepair(const std::shared_ptr<GetOp>& op);
  // The request is kept while replicas are tried in turn: owned.
  void ForwardPut(std::string identity, std::shared_ptr<const wire::Request> req,
                  std::vector<std::string> targets, size_t next, bool refused = false);
  void CoordinateAsStandIn(std::string identity, const wire::RequestView& req,
                           std::vector<std::string> targets);
  // A put's state: the client, W capped at the replicas, the key's lists.
  std::shared_ptr<PutOp> NewPutOp(std::string identity, const wire::RequestView& req,
                                  uint64_t key_hash, size_t replicas);
  // Sends the put's set to replica `target` (hint: the owner it stands in
  // for, "" when target is a replica itself); a failure hands the owner's
  // copy to the next healthy node of the extended list (sloppy quorum).
  void SendReplicaPut(const std::shared_ptr<PutOp>& op, const std::string& target,
                      const std::string& hint);
  // Picks the next healthy node of the extended list not written yet and
  // sends it the set with a hint for owner; false when there is none.
  bool SendHinted(const std::shared_ptr<PutOp>& op, const std::string& owner);
  void OnPutAck(const std::shared_ptr<PutOp>& op, const Status& s);
  void NoteLatency(Clock::time_point start);

  NodeContext& ctx_;
  Hooks hooks_;
  Stats stats_;
  // Dot counters of stand-in writes: above any an earlier run used.
  std::atomic<uint64_t> standin_counter_;
};

// A get being coordinated: one entry per replica of the preference list.
struct Coordinator::GetOp {
  Clock::time_point start;
  std::string identity;  // the client
  uint64_t client_id = 0;
  std::string key;
  std::vector<std::string> targets;                // node ids
  std::vector<std::optional<SiblingSet>> answers;  // per target, when it answered
  size_t needed = 0, ok = 0, failed = 0;
  std::string last_error;  // of the last replica that failed
  bool replied = false;
  SiblingSet merged;
  size_t fastest = SIZE_MAX;  // index of the first replica that answered
};

// A put (or delete) being coordinated.
struct Coordinator::PutOp {
  Clock::time_point start;
  std::string identity;
  uint64_t client_id = 0;
  std::string context;  // the new version's context, for the reply
  size_t needed = 0, acks = 0;
  std::string last_error;  // of the last replica write that failed
  size_t in_flight = 0;    // writes sent (the coordinator's own included) not answered yet
  bool replied = false;
  // For replica writes and their fallbacks.
  std::string key;
  std::string encoded;  // the set as stored by the coordinator
  uint64_t ring_version = 0;
  std::vector<std::string> extended;  // the key's extended preference list
  std::vector<std::string> written;   // nodes sent the set so far (and the coordinator)
};

}  // namespace dynamo
