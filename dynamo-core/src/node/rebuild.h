// Rebuild: refilling a replica that holds none of its data (a wiped disk, a
// memory engine after a restart, a new node in a dead one's place) by
// streaming each of its partitions whole from another replica, instead of
// repairing key by key through Merkle exchanges.
//
// A node whose engine holds no key when it starts writes <data-dir>/rebuild.
// Once it knows a ring that gives it partitions, the file lists those still
// to fetch; for each, a PULL asks another replica (a few partitions at a
// time, spread over the replicas) to stream it in TRANSFER batches, which
// are merged and synced here before they are acknowledged. The PULL is
// answered when the partition is done, and only then is the partition taken
// off the file, so a crash resumes at the partitions not yet finished.
//
// Loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "node/newest_file.h"
#include "node/node_context.h"

namespace dynamo {

class Transfer;

class Rebuild {
 public:
  enum class State { kIdle, kChecking, kWaitingForRing, kRunning };

  struct Progress {
    State state = State::kIdle;
    uint32_t partitions_total = 0;
    uint32_t partitions_done = 0;
    std::vector<std::pair<uint32_t, std::string>> in_flight;  // (partition, source node)
    // Received by TRANSFER since the rebuild began (once it is over: the
    // last rebuild's), and their keys' and encoded sets' bytes.
    uint64_t keys = 0;
    uint64_t bytes = 0;
    double elapsed_s = 0;
    double rate_bytes_per_s = 0;
    double eta_s = -1;       // -1: not known yet
    uint64_t completed = 0;  // rebuilds finished since the process started
  };

  Rebuild(NodeContext& ctx, const Transfer& transfer);

  // At start: resumes the rebuild a marker names, or begins one when the
  // engine holds no key.
  void Start();
  // Starts pulls while fewer than --rebuild-streams are out (each
  // membership round, and when a pull ends). Each replica streams one
  // partition at a time, so a few in flight, spread over the replicas,
  // keep every source busy.
  void Tick();
  // The partition waits for its stream (anti-entropy leaves it alone).
  bool Pending(uint32_t partition) const;
  Progress progress() const;

  static const char* StateName(State s);

 private:
  void Plan();
  void Pull(uint32_t partition);
  void Done(uint32_t partition);
  void Failed(uint32_t partition);
  void SaveMarker();

  NodeContext& ctx_;
  const Transfer& transfer_;
  State state_ = State::kIdle;
  std::deque<uint32_t> todo_;
  struct InFlight {
    std::string source;
    uint64_t generation = 0;  // which pull an answer is for
    Loop::Clock::time_point sent{};
  };
  std::map<uint32_t, InFlight> in_flight_;  // by partition
  uint64_t pulls_ = 0;
  std::map<uint32_t, uint32_t> attempts_;
  std::map<uint32_t, Loop::Clock::time_point> retry_at_;
  uint32_t total_ = 0;
  uint32_t done_ = 0;
  uint64_t completed_ = 0;
  Progress last_;  // of the last rebuild finished
  uint64_t keys_at_start_ = 0, bytes_at_start_ = 0;
  std::chrono::steady_clock::time_point started_{};
  NewestFile marker_;  // <data-dir>/rebuild
};

}  // namespace dynamo
