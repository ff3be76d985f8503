// SimCluster: real nodes (every actor, the memory engine, real hint stores
// and state files in a temporary folder) on one SimNetwork, driven by the
// test on a virtual clock. What the actor tests stand on.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "dynamo/log.h"
#include "dynamo/transport/sim_loop.h"
#include "gtest/gtest.h"
#include "node/anti_entropy.h"
#include "node/coordinator.h"
#include "node/handoff.h"
#include "node/local_store.h"
#include "node/membership_actor.h"
#include "node/node.h"
#include "node/node_context.h"
#include "node/transfer.h"

namespace dynamo::test {

using namespace std::chrono_literals;

class SimCluster {
 public:
  // Options every node starts with; tests change them before AddNode.
  NodeOptions defaults;

  explicit SimCluster(uint64_t seed = 1) : net(seed) {
    log::SetLevel(log::Level::kError);
    dir_ = std::filesystem::temp_directory_path() /
           ("dynamo-sim-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    defaults.backend = "memory";
    defaults.plugin_dir = DYNAMO_TEST_PLUGIN_DIR;
    defaults.partitions = 16;
    defaults.gossip_interval_ms = 100;
    defaults.failure_timeout_ms = 500;
    defaults.request_timeout_ms = 200;
    defaults.handoff_interval_ms = 100;
    defaults.anti_entropy_interval_ms = 0;  // tests that want it turn it on
  }
  ~SimCluster() {
    nodes.clear();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  static std::string Endpoint(int i) { return "tcp://127.0.0.1:" + std::to_string(20000 + i); }
  static std::string Id(int i) { return "node" + std::to_string(i); }

  // Node i (1-based); the first founds the cluster, the others join it.
  Node& AddNode() {
    const int i = static_cast<int>(nodes.size()) + 1;
    NodeOptions o = defaults;
    o.node_id = Id(i);
    o.listen = Endpoint(i);
    o.data_dir = (dir_ / o.node_id).string();
    if (i > 1) o.seeds = {Endpoint(1)};
    loops.push_back(net.AddLoop(o.listen, Loop::EngineCalls::kAll));
    options_.push_back(o);
    nodes.push_back(std::make_unique<Node>(o));
    Status s = nodes.back()->Start(loops.back());
    EXPECT_TRUE(s.ok()) << s.ToString();
    nodes.back()->StartActors();
    return *nodes.back();
  }

  // Node i, crashed, starts again on its data folder (a memory engine
  // comes back empty).
  Node& Restart(int i) {
    nodes.at(i - 1) = std::make_unique<Node>(options_.at(i - 1));
    Status s = nodes.at(i - 1)->Start(loops.at(i - 1));
    EXPECT_TRUE(s.ok()) << s.ToString();
    nodes.at(i - 1)->StartActors();
    return *nodes.at(i - 1);
  }

  // Starts n nodes and runs until every node's ring holds all of them.
  void Start(int n) {
    for (int i = 0; i < n; ++i) AddNode();
    ASSERT_TRUE(RunUntil([&] { return Converged(); }, 30s)) << "the ring did not converge";
  }

  bool Converged() {
    const Ring& first = node(1).context().ring();
    for (auto& n : nodes) {
      if (!n) continue;  // crashed
      const Ring& r = n->context().ring();
      if (!(r == first) || r.nodes().size() != nodes.size()) return false;
    }
    return true;
  }

  // Runs the network in steps of 10 ms until done() or the limit.
  template <typename F>
  bool RunUntil(F done, std::chrono::milliseconds limit) {
    for (auto waited = 0ms; waited < limit; waited += 10ms) {
      if (done()) return true;
      net.RunFor(10ms);
    }
    return done();
  }

  // Node i crashes: what its loop had armed is dropped and the node is
  // destroyed (its engine's memory with it); the network goes on.
  void Crash(int i) {
    loops.at(i - 1)->Crash();
    nodes.at(i - 1).reset();
  }

  Node& node(int i) { return *nodes.at(i - 1); }
  SimLoop& loop(int i) { return *loops.at(i - 1); }

  // A client request to node i; runs until its reply comes (or `limit`).
  // Returns the reply; an ERROR reply with message "no reply" otherwise.
  wire::Reply Call(int i, wire::Request req, std::chrono::milliseconds limit = 5s) {
    const std::string client = "client-" + std::to_string(++client_counter_);
    req.id = client_counter_;
    net.ClientSend(client, Endpoint(i), req);
    std::vector<wire::Reply> got;
    RunUntil(
        [&] {
          for (auto& r : net.TakeReplies(client)) got.push_back(std::move(r));
          return !got.empty();
        },
        limit);
    if (got.empty()) return wire::Reply::Error(req.id, Status::Timeout("no reply"));
    return got.front();
  }

  wire::Reply Put(int i, const std::string& key, const std::string& value,
                  const std::string& context = "", uint32_t w = 0) {
    wire::Request req;
    req.type = wire::MsgType::kPut;
    req.key = key;
    req.value = value;
    req.context = context;
    req.quorum = w;
    return Call(i, std::move(req));
  }

  wire::Reply Get(int i, const std::string& key, uint32_t r = 0) {
    wire::Request req;
    req.type = wire::MsgType::kGet;
    req.key = key;
    req.quorum = r;
    return Call(i, std::move(req));
  }

  // What node i's own engine holds for key (empty set: nothing).
  SiblingSet Local(int i, const std::string& key) {
    auto set = node(i).context().store.Read(key);
    EXPECT_TRUE(set.ok()) << set.status().ToString();
    return set.ok() ? std::move(set).value() : SiblingSet();
  }

  SimNetwork net;
  std::vector<SimLoop*> loops;
  std::vector<std::unique_ptr<Node>> nodes;

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::vector<NodeOptions> options_;
  uint64_t client_counter_ = 0;
};

// The live values of a set, sorted.
inline std::vector<std::string> Values(const SiblingSet& set) {
  std::vector<std::string> out;
  for (std::string_view v : set.LiveValues()) out.emplace_back(v);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace dynamo::test
