// Coordinator: gets and puts (paper 4.5, 4.6, 6.4).
//
// A get goes to every replica of the key's preference list and is answered
// after R of them, with every causally unrelated sibling and one context;
// when all answered (or timed out), replicas that were stale get the
// reconciled set (read repair). A replica taken for down, failing, or silent
// past its adaptive deadline has a stand-in asked in its place (sloppy
// read): the next healthy node of the extended list answers from its hint
// store, and its answer counts toward R when it holds hinted versions of the
// key, or once that replica failed the read (docs/design.md, "Sloppy reads"). A put is coordinated
// by a replica of the key (others forward it, to the one the context names first: read-your-writes,
// with the new version's dot fixed (ForwardDots), so that when that replica does not
// answer within its adaptive deadline the next one coordinates the same
// version): it adds its version, stores it, sends the stored set to the
// other replicas and answers after W acknowledgements. A replica taken for
// down, or one that has not answered within its adaptive deadline (PeerLatency),
// has its copy sent to a stand-in with a hint (sloppy quorum); a late answer
// still counts. When no replica can be reached at all, this node stands in
// for them. Replica-side requests (a replica's get and put) are served here
// too.
//
// Loop thread only. Owns the state of the requests in flight.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "dynamo/transport/message.h"
#include "dynamo/versioning.h"
#include "node/forward_dots.h"
#include "node/local_store.h"
#include "node/node_context.h"
#include "node/peer_latency.h"

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
    uint64_t forwarded = 0;            // puts sent on to a replica of the key
    uint64_t read_repairs = 0;         // stale replicas sent the reconciled set
    uint64_t hints_sent = 0;           // copies sent to stand-ins with a hint
    uint64_t hints_sent_early = 0;     // ... of which for a replica not answering in time
    uint64_t forward_fallbacks = 0;    // forwarded puts sent on to another replica after
                                       // the first did not answer within its deadline
    uint64_t standin_reads = 0;        // reads sent to stand-ins for replicas not answering
    uint64_t standin_answers = 0;      // ... whose answers counted toward R before the reply
    uint64_t resolved = 0;             // reads whose siblings a resolver made one
    uint64_t resolver_errors = 0;      // ... that a resolver failed (siblings returned)
    uint64_t write_back_failures = 0;  // resolved values whose write-back failed
  };

  Coordinator(NodeContext& ctx, Hooks hooks);

  // A client's GET (R of the replicas) and PUT or DEL (W of them).
  void CoordinateGet(std::string identity, const wire::RequestView& req);
  void CoordinatePut(std::string identity, const wire::RequestView& req);
  // A coordinator's REPLICA_GET (with a hint: what this node holds for the
  // key as a stand-in, from its hint store) and REPLICA_PUT (no hint); a GET
  // with the local flag (what this node's own engine holds).
  void ServeReplicaGet(std::string identity, const wire::RequestView& req);
  void ServeReplicaPut(std::string identity, const wire::RequestView& req);
  void ServeLocalGet(std::string identity, const wire::RequestView& req);

  const Stats& stats() const { return stats_; }

 private:
  using Clock = Loop::Clock;
  struct GetOp;
  struct PutOp;
  struct ForwardOp;

  // Sends op's read to target i (a replica, or a stand-in for owners[i]).
  void SendReplicaGet(const std::shared_ptr<GetOp>& op, size_t i);
  void OnGetAnswer(const std::shared_ptr<GetOp>& op, size_t target, Result<SiblingSet> set);
  // Asks the next healthy node of the extended list, not asked yet, to
  // answer for owner from its hints (once per owner unless again is set:
  // the stand-in asked before failed); false when there is none.
  // (owner by value: it may be an entry of op->targets, which this grows.)
  bool AskStandIn(const std::shared_ptr<GetOp>& op, std::string owner, bool again = false);
  // At the get's adaptive deadline: replicas not answered yet get stand-ins.
  void OnGetDeadline(const std::shared_ptr<GetOp>& op);
  // True when owner, a replica of op, answered this read.
  bool OwnerAnswered(const GetOp& op, const std::string& owner) const;
  // True when owner, a replica of op, failed this read or is taken for down.
  bool OwnerFailed(const GetOp& op, const std::string& owner) const;
  // Counts node i's answer toward R and merges it.
  void CountGetAnswer(const std::shared_ptr<GetOp>& op, size_t i, SiblingSet set);
  // Answers the client once R counted answers came, or with an error once
  // they cannot come.
  void MaybeAnswerGet(const std::shared_ptr<GetOp>& op);
  const std::string& NextWriteCoordinator(const GetOp& op) const;
  // Answers a client's get.
  void AnswerGet(const std::shared_ptr<GetOp>& op, bool found, std::vector<std::string> values,
                 std::string context);
  // The context a read answers: what it merged, and the next coordinator.
  std::string ReadContext(const GetOp& op) const;
  // Resolves a read's siblings with its key's resolver and writes the
  // result back (DESIGN.md 3.8); false when the read is answered as it is.
  struct WriteBack;
  bool Resolve(const std::shared_ptr<GetOp>& op);
  void FinishWriteBack(const std::shared_ptr<WriteBack>& wb, const std::string& written_context);
  void ReadRepair(const std::shared_ptr<GetOp>& op);
  // A write from a client to a key this node is no replica of.
  void Forward(const RequestStart& started, std::string identity, const wire::RequestView& req,
               std::vector<std::string> targets);
  // Sends the write to the next replica not tried yet (none taken for down);
  // with nothing left and nothing outstanding, finishes it.
  void ForwardNext(const std::shared_ptr<ForwardOp>& op);
  void OnForwardAnswer(const std::shared_ptr<ForwardOp>& op, size_t attempt,
                       Result<wire::Reply> rep);
  void FinishForward(const std::shared_ptr<ForwardOp>& op);
  void CoordinateAsStandIn(const RequestStart& started, std::string identity,
                           const wire::RequestView& req, std::vector<std::string> targets);
  // A put's state: the client, W capped at the replicas, the key's lists.
  std::shared_ptr<PutOp> NewPutOp(const RequestStart& started, std::string identity,
                                  const wire::RequestView& req, uint64_t key_hash, size_t replicas);
  // Sends the put's set to replica `target` (hint: the owner it stands in
  // for, "" when target is a replica itself); a failure hands the owner's
  // copy to the next healthy node of the extended list (sloppy quorum).
  void SendReplicaPut(const std::shared_ptr<PutOp>& op, const std::string& target,
                      const std::string& hint);
  // Picks the next healthy node of the extended list not written yet and
  // sends it the set with a hint for owner; false when there is none.
  bool SendHinted(const std::shared_ptr<PutOp>& op, const std::string& owner);
  // Hands owner's copy to a stand-in unless it was already (once per owner).
  void HandOff(const std::shared_ptr<PutOp>& op, const std::string& owner);
  // Runs at the put's adaptive deadline: replicas that have not answered
  // yet have their copies handed to stand-ins.
  void OnPutDeadline(const std::shared_ptr<PutOp>& op);
  void OnPutAck(const std::shared_ptr<PutOp>& op, const Status& s);
  // How long a request waits for node before treating it as down for that
  // request: its recent round trips, well under the request timeout.
  std::chrono::milliseconds DeadlineFor(const std::string& node, PeerLatency::Kind kind) const;
  void NoteLatency(Clock::time_point start);

  NodeContext& ctx_;
  Hooks hooks_;
  Stats stats_;
  PeerLatency latency_;
  ForwardDots forward_dots_;
  // Write-backs of resolved values in flight, by key.
  std::unordered_map<std::string, std::shared_ptr<WriteBack>> writing_back_;
  // Dot counters of stand-in writes: above any an earlier run used.
  std::atomic<uint64_t> standin_counter_;
};

// A get being coordinated: one entry per node asked, the replicas of the
// preference list first, then stand-ins.
struct Coordinator::GetOp {
  RequestStart started;
  std::string identity;  // the client
  uint64_t client_id = 0;
  std::string key;
  size_t replicas = 0;                             // targets[0, replicas) are the replicas
  std::vector<std::string> targets;                // node ids
  std::vector<std::string> owners;                 // per target: "" or the owner stood in for
  std::vector<std::optional<SiblingSet>> answers;  // per target, when it answered
  std::vector<bool> done;                          // per target: answered or failed
  std::vector<bool> held_back;  // per target: a stand-in's empty answer, not counted yet
  size_t needed = 0, ok = 0, outstanding = 0;
  std::string last_error;  // of the last node that failed
  bool replied = false;
  SiblingSet merged;
  size_t fastest = SIZE_MAX;          // index of the first replica that answered
  std::vector<std::string> extended;  // the key's extended preference list
  std::vector<std::string> stood;     // owners a stand-in was asked for
  Loop::TimerId deadline = 0;         // OnGetDeadline's timer, 0 when none
};

// A put (or delete) being coordinated.
struct Coordinator::PutOp {
  RequestStart started;
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
  std::vector<std::string> waiting;   // replicas written directly, not answered yet
  std::vector<std::string> handed;    // replicas whose copy went to a stand-in
  Loop::TimerId deadline = 0;         // OnPutDeadline's timer, 0 when none
};

// A write forwarded to the key's replicas, tried in turn; each gets the
// same request, its dot fixed, so two that both coordinate it make one
// version.
struct Coordinator::ForwardOp {
  RequestStart started;
  std::string identity;
  wire::Request req;                  // owned: kept while replicas are tried
  std::vector<std::string> targets;   // the replicas, in the order to try
  size_t next = 0;                    // the next target to try
  std::vector<bool> answered;         // per attempt made (attempt i went to targets[i'])
  std::vector<Loop::TimerId> timers;  // per attempt: its deadline
  size_t outstanding = 0;             // attempts sent and not answered
  bool replied = false;
  bool refused = false;               // a replica is none in its newer ring
  bool unknown = false;               // an attempt timed out: it may have been applied
  std::optional<wire::Reply> answer;  // a replica's error answer, given if nothing better comes
};

}  // namespace dynamo
