#include "node/node.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "dynamo/backend.h"
#include "dynamo/transport/zmq_loop.h"
#include "handoff/hint_store.h"
#include "node/local_store.h"
#include "node/node_internal.h"
#include "util/log.h"

namespace dynamo {

using wire::MsgType;
using wire::Reply;
using wire::Request;

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

Node::Node(NodeOptions options)
    : options_(std::move(options)),
      detector_(std::chrono::milliseconds(options_.failure_timeout_ms)) {}

Node::~Node() = default;

Status Node::Start() {
  std::error_code ec;
  std::filesystem::create_directories(options_.data_dir, ec);
  if (ec || !std::filesystem::is_directory(options_.data_dir)) {
    return Status::IOError("cannot create data folder " + options_.data_dir + ": " +
                           (ec ? ec.message() : "not a directory"));
  }
  auto plugin = BackendPlugin::Load(options_.backend, options_.plugin_dir);
  if (!plugin.ok()) return plugin.status();
  plugin_ = *plugin;

  BackendOptions engine_options = options_.backend_opts;
  bool has_data_dir = false;
  for (const auto& kv : engine_options) has_data_dir = has_data_dir || kv.first == "data_dir";
  if (!has_data_dir) engine_options.emplace_back("data_dir", options_.data_dir);
  auto backend = Backend::Open(plugin_, engine_options);
  if (!backend.ok()) return backend.status();
  const bool inline_engine = (*backend)->nonblocking();
  store_ = std::make_unique<LocalStore>(std::move(backend).value(), options_.max_clock_entries);
  HintStore::Options hint_options;
  hint_options.dir = options_.data_dir + "/hints";
  hint_options.max_keys = options_.max_hints;
  hint_options.max_bytes = options_.max_hint_bytes;
  auto hints = HintStore::Open(hint_options);
  if (!hints.ok()) return hints.status();
  hints_ = std::move(hints).value();
  // Above any counter an earlier run of this node used (microseconds).
  standin_counter_ = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
  hint_snapshot_.by_target = hints_->PendingByTarget();
  hint_snapshot_.pending = hints_->pending();
  hint_snapshot_.bytes = hints_->bytes();
  hint_snapshot_.dropped = hints_->dropped();
  if (hint_snapshot_.pending > 0) {
    log::Info(std::to_string(hint_snapshot_.pending) + " hints waiting for delivery");
  }

  zmq_loop_ = std::make_unique<ZmqLoop>();
  ZmqLoop::Options loop_options;
  loop_options.listen = options_.listen;
  // Workers run blocking engine calls and file writes of the node's state;
  // a non-blocking engine still needs one for the latter.
  loop_options.workers = inline_engine ? 1 : options_.workers;
  loop_options.engine_inline = inline_engine;
  if (Status s = zmq_loop_->Open(loop_options); !s.ok()) return s;
  loop_ = zmq_loop_.get();
  loop_->SetHandler(this);
  loop_->SetPeerObserver([this](const std::string& endpoint, bool answered, Clock::time_point now) {
    if (answered) {
      detector_.OnAnswer(endpoint, now);
    } else {
      detector_.OnSent(endpoint, now);
    }
  });
  // After the bind, so a node that cannot listen says only that.
  if (Status s = LoadOrCreateClusterState(); !s.ok()) return s;
  SaveClusterState();
  SyncTreesWithRing();
  log::Info("serving on " + options_.listen + " with the " + plugin_->name() +
            " engine (data folder " + options_.data_dir + ")");
  return Status::OK();
}

Status Node::Run(int stop_fd) {
  PlanOrphanTransfers();  // resumes hand-offs a crash or stop cut short
  StartTimers();
  Status s = zmq_loop_->Run(stop_fd);
  if (!s.ok()) return s;
  log::Info("stopping: finishing in-flight requests");
  s = store_->backend().Sync();
  if (!s.ok()) log::Error("final sync failed: " + s.ToString());
  return s;
}

// ---- timers

void Node::StartTimers() {
  GossipSoon();
  loop_->After(std::chrono::milliseconds(0), [this] { HandoffTimer(); });
  if (options_.anti_entropy_interval_ms > 0) ScheduleAntiEntropy(std::chrono::milliseconds(0));
}

void Node::GossipTimer() {
  gossip_timer_ = 0;
  GossipTick();
  ClaimTick();
  TransferTick();
  if (gossip_timer_ == 0) {
    gossip_timer_ = loop_->After(std::chrono::milliseconds(options_.gossip_interval_ms),
                                 [this] { GossipTimer(); });
  }
}

void Node::GossipSoon() {
  if (!loop_) return;
  loop_->Cancel(gossip_timer_);
  gossip_timer_ = loop_->After(std::chrono::milliseconds(0), [this] { GossipTimer(); });
}

void Node::HandoffTimer() {
  HandoffTick();
  loop_->After(std::chrono::milliseconds(options_.handoff_interval_ms), [this] { HandoffTimer(); });
}

void Node::ScheduleAntiEntropy(std::chrono::milliseconds delay) {
  if (options_.anti_entropy_interval_ms <= 0) return;
  loop_->Cancel(ae_timer_);
  ae_timer_ = loop_->After(delay, [this] {
    ae_timer_ = 0;
    AntiEntropyTick();
  });
}

bool Node::IsDownEndpoint(const std::string& endpoint) const {
  return detector_.IsDown(endpoint, loop_->Now());
}

// ---- requests

void Node::SendReply(const std::string& identity, const Reply& reply) {
  if (reply.type == MsgType::kError && reply.error_code != 0) ++errors_;
  loop_->Reply(identity, reply);
}

void Node::OnMalformedEnvelope() {
  ++malformed_;
  ++errors_;  // the loop answered it with an error
}

void Node::OnRequest(const std::string& from, std::string_view frame) {
  OnRequestFrame(from, frame, false);
}

void Node::OnRequestFrame(const std::string& identity, std::string_view frame, bool in_batch) {
  Request req;
  Status s = wire::DecodeRequest(frame, &req);
  if (!s.ok()) {
    ++malformed_;
    SendReply(identity, Reply::Error(req.id, s));
    return;
  }
  if (req.type == MsgType::kBatch) {
    if (in_batch) {
      ++malformed_;
      SendReply(identity, Reply::Error(req.id, Status::InvalidArgument(
                                                   "malformed message: a batch inside a batch")));
      return;
    }
    // A peer's requests of one loop turn; each is answered as if it came
    // alone, and the answers go back batched as well.
    loop_->BatchRepliesTo(identity);
    for (const std::string& inner : req.frames) OnRequestFrame(identity, inner, true);
    return;
  }
  ++requests_;
  if (s = Validate(req); !s.ok()) {
    SendReply(identity, Reply::Error(req.id, s));
    return;
  }
  Dispatch(identity, std::move(req));
}

Status Node::Validate(const Request& req) const {
  switch (req.type) {
    case MsgType::kGet:
    case MsgType::kPut:
    case MsgType::kDel:
    case MsgType::kReplicaGet:
    case MsgType::kReplicaPut:
      break;
    default:
      return Status::OK();
  }
  if (req.key.empty()) return Status::InvalidArgument("key must not be empty");
  if (req.key.size() > options_.max_key_bytes) {
    return Status::InvalidArgument("key of " + std::to_string(req.key.size()) +
                                   " bytes exceeds the limit of " +
                                   std::to_string(options_.max_key_bytes) + " bytes");
  }
  if (req.type == MsgType::kPut && req.value.size() > options_.max_value_bytes) {
    return Status::InvalidArgument("value of " + std::to_string(req.value.size()) +
                                   " bytes exceeds the limit of " +
                                   std::to_string(options_.max_value_bytes) + " bytes");
  }
  const uint32_t n = cluster_.ring().empty() ? options_.replicas : cluster_.ring().replicas();
  if (req.quorum > n) {
    const char* what = req.type == MsgType::kGet ? "r" : "w";
    return Status::InvalidArgument(std::string(what) + "=" + std::to_string(req.quorum) +
                                   " is more than the " + std::to_string(n) +
                                   " replicas (N) of the cluster");
  }
  return Status::OK();
}

void Node::Dispatch(std::string identity, Request req) {
  switch (req.type) {
    case MsgType::kGet:
      if (req.flags & wire::kFlagLocal) return ServeLocalGet(std::move(identity), std::move(req));
      return CoordinateGet(std::move(identity), std::move(req));
    case MsgType::kPut:
    case MsgType::kDel:
      return CoordinatePut(std::move(identity), std::move(req));
    case MsgType::kStatus: {
      // Engine statistics may block (a remote engine): ask on a worker.
      auto stats = [this]() -> std::string {
        auto r = store_->backend().Stats();
        if (r.ok()) return *r;
        return nlohmann::json{{"error", r.status().ToString()}}.dump();
      };
      loop_->OnEngine<std::string>(stats, [this, identity, id = req.id](std::string engine) {
        SendReply(identity, StatusReply(id, engine));
      });
      return;
    }
    case MsgType::kRing:
      return SendReply(identity, RingReply(req.id));
    case MsgType::kPing:
      return SendReply(identity, Reply::Ack(req.id));
    case MsgType::kReplicaGet:
      return ServeReplicaGet(std::move(identity), std::move(req));
    case MsgType::kReplicaPut:
      return ServeReplicaPut(std::move(identity), std::move(req));
    case MsgType::kGossip:
      return ServeGossip(std::move(identity), std::move(req));
    case MsgType::kJoin:
      return ServeJoin(std::move(identity), std::move(req));
    case MsgType::kTransfer:
      return ServeTransfer(std::move(identity), std::move(req));
    case MsgType::kTree:
      return ServeTree(std::move(identity), std::move(req));
    case MsgType::kAdminJoin:
      return ServeAdminJoin(std::move(identity), std::move(req));
    case MsgType::kAdminLeave:
      return ServeAdminLeave(std::move(identity), std::move(req));
    case MsgType::kAdminRemove:
      return ServeAdminRemove(std::move(identity), std::move(req));
    default:
      return SendReply(
          identity,
          Reply::Error(req.id, Status::Unsupported("message type " +
                                                   std::to_string(static_cast<int>(req.type)) +
                                                   " is not a request")));
  }
}

Reply Node::StatusReply(uint64_t id, const std::string& engine_stats) {
  using nlohmann::json;
  const Ring& ring = cluster_.ring();
  json j;
  j["node_id"] = options_.node_id;
  j["endpoint"] = options_.listen;
  j["backend"] = plugin_->name();
  j["backend_version"] = plugin_->version();
  json members = json::array();
  for (const auto& [mid, m] : cluster_.members()) {
    if (m.state == MemberState::kRemoved) continue;  // gone from the cluster
    // "down" is this node's own view (failure detection is local, paper
    // 4.8.3); the other states come from the gossiped membership.
    const bool down =
        mid != options_.node_id && m.state == MemberState::kUp && IsDownEndpoint(m.endpoint);
    members.push_back(json{{"node_id", m.node_id},
                           {"endpoint", m.endpoint},
                           {"state", down ? "down" : MemberStateName(m.state)}});
  }
  j["members"] = members;
  j["partitions"] = ring.empty() ? options_.partitions : ring.partitions();
  j["partitions_owned"] = ring.empty() ? 0 : ring.OwnedBy(options_.node_id);
  j["ring_version"] = ring.version();
  const uint32_t n = ring.empty() ? options_.replicas : ring.replicas();
  j["replicas"] = n;
  j["read_quorum"] = options_.read_quorum;
  j["write_quorum"] = options_.write_quorum;
  j["under_replicated"] = ring.empty() || ring.nodes().size() < n;
  // As of the last handoff tick (the loop never waits on the store).
  j["hints_pending"] = hint_snapshot_.pending;
  json pending = json::object();
  for (const auto& [target, count] : hint_snapshot_.by_target) {
    if (count > 0) pending[target] = count;
  }
  j["hints_pending_by_target"] = pending;
  j["hints"] = json{{"stored", hints_stored_},
                    {"delivered", hints_delivered_},
                    {"dropped", hint_snapshot_.dropped},
                    {"sent", hints_sent_},
                    {"bytes", hint_snapshot_.bytes}};
  j["anti_entropy"] = json{{"exchanges", ae_exchanges_},
                           {"keys_repaired", ae_keys_repaired_},
                           {"partitions_differing", ae_partitions_differing_},
                           {"rounds", ae_rounds_},
                           {"yields", ae_yields_},
                           {"enabled", options_.anti_entropy_interval_ms > 0}};
  j["requests"] = requests_.load();
  j["errors"] = errors_.load();
  j["malformed"] = malformed_.load();
  j["forwarded"] = forwarded_;
  j["read_repairs"] = read_repairs_;
  j["keys_transferred"] = keys_transferred_;
  // Sweeps for stray keys count only once they found some.
  size_t pending_transfers = 0;
  for (const auto& t : transfers_) pending_transfers += !t->quiet || t->keys > 0;
  if (transfer_running_ && current_transfer_ &&
      (!current_transfer_->quiet || current_transfer_->keys > 0)) {
    ++pending_transfers;
  }
  j["transfers_pending"] = pending_transfers;
  j["engine"] = json::parse(engine_stats, nullptr, /*allow_exceptions=*/false);
  if (j["engine"].is_discarded()) j["engine"] = engine_stats;
  return MapReply(MsgType::kStatusReply, id, j);
}

Reply Node::RingReply(uint64_t id) {
  using nlohmann::json;
  const Ring& ring = cluster_.ring();
  json j;
  j["partitions"] = ring.partitions();
  j["replicas"] = ring.empty() ? options_.replicas : ring.replicas();
  j["version"] = ring.version();
  json owners = json::array();
  for (uint32_t p = 0; p < ring.partitions(); ++p) owners.push_back(ring.PreferenceList(p));
  j["owners"] = owners;
  // Where each ring member listens, for clients that route requests
  // themselves (client-driven coordination, docs/client-api.md).
  json endpoints = json::object();
  for (const std::string& n : ring.nodes()) endpoints[n] = EndpointOf(n);
  j["endpoints"] = endpoints;
  // Members this node takes for down: such clients try them last.
  json down = json::array();
  for (const std::string& n : ring.nodes()) {
    if (IsDownNode(n)) down.push_back(n);
  }
  j["down"] = down;
  return MapReply(MsgType::kRingReply, id, j);
}

}  // namespace dynamo
