// Transfer: moving partitions whose owners changed (paper 4.9, 6.2).
//
// When ownership changes, the nodes that stop replicating a partition send
// its keys to the nodes that start, and drop them only after every new
// replica acknowledged them (and only if unchanged since). One hand-off at
// a time, in slices small enough to hold in memory, sent in batches; a
// failed batch retries the partition later from the slice it stopped in.
// Partitions pulled by rebuilding replicas (PULL) stream beside it, up to
// kPullsAtOnce at a time: a rebuild's partitions are small and many, and
// one at a time left the sender idle while each batch was merged.
// Keys held here in partitions this node does not replicate (a hand-off cut
// short by a crash) are swept home the same way. Also serves TRANSFER
// batches sent here (hint deliveries, anti-entropy pushes, hand-offs).
//
// Loop thread only.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dynamo/key_hash.h"
#include "dynamo/ring.h"
#include "dynamo/transport/message.h"
#include "node/node_context.h"

namespace dynamo {

class Transfer {
 public:
  struct Hooks {
    // No hint is left to hand over (a leaving node waits for that too).
    std::function<bool()> handoff_idle;
    // A leaving node handed everything off: it is out of the cluster.
    std::function<void()> on_left;
  };

  Transfer(NodeContext& ctx, Hooks hooks);

  // Queues the partitions this node must hand over after the ring changed.
  void Plan(const Ring& old_ring, const Ring& new_ring);
  // Queues a sweep of every partition not replicated here.
  void PlanOrphans();
  // Starts queued transfers: a hand-off unless one is running, pulls while
  // fewer than kPullsAtOnce are.
  void Tick();
  static constexpr size_t kPullsAtOnce = 4;
  void ServeTransfer(std::string identity, const wire::RequestView& req);
  // A rebuilding replica asks for a partition (PULL): it is streamed to it
  // ahead of queued hand-offs, and the PULL is acknowledged when every batch
  // was. A pull for what is already being handed to the requester waits for
  // that hand-off instead of sending the partition twice.
  void ServePull(std::string identity, const wire::RequestView& req);

  // Sent to new replicas and acknowledged by all of them: keys, their bytes
  // (keys and encoded sets), partitions finished.
  uint64_t keys_transferred() const { return keys_transferred_; }
  uint64_t bytes_transferred() const { return bytes_transferred_; }
  uint64_t partitions_transferred() const { return partitions_transferred_; }
  // Taken from TRANSFER batches (hand-offs, hint deliveries, repairs).
  uint64_t keys_received() const { return keys_received_; }
  uint64_t bytes_received() const { return bytes_received_; }
  // The most TRANSFER batches of one slice that were unacknowledged at once.
  size_t max_batches_in_flight() const { return max_batches_in_flight_; }
  // The most pulls that streamed at once.
  size_t max_pulls_at_once() const { return max_pulls_at_once_; }
  // When the last TRANSFER batch was taken (or refused).
  Loop::Clock::time_point last_received() const { return last_received_; }
  // Queued and running transfers (sweeps count once they found keys).
  size_t pending() const;
  // The partition being sent now, if any; of several, the one that began
  // first.
  struct Sending {
    uint32_t partition = 0;
    std::vector<std::string> to;
    bool pull = false;  // for a rebuilding replica's PULL (else a hand-off)
    uint64_t keys = 0, bytes = 0;
    double elapsed_s = 0;
    // How much of the partition is done (0 to 1): the share of its key-hash
    // range in finished slices, plus the current slice's share times the
    // part of its keys acknowledged (keys are spread evenly by their MD5).
    double done = 0;
    // The time left at the pace so far; below 0 while nothing is done.
    double eta_s = -1;
  };
  std::optional<Sending> sending() const;

 private:
  struct Task;
  using Items = std::vector<std::pair<std::string, std::string>>;
  void ScanSlice(std::shared_ptr<Task> task);
  struct Slice;
  void SendBatches(std::shared_ptr<Task> task, std::shared_ptr<Slice> slice);
  void SliceFailed(const std::shared_ptr<Task>& task);
  void AnswerPulls(Task& task, const wire::Reply& answer);
  void DropSlice(std::shared_ptr<Task> task, std::shared_ptr<Items> items);
  void NextSlice(const std::shared_ptr<Task>& task);
  void Retarget(const std::shared_ptr<Task>& task);
  void Finish(std::shared_ptr<Task> task);

  NodeContext& ctx_;
  Hooks hooks_;
  std::deque<std::shared_ptr<Task>> queue_;
  std::vector<std::shared_ptr<Task>> running_;  // in the order they began
  bool MayStart(const Task& task) const;
  void Stopped(const std::shared_ptr<Task>& task);  // takes it out of running_
  uint64_t keys_transferred_ = 0;
  uint64_t bytes_transferred_ = 0;
  uint64_t partitions_transferred_ = 0;
  uint64_t keys_received_ = 0;
  uint64_t bytes_received_ = 0;
  size_t max_batches_in_flight_ = 0;
  size_t max_pulls_at_once_ = 0;
  Loop::Clock::time_point last_received_{};
  uint64_t round_keys_ = 0;  // since the queue last ran dry
  uint64_t round_partitions_ = 0;
};

// One partition to hand to nodes that became its replicas.
struct Transfer::Task {
  uint32_t partition = 0;
  std::vector<std::string> targets;  // node ids
  bool drop_after = false;           // this node is no longer a replica
  bool quiet = false;                // a sweep for stray keys: log only when some are found
  // Progress: key-hash ranges still to send, the next at the back (once
  // started, the whole partition is the first).
  bool started = false;
  std::vector<HashRange> pending;
  uint64_t keys = 0;   // keys sent so far
  uint64_t bytes = 0;  // and their bytes (keys and encoded sets)
  // Progress through the partition's key-hash range (Sending::done): the
  // share of it in finished slices; the current slice's share, keys and
  // keys acknowledged.
  double done_share = 0;
  double slice_share = 0;
  size_t slice_keys = 0, slice_acked = 0;
  // The current slice is over: finished (its share counts as done) or
  // failed (it is scanned and sent again).
  void EndSlice(bool finished) {
    if (finished) done_share += slice_share;
    slice_share = 0;
    slice_keys = slice_acked = 0;
  }
  Loop::Clock::time_point began{};
  // This node took a new name for its dots before its first drop (and it
  // coordinates none of the partition's keys while it keeps dropping).
  bool renamed = false;
  // Streamed for a PULL: not retried here (the puller asks again), never
  // sent to anyone else.
  bool pull = false;
  // PULL requests answered when the partition is done: (identity, id).
  std::vector<std::pair<std::string, uint64_t>> pullers;
};

}  // namespace dynamo
