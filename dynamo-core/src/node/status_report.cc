#include "node/status_report.h"

#include <nlohmann/json.hpp>

#include "dynamo/backend.h"
#include "node/anti_entropy.h"
#include "node/coordinator.h"
#include "node/handoff.h"
#include "node/local_store.h"
#include "node/migration.h"
#include "node/rebuild.h"
#include "node/transfer.h"

namespace dynamo {

using wire::MsgType;
using wire::Reply;
using wire::Request;
using wire::RequestView;

namespace {
// STATUS_REPLY and RING_REPLY carry a map: the JSON document, as msgpack.
Reply MapReply(MsgType type, uint64_t id, const nlohmann::json& doc) {
  std::vector<uint8_t> packed = nlohmann::json::to_msgpack(doc);
  Reply r;
  r.type = type;
  r.id = id;
  r.status_msgpack.assign(packed.begin(), packed.end());
  return r;
}
}  // namespace

void StatusReport::ServeStatus(std::string identity, const RequestView& req) {
  // Engine statistics may block (a remote engine): ask on a worker.
  auto stats = [this]() -> std::string {
    auto r = ctx_.store.backend().Stats();
    if (r.ok()) return *r;
    return nlohmann::json{{"error", r.status().ToString()}}.dump();
  };
  ctx_.loop.OnEngineBulk<std::string>(stats, [this, identity, id = req.id](std::string engine) {
    ctx_.Reply(identity, StatusReply(id, engine));
  });
}

void StatusReport::ServeRing(const std::string& identity, const RequestView& req) {
  ctx_.Reply(identity, RingReply(req.id));
}

Reply StatusReport::StatusReply(uint64_t id, const std::string& engine_stats) const {
  using nlohmann::json;
  const Ring& ring = ctx_.cluster.ring();
  json j;
  j["node_id"] = ctx_.options.node_id;
  j["endpoint"] = ctx_.options.listen;
  j["backend"] = parts_.plugin->name();
  j["backend_version"] = parts_.plugin->version();
  json members = json::array();
  for (const auto& [mid, m] : ctx_.cluster.members()) {
    if (m.state == MemberState::kRemoved) continue;  // gone from the cluster
    // "down" is this node's own view (failure detection is local, paper
    // 4.8.3); the other states come from the gossiped membership.
    const bool down = mid != ctx_.options.node_id && m.state == MemberState::kUp &&
                      ctx_.IsDownEndpoint(m.endpoint);
    members.push_back(json{{"node_id", m.node_id},
                           {"endpoint", m.endpoint},
                           {"state", down ? "down" : MemberStateName(m.state)}});
  }
  j["members"] = members;
  j["partitions"] = ring.empty() ? ctx_.options.partitions : ring.partitions();
  j["partitions_owned"] = ring.empty() ? 0 : ring.OwnedBy(ctx_.options.node_id);
  j["ring_version"] = ring.version();
  const uint32_t n = ring.empty() ? ctx_.options.replicas : ring.replicas();
  j["replicas"] = n;
  j["read_quorum"] = ctx_.options.read_quorum;
  j["write_quorum"] = ctx_.options.write_quorum;
  j["under_replicated"] = ring.empty() || ring.nodes().size() < n;
  // As of the last handoff tick (the loop never waits on the store).
  const Handoff::Snapshot& hints = parts_.handoff->snapshot();
  j["hints_pending"] = hints.pending;
  json pending = json::object();
  for (const auto& [target, count] : hints.by_target) {
    if (count > 0) pending[target] = count;
  }
  j["hints_pending_by_target"] = pending;
  const Coordinator::Stats& coordinated = parts_.coordinator->stats();
  j["hints"] = json{{"stored", parts_.handoff->stored()},
                    {"delivered", parts_.handoff->delivered()},
                    {"dropped", hints.dropped},
                    {"sent", coordinated.hints_sent},
                    {"sent_early", coordinated.hints_sent_early},
                    {"bytes", hints.bytes}};
  const AntiEntropy::Stats& ae = parts_.anti_entropy->stats();
  j["anti_entropy"] = json{{"exchanges", ae.exchanges},
                           {"keys_repaired", ae.keys_repaired},
                           {"partitions_differing", ae.partitions_differing},
                           {"rounds", ae.rounds},
                           {"yields", ae.yields},
                           {"enabled", parts_.anti_entropy->enabled()}};
  j["requests"] = ctx_.requests.load();
  j["errors"] = ctx_.errors.load();
  j["malformed"] = ctx_.malformed.load();
  // Public keys only: secrets never leave the node (DESIGN.md 3.7).
  if (const auto keys = ctx_.loop.Keys()) {
    j["security"] = json{{"curve", true},
                         {"public_key", keys->pair.public_key},
                         {"authorized_keys", keys->authorized->size()},
                         {"requests_refused", ctx_.refused.load()}};
  } else {
    j["security"] = json{{"curve", false}, {"requests_refused", ctx_.refused.load()}};
  }
  j["forwarded"] = coordinated.forwarded;
  j["forward_fallbacks"] = coordinated.forward_fallbacks;
  j["sloppy_reads"] =
      json{{"asked", coordinated.standin_reads}, {"counted", coordinated.standin_answers}};
  j["read_repairs"] = coordinated.read_repairs;
  j["resolver"] = json{{"configured", ctx_.resolvers ? json(ctx_.resolvers->Describe()) : json()},
                       {"resolved", coordinated.resolved},
                       {"errors", coordinated.resolver_errors},
                       {"write_back_failures", coordinated.write_back_failures}};
  j["keys_transferred"] = parts_.transfer->keys_transferred();
  const BackgroundShare& bg = ctx_.background;
  j["background"] = json{{"share", bg.share()},
                         {"target_p99_ms", bg.target_p99_ms()},
                         {"read_p99_ms", bg.last_p99_ms(false)},
                         {"write_p99_ms", bg.last_p99_ms(true)},
                         {"cuts", bg.cuts()},
                         {"paused_ms", bg.paused_ms()}};
  // Sweeps for stray keys count only once they found some.
  j["transfers_pending"] = parts_.transfer->pending();
  // The partition being sent now (a hand-off, or a stream for a PULL).
  if (const auto t = parts_.transfer->sending()) {
    j["transfer_sending"] =
        json{{"partition", t->partition},
             {"to", t->to},
             {"kind", t->pull ? "pull" : "handoff"},
             {"keys", t->keys},
             {"bytes", t->bytes},
             {"rate_bytes_per_s", t->elapsed_s > 0 ? t->bytes / t->elapsed_s : 0.0},
             {"done", t->done},
             {"eta_s", t->eta_s >= 0 ? json(t->eta_s) : json(nullptr)}};
  } else {
    j["transfer_sending"] = nullptr;
  }
  if (parts_.rebuild != nullptr) {
    const Rebuild::Progress r = parts_.rebuild->progress();
    json in_flight = json::array();
    for (const auto& [p, from] : r.in_flight)
      in_flight.push_back({{"partition", p}, {"from", from}});
    j["rebuild"] = json{{"state", Rebuild::StateName(r.state)},
                        {"partitions_total", r.partitions_total},
                        {"partitions_done", r.partitions_done},
                        {"in_flight", in_flight},
                        {"keys", r.keys},
                        {"bytes", r.bytes},
                        {"elapsed_s", r.elapsed_s},
                        {"rate_bytes_per_s", r.rate_bytes_per_s},
                        {"eta_s", r.eta_s},
                        {"completed", r.completed}};
  }
  if (parts_.migration != nullptr) {
    const Migration::Progress m = parts_.migration->progress();
    j["migration"] = json{{"state", Migration::StateName(m.state)},
                          {"to", m.to},
                          {"partitions_total", m.partitions_total},
                          {"partitions_copied", m.partitions_copied},
                          {"partitions_checked", m.partitions_checked},
                          {"keys_copied", m.keys_copied},
                          {"bytes_copied", m.bytes_copied},
                          {"keys_checked", m.keys_checked},
                          {"keys_mended", m.keys_mended},
                          {"elapsed_s", m.elapsed_s},
                          {"error", m.error.empty() ? json() : json(m.error)}};
  }
  const char* calls_on = "workers";
  if (ctx_.loop.EngineMode() == Loop::EngineCalls::kAll) calls_on = "loop";
  if (ctx_.loop.EngineMode() == Loop::EngineCalls::kSingleKey) calls_on = "loop_single_key";
  j["engine_calls"] = json{{"on", calls_on},
                           {"retried_on_workers", ctx_.loop.engine_retries()},
                           {"worker_threads", ctx_.loop.WorkerThreads()}};
  j["engine"] = json::parse(engine_stats, nullptr, /*allow_exceptions=*/false);
  if (j["engine"].is_discarded()) j["engine"] = engine_stats;
  return MapReply(MsgType::kStatusReply, id, j);
}

Reply StatusReport::RingReply(uint64_t id) const {
  using nlohmann::json;
  const Ring& ring = ctx_.cluster.ring();
  json j;
  j["partitions"] = ring.partitions();
  j["replicas"] = ring.empty() ? ctx_.options.replicas : ring.replicas();
  j["version"] = ring.version();
  json owners = json::array();
  for (uint32_t p = 0; p < ring.partitions(); ++p) owners.push_back(ring.PreferenceList(p));
  j["owners"] = owners;
  // Where each ring member listens, for clients that route requests
  // themselves (client-driven coordination, docs/client-api.md).
  json endpoints = json::object();
  for (const std::string& n : ring.nodes()) endpoints[n] = ctx_.EndpointOf(n);
  j["endpoints"] = endpoints;
  // With CURVE, the key each member serves with (this node's own, and the
  // peers' from the authorized keys), so such clients can reach them.
  if (const auto keys = ctx_.loop.Keys()) {
    json public_keys = json::object();
    for (const std::string& n : ring.nodes()) {
      if (n == ctx_.options.node_id) {
        public_keys[n] = keys->pair.public_key;
      } else if (const std::string* key = keys->authorized->KeyAt(ctx_.EndpointOf(n))) {
        public_keys[n] = *key;
      }
    }
    j["public_keys"] = public_keys;
  }
  // Members this node takes for down: such clients try them last.
  json down = json::array();
  for (const std::string& n : ring.nodes()) {
    if (ctx_.IsDownNode(n)) down.push_back(n);
  }
  j["down"] = down;
  return MapReply(MsgType::kRingReply, id, j);
}

}  // namespace dynamo
