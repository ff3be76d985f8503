// Definitions shared by the files that implement Node; not a public header.
#pragma once

#include <zmq.hpp>

#include "node/node.h"
#include "node/worker_pool.h"

namespace dynamo {

struct Node::Sockets {
  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
};

template <typename T>
void Node::OnEngine(std::function<T()> work, std::function<void(T)> then) {
  if (inline_engine_) {
    then(work());
    return;
  }
  workers_->Submit([this, work = std::move(work), then = std::move(then)]() mutable {
    auto result = std::make_shared<T>(work());
    Post([then = std::move(then), result]() mutable { then(std::move(*result)); });
  });
}

// A get being coordinated: one entry per replica of the preference list.
struct Node::GetOp {
  std::string identity;  // the client
  wire::Request req;
  std::vector<std::string> targets;                // node ids
  std::vector<std::optional<SiblingSet>> answers;  // per target, when it answered
  size_t needed = 0, ok = 0, failed = 0;
  bool replied = false;
  SiblingSet merged;
};

// A put (or delete) being coordinated.
struct Node::PutOp {
  std::string identity;
  uint64_t client_id = 0;
  std::string context;  // the new version's context, for the reply
  size_t targets = 0, needed = 0, acks = 0, failed = 0;
  bool replied = false;
};

// One partition to hand to nodes that became its replicas.
struct Node::TransferTask {
  uint32_t partition = 0;
  std::vector<std::string> targets;  // node ids
  bool drop_after = false;           // this node is no longer a replica
};

}  // namespace dynamo
