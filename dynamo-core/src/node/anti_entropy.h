// AntiEntropy: replica synchronisation with Merkle trees (paper 4.7).
//
// Replicas of a partition compare Merkle trees top-down and exchange only
// the keys whose version sets differ, both ways. A background task: one
// partition exchange at a time with one healthy peer replica, a pause of
// --anti-entropy-interval-ms between exchanges, repairs paced to
// --anti-entropy-rate keys per second, and none while the moving average of
// client request latency is above --anti-entropy-yield-ms (paper 6.5).
// Trees follow ownership: built for replicated partitions on first use,
// dropped for the others. Also serves peers' TREE requests.
//
// Loop thread only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dynamo/transport/message.h"
#include "node/node_context.h"

namespace dynamo {

class AntiEntropy {
 public:
  struct Hooks {
    // Once per full pass over the partitions (stray keys go home then).
    std::function<void()> on_round;
    // The partition is being rebuilt by streaming (node/rebuild.h): no
    // exchange for it, from here or asked of here, until it has arrived.
    std::function<bool(uint32_t partition)> rebuilding;
  };
  struct Stats {
    uint64_t exchanges = 0;             // exchanges finished
    uint64_t keys_repaired = 0;         // keys either side was sent
    uint64_t partitions_differing = 0;  // exchanges whose roots differed
    uint64_t rounds = 0;                // full passes
    uint64_t yields = 0;                // looks postponed for client load
  };

  AntiEntropy(NodeContext& ctx, Hooks hooks);

  bool enabled() const { return ctx_.options.anti_entropy_interval_ms > 0; }
  // The first look, at once (when enabled).
  void Start();
  // Builds trees for the partitions replicated here, drops the others'.
  void SyncTreesWithRing();
  // A client request was answered after `ms`.
  void NoteForegroundLatency(double ms);
  void ServeTree(std::string identity, const wire::RequestView& req);

  const Stats& stats() const { return stats_; }

 private:
  struct Exchange;
  void Tick();
  // The next look, `delay` from now.
  void Schedule(std::chrono::milliseconds delay);
  void CompareRoot(std::shared_ptr<Exchange> ex);
  void CompareLeaves(std::shared_ptr<Exchange> ex, std::vector<uint32_t> inner);
  void CompareEntries(std::shared_ptr<Exchange> ex, std::vector<uint32_t> leaves);
  void Repair(std::shared_ptr<Exchange> ex, std::vector<uint32_t> leaves,
              std::vector<std::pair<std::string, uint64_t>> theirs);
  void Done(const std::shared_ptr<Exchange>& ex, const std::string& problem);

  NodeContext& ctx_;
  Hooks hooks_;
  Stats stats_;
  Loop::TimerId timer_ = 0;
  bool running_ = false;
  uint32_t next_partition_ = 0;
  double fg_latency_ms_ = 0;  // moving average of client request latency
  uint64_t fg_samples_ = 0;   // client requests finished since the last look
};

// One exchange of a partition's tree with one peer replica.
struct AntiEntropy::Exchange {
  Loop::Clock::time_point started;
  uint32_t partition = 0;
  std::string peer;
  std::string endpoint;
  uint64_t ring_version = 0;
  uint64_t repaired = 0;
};

}  // namespace dynamo
