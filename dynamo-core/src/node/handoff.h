// Handoff: hinted handoff (paper 4.6).
//
// A node standing in for a down replica keeps the write in its hint store
// (durable, apart from its own data) and hands it to the owner once the
// owner answers again, deleting it only after the owner acknowledged it.
// Hints for a node that left the ring go to the key's current replicas
// instead. The store is read and written on workers only: its appends fsync
// under its lock, which the loop must never wait for.
//
// Loop thread only.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "dynamo/transport/message.h"
#include "handoff/hint_store.h"
#include "node/node_context.h"

namespace dynamo {

class Handoff {
 public:
  // The hint store as last read (status shows it; the loop never reads the
  // store itself).
  struct Snapshot {
    std::map<std::string, size_t> by_target;
    size_t pending = 0;
    uint64_t bytes = 0, dropped = 0;
  };

  explicit Handoff(NodeContext& ctx);

  // Reads the store once, at start (before the loop runs).
  void LoadSnapshot();
  // Arms the handoff timer: every --handoff-interval-ms, first at once.
  void Start();

  // A stand-in's copy (REPLICA_PUT naming the owner it stands in for).
  void ServeHintedPut(std::string identity, const wire::RequestView& req);
  // A hint was stored by this node's coordinator (a write no replica took).
  void OnHintStored();
  // Reads the store on a worker, then (plan) hands hints to their owners.
  void Tick(bool plan = true);
  // No hint left and none being handled: a leaving node may go.
  bool Idle() const { return snapshot_.pending == 0 && !scan_running_ && busy_.empty(); }

  const Snapshot& snapshot() const { return snapshot_; }
  uint64_t stored() const { return stored_; }
  uint64_t delivered() const { return delivered_; }

 private:
  using Delivered = std::vector<std::pair<std::string, uint64_t>>;
  // Reads the store's counts (it takes the store's lock: worker or start).
  Snapshot ReadSnapshot() const;
  void Timer();
  void Plan();
  void ReadHints(const std::string& target, bool reroute_all);
  void Continue(const std::string& target);
  void DeliverHints(const std::string& target, std::vector<HintStore::Hint> hints);
  void RerouteHints(const std::string& target, std::vector<HintStore::Hint> hints);
  void ForgetHints(const std::string& target, std::shared_ptr<Delivered> done,
                   const std::string& how);

  NodeContext& ctx_;
  std::unordered_map<std::string, Loop::Clock::time_point> step_started_;  // per target
  std::unordered_set<std::string> busy_;  // targets with a delivery in flight
  bool scan_running_ = false;
  bool scan_again_ = false;
  Snapshot snapshot_;
  uint64_t stored_ = 0;     // hinted writes this node accepted
  uint64_t delivered_ = 0;  // hints acknowledged by their owners
};

}  // namespace dynamo
