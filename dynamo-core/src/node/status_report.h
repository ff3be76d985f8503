// StatusReport: what STATUS and RING answer (DESIGN.md 3.2, docs/protocol.md).
//
// Reads the node's parts and builds the documented JSON documents (sent as
// msgpack maps): the node, its engine, members as this node sees them,
// ring, quorums, hints, anti-entropy, transfers and request counters; the
// ring with every partition's preference list, where each member listens
// and which ones this node takes for down; and the metrics
// (metrics_text.cc).
//
// Loop thread only; engine statistics are read on a worker (a remote engine
// may block).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dynamo/transport/message.h"
#include "node/node_context.h"

namespace dynamo {

class AntiEntropy;
class BackendPlugin;
class Coordinator;
class Handoff;
class Transfer;
class Rebuild;
class Migration;

class StatusReport {
 public:
  struct Parts {
    const BackendPlugin* plugin = nullptr;
    const Coordinator* coordinator = nullptr;
    const Handoff* handoff = nullptr;
    const AntiEntropy* anti_entropy = nullptr;
    const Transfer* transfer = nullptr;
    const Rebuild* rebuild = nullptr;
    const Migration* migration = nullptr;
  };

  StatusReport(NodeContext& ctx, Parts parts) : ctx_(ctx), parts_(parts) {}

  // The engine is another one now (a migration switched to it).
  void SetPlugin(const BackendPlugin* plugin) { parts_.plugin = plugin; }

  void ServeStatus(std::string identity, const wire::RequestView& req);
  void ServeRing(const std::string& identity, const wire::RequestView& req);

  wire::Reply StatusReply(uint64_t id, const std::string& engine_stats) const;

  // The metrics (DESIGN.md 3.9) in the Prometheus text format, given the
  // engine's statistics; RenderMetrics reads those on a worker first, then
  // calls done with the text on the loop.
  void RenderMetrics(std::function<void(std::string)> done);
  std::string MetricsText(const std::string& engine_stats) const;
  wire::Reply RingReply(uint64_t id) const;

 private:
  NodeContext& ctx_;
  Parts parts_;
  std::vector<std::function<void(std::string)>> metrics_waiting_;  // RenderMetrics
};

}  // namespace dynamo
