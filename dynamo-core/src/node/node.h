// Node: one dynamod process (DESIGN.md 3.1).
//
// One network loop owns the ROUTER socket on --listen; requests are decoded
// and checked there, and their engine work runs on a WorkerPool (or inline
// when the engine declares it never blocks). Workers hand finished replies
// back through a queue and an eventfd that the loop polls, so only the loop
// thread ever touches a socket. Not thread-safe: Start and Run from one
// thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dynamo/status.h"
#include "dynamo/transport/message.h"
#include "node/options.h"

namespace dynamo {

class LocalStore;
class WorkerPool;
class BackendPlugin;

class Node {
 public:
  explicit Node(NodeOptions options);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Creates the data folder, loads and opens the engine, binds --listen.
  // The error is one line fit for stderr.
  Status Start();

  // Serves until stop_fd (a signalfd, or any fd) becomes readable; then
  // finishes in-flight work, syncs the engine and returns.
  Status Run(int stop_fd);

 private:
  struct Completion {
    std::string identity;
    std::string frame;
  };

  void OnRequestFrame(std::string identity, std::string_view frame);
  void Dispatch(std::string identity, wire::Request req);
  void Complete(std::string identity, const wire::Reply& reply);  // any thread
  void DrainCompletions();
  wire::Reply Execute(const wire::Request& req);  // engine work
  wire::Reply ExecuteGet(const wire::Request& req);
  wire::Reply ExecuteWrite(const wire::Request& req);
  wire::Reply ExecuteStatus(const wire::Request& req);
  Status Validate(const wire::Request& req) const;

  NodeOptions options_;
  std::shared_ptr<BackendPlugin> plugin_;
  std::unique_ptr<LocalStore> store_;
  std::unique_ptr<WorkerPool> workers_;
  bool inline_engine_ = false;

  struct Sockets;  // ZeroMQ context and ROUTER, loop thread only
  std::unique_ptr<Sockets> sockets_;
  int event_fd_ = -1;

  std::mutex completions_mu_;
  std::vector<Completion> completions_;  // guarded by completions_mu_

  // Counters shown by status.
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> malformed_{0};
};

}  // namespace dynamo
