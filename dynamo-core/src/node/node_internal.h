// Definitions shared by the files that implement Node; not a public header.
#pragma once

#include <optional>

#include "dynamo/key_hash.h"
#include "node/node.h"

namespace dynamo {

// A get being coordinated: one entry per replica of the preference list.
struct Node::GetOp {
  Clock::time_point start = Clock::now();
  std::string identity;  // the client
  wire::Request req;
  std::vector<std::string> targets;                // node ids
  std::vector<std::optional<SiblingSet>> answers;  // per target, when it answered
  size_t needed = 0, ok = 0, failed = 0;
  std::string last_error;  // of the last replica that failed
  bool replied = false;
  SiblingSet merged;
  size_t fastest = SIZE_MAX;  // index of the first replica that answered
};

// A put (or delete) being coordinated.
struct Node::PutOp {
  Clock::time_point start = Clock::now();
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

// One anti-entropy exchange of a partition's tree with one peer replica.
struct Node::AeExchange {
  uint32_t partition = 0;
  std::string peer;
  std::string endpoint;
  uint64_t ring_version = 0;
  uint64_t repaired = 0;
};

// One partition to hand to nodes that became its replicas.
struct Node::TransferTask {
  uint32_t partition = 0;
  std::vector<std::string> targets;  // node ids
  bool drop_after = false;           // this node is no longer a replica
  bool quiet = false;                // a sweep for stray keys: log only when some are found
  // Progress: key-hash ranges still to send, the next at the back (once
  // started, the whole partition is the first).
  bool started = false;
  std::vector<HashRange> pending;
  uint64_t keys = 0;  // keys sent so far
};

}  // namespace dynamo
