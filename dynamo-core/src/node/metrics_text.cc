// The node's metrics in the Prometheus text format (DESIGN.md 3.9); every
// name is listed in docs/operations.md, "Metrics".
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>

#include "dynamo/backend.h"
#include "node/anti_entropy.h"
#include "node/coordinator.h"
#include "node/handoff.h"
#include "node/local_store.h"
#include "node/request_metrics.h"
#include "node/status_report.h"
#include "node/transfer.h"

#ifndef DYNAMO_VERSION
#define DYNAMO_VERSION "unknown"
#endif

namespace dynamo {

namespace {

using Label = std::string;

Label Labels(std::initializer_list<std::pair<const char*, std::string_view>> pairs) {
  Label out;
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) out += ",";
    out += PromWriter::Label(name, value);
  }
  return out;
}

void Counter(PromWriter& w, const char* name, const char* help, uint64_t value) {
  w.Family(name, "counter", help);
  w.Sample(name, "", value);
}

void Gauge(PromWriter& w, const char* name, const char* help, double value) {
  w.Family(name, "gauge", help);
  w.Sample(name, "", value);
}

// A number from the engine's statistics document, if it has one.
bool EngineNumber(const nlohmann::json& stats, const char* field, uint64_t* out) {
  if (!stats.is_object()) return false;
  auto it = stats.find(field);
  if (it == stats.end() || !it->is_number_unsigned()) return false;
  *out = it->get<uint64_t>();
  return true;
}

}  // namespace

void StatusReport::RenderMetrics(std::function<void(std::string)> done) {
  // Scrapes that come while the engine's statistics are being read share
  // that reading: a slow engine never has them pile up.
  metrics_waiting_.push_back(std::move(done));
  if (metrics_waiting_.size() > 1) return;
  // Engine statistics may block (a remote engine): read on a worker.
  auto stats = [this]() -> std::string {
    auto r = ctx_.store.backend().Stats();
    return r.ok() ? *r : std::string();
  };
  ctx_.loop.OnEngineBulk<std::string>(stats, [this](std::string engine) {
    const std::string text = MetricsText(engine);
    for (auto& waiting : std::exchange(metrics_waiting_, {})) waiting(text);
  });
}

std::string StatusReport::MetricsText(const std::string& engine_stats) const {
  PromWriter w;
  const Ring& ring = ctx_.cluster.ring();

  w.Family("dynamo_node_info", "gauge", "This node: its name, endpoint, engine and version (1).");
  w.Sample("dynamo_node_info",
           Labels({{"node_id", ctx_.options.node_id},
                   {"endpoint", ctx_.options.listen},
                   {"backend", parts_.plugin->name()},
                   {"version", DYNAMO_VERSION}}),
           uint64_t{1});

  // ---- client and replica requests
  const RequestMetrics& rm = ctx_.request_metrics;
  constexpr MetricOp kOps[] = {MetricOp::kGet, MetricOp::kPut, MetricOp::kDel};
  constexpr MetricRole kRoles[] = {MetricRole::kCoordinator, MetricRole::kReplica};
  w.Family("dynamo_requests_total", "counter",
           "Gets, puts and deletes answered, by operation, role and result.");
  for (MetricOp op : kOps) {
    for (MetricRole role : kRoles) {
      if (op == MetricOp::kDel && role == MetricRole::kReplica) continue;  // replicas store sets
      for (size_t r = 0; r < RequestMetrics::kResults; ++r) {
        const auto result = static_cast<MetricResult>(r);
        w.Sample("dynamo_requests_total",
                 Labels({{"op", MetricOpName(op)},
                         {"role", MetricRoleName(role)},
                         {"result", MetricResultName(result)}}),
                 rm.count(op, role, result));
      }
    }
  }
  w.Family("dynamo_request_duration_seconds", "histogram",
           "Time from taking a get, put or delete to answering it, by operation and role.");
  for (MetricOp op : kOps) {
    for (MetricRole role : kRoles) {
      if (op == MetricOp::kDel && role == MetricRole::kReplica) continue;
      w.Histogram("dynamo_request_duration_seconds",
                  Labels({{"op", MetricOpName(op)}, {"role", MetricRoleName(role)}}),
                  rm.latency(op, role), 1e6);
    }
  }
  Counter(w, "dynamo_messages_received_total",
          "Requests taken (each request of a batch counts), of every type.", ctx_.requests.load());
  Counter(w, "dynamo_error_replies_total", "Error replies sent.", ctx_.errors.load());
  Counter(w, "dynamo_malformed_messages_total", "Messages that could not be decoded.",
          ctx_.malformed.load());
  Counter(w, "dynamo_refused_requests_total",
          "Requests refused because the sender's key lacks the role (CURVE).", ctx_.refused.load());
  const Coordinator::Stats& co = parts_.coordinator->stats();
  Counter(w, "dynamo_puts_forwarded_total",
          "Sends of writes this node is no replica of to a replica of the key.", co.forwarded);
  Counter(
      w, "dynamo_forward_fallbacks_total",
      "Of those, sends to another replica: the one tried before did not answer in time or refused.",
      co.forward_fallbacks);
  Counter(w, "dynamo_standin_reads_total", "Reads sent to stand-ins for silent replicas.",
          co.standin_reads);
  Counter(w, "dynamo_standin_reads_counted_total",
          "Stand-in answers that counted toward R before the reply.", co.standin_answers);
  Counter(w, "dynamo_resolver_resolved_total",
          "Reads whose siblings a resolver made one value (written back).", co.resolved);
  Counter(w, "dynamo_resolver_errors_total",
          "Reads whose resolver failed; their siblings were returned unresolved.",
          co.resolver_errors);
  Counter(w, "dynamo_resolver_write_back_failures_total",
          "Resolved values whose write-back failed (the read still returned them).",
          co.write_back_failures);

  // ---- membership and ring
  w.Family("dynamo_members", "gauge", "Members by state, as this node sees them.");
  std::map<std::string, uint64_t> by_state = {
      {"up", 0}, {"down", 0}, {"joining", 0}, {"leaving", 0}};
  for (const auto& [mid, m] : ctx_.cluster.members()) {
    if (m.state == MemberState::kRemoved) continue;
    const bool down = mid != ctx_.options.node_id && m.state == MemberState::kUp &&
                      ctx_.IsDownEndpoint(m.endpoint);
    ++by_state[down ? "down" : MemberStateName(m.state)];
  }
  for (const auto& [state, count] : by_state) {
    w.Sample("dynamo_members", Labels({{"state", state}}), count);
  }
  Gauge(w, "dynamo_ring_version", "Version of this node's ring.",
        static_cast<double>(ring.version()));
  Gauge(w, "dynamo_partitions", "Partitions of the ring (Q).",
        ring.empty() ? ctx_.options.partitions : ring.partitions());
  Gauge(w, "dynamo_partitions_owned", "Partitions this node is the first replica of.",
        ring.empty() ? 0 : ring.OwnedBy(ctx_.options.node_id));
  const uint32_t n = ring.empty() ? ctx_.options.replicas : ring.replicas();
  Gauge(w, "dynamo_under_replicated", "1 when the ring has fewer nodes than N.",
        ring.empty() || ring.nodes().size() < n ? 1 : 0);

  // ---- hinted handoff
  const Handoff::Snapshot& hints = parts_.handoff->snapshot();
  Gauge(w, "dynamo_hints_pending", "Hinted keys held for other nodes.",
        static_cast<double>(hints.pending));
  Gauge(w, "dynamo_hints_bytes", "Bytes of the hint store.", static_cast<double>(hints.bytes));
  Counter(w, "dynamo_hints_stored_total", "Hinted writes stored here.", parts_.handoff->stored());
  Counter(w, "dynamo_hints_delivered_total", "Hints delivered to their owners (or handed on).",
          parts_.handoff->delivered());
  Counter(w, "dynamo_hints_dropped_total", "Hints dropped: the store was full.", hints.dropped);
  Counter(w, "dynamo_hints_sent_total", "Copies this coordinator sent to stand-ins with a hint.",
          co.hints_sent);
  Counter(w, "dynamo_hints_sent_early_total",
          "... of which for a replica that missed its deadline (not taken for down).",
          co.hints_sent_early);

  // ---- repair
  const AntiEntropy::Stats& ae = parts_.anti_entropy->stats();
  w.Family("dynamo_keys_repaired_total", "counter",
           "Keys repaired: stale copies anti-entropy fixed, stale replicas read repair sent the "
           "reconciled set.");
  w.Sample("dynamo_keys_repaired_total", Labels({{"by", "anti_entropy"}}), ae.keys_repaired);
  w.Sample("dynamo_keys_repaired_total", Labels({{"by", "read_repair"}}), co.read_repairs);
  Counter(w, "dynamo_anti_entropy_exchanges_total", "Partition exchanges with a replica.",
          ae.exchanges);
  Counter(w, "dynamo_anti_entropy_differing_total", "Exchanges whose Merkle roots differed.",
          ae.partitions_differing);
  Counter(w, "dynamo_anti_entropy_rounds_total", "Rounds over every partition.", ae.rounds);
  Counter(w, "dynamo_anti_entropy_yields_total",
          "Exchanges put off because clients were slower than --anti-entropy-yield-ms.", ae.yields);

  // ---- partition transfers
  const Transfer& tr = *parts_.transfer;
  w.Family("dynamo_transfer_keys_total", "counter",
           "Keys of partitions sent to new or rebuilding replicas (sent, acknowledged) and "
           "taken from TRANSFER batches (received).");
  w.Sample("dynamo_transfer_keys_total", Labels({{"direction", "sent"}}), tr.keys_transferred());
  w.Sample("dynamo_transfer_keys_total", Labels({{"direction", "received"}}), tr.keys_received());
  w.Family("dynamo_transfer_bytes_total", "counter",
           "Bytes (keys and encoded versions) of the same.");
  w.Sample("dynamo_transfer_bytes_total", Labels({{"direction", "sent"}}), tr.bytes_transferred());
  w.Sample("dynamo_transfer_bytes_total", Labels({{"direction", "received"}}), tr.bytes_received());
  Counter(w, "dynamo_transfer_partitions_total", "Partitions sent to new or rebuilding replicas.",
          tr.partitions_transferred());
  Gauge(w, "dynamo_transfers_pending", "Partition transfers queued or running.",
        static_cast<double>(tr.pending()));

  // ---- admission control
  const BackgroundShare& bg = ctx_.background;
  Gauge(w, "dynamo_background_share",
        "Share of time background work (anti-entropy, hint delivery, transfers) may take.",
        bg.share());
  Gauge(w, "dynamo_background_target_p99_seconds",
        "--background-target-p99-ms (0: admission control off).", bg.target_p99_ms() / 1e3);
  w.Family("dynamo_foreground_p99_seconds", "gauge",
           "p99 of client requests in the last window of admission control (0: none served).");
  w.Sample("dynamo_foreground_p99_seconds", Labels({{"kind", "read"}}),
           bg.last_p99_ms(false) / 1e3);
  w.Sample("dynamo_foreground_p99_seconds", Labels({{"kind", "write"}}),
           bg.last_p99_ms(true) / 1e3);
  Counter(w, "dynamo_background_cuts_total",
          "Windows over the target: the share halved, or held at its floor.", bg.cuts());
  w.Family("dynamo_background_paused_seconds_total", "counter",
           "Time admission control added to the pauses between steps of background work.");
  w.Sample("dynamo_background_paused_seconds_total", "", bg.paused_ms() / 1e3);

  // ---- the engine
  const nlohmann::json engine =
      nlohmann::json::parse(engine_stats, nullptr, /*allow_exceptions=*/false);
  uint64_t value = 0;
  if (EngineNumber(engine, "keys", &value)) {
    Gauge(w, "dynamo_engine_keys", "Keys the engine holds (tombstones included).",
          static_cast<double>(value));
  }
  if (EngineNumber(engine, "bytes", &value) || EngineNumber(engine, "live_bytes", &value)) {
    Gauge(w, "dynamo_engine_bytes", "Bytes of the engine's live data, as the engine counts them.",
          static_cast<double>(value));
  }
  Counter(w, "dynamo_engine_calls_retried_total",
          "Engine calls tried on the loop that had to wait for a device and went to a worker.",
          ctx_.loop.engine_retries());

  // ---- peers
  const Loop::PeerTraffic traffic = ctx_.loop.peer_traffic();
  Counter(w, "dynamo_peer_requests_total", "Requests sent to other nodes.", traffic.requests);
  Counter(w, "dynamo_peer_messages_total", "Messages sent to other nodes (a batch is one).",
          traffic.frames);
  w.Family("dynamo_peer_batch_size", "histogram", "Requests per message sent to another node.");
  w.Histogram("dynamo_peer_batch_size", "", traffic.batch_sizes, 1);
  Counter(w, "dynamo_peer_replies_total", "Replies received from other nodes in time.",
          traffic.replies);
  Counter(w, "dynamo_peer_timeouts_total", "Requests to other nodes that got no reply in time.",
          traffic.timeouts);
  Counter(w, "dynamo_peer_send_failures_total", "Requests to other nodes that could not be sent.",
          traffic.send_failures);
  return w.Take();
}

}  // namespace dynamo
