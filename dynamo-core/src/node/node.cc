#include "node/node.h"

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "dynamo/backend.h"
#include "dynamo/log.h"
#include "dynamo/transport/zmq_loop.h"
#include "handoff/hint_store.h"
#include "node/anti_entropy.h"
#include "node/coordinator.h"
#include "node/handoff.h"
#include "node/incarnation.h"
#include "node/local_store.h"
#include "node/membership_actor.h"
#include "node/metrics_server.h"
#include "node/migration.h"
#include "node/node_context.h"
#include "node/rebuild.h"
#include "node/redis_front_end.h"
#include "node/status_report.h"
#include "node/transfer.h"

namespace dynamo {

using wire::MsgType;
using wire::Reply;
using wire::Request;
using wire::RequestView;

Node::Node(NodeOptions options)
    : options_(std::move(options)),
      detector_(std::chrono::milliseconds(options_.failure_timeout_ms)) {}

Node::~Node() {
  metrics_.reset();  // its HTTP threads post to the loop
  redis_.reset();    // its connections are watched by the loop
  if (zmq_loop_ != nullptr) {
    // The loop's workers may still run jobs that use the parts: stop them
    // first (a ZmqLoop joins them).
    zmq_loop_.reset();
  } else if (loop_ != nullptr) {
    // On a caller's loop, nothing may call into the node any more. The
    // caller stops what the actors armed (SimLoop::Crash) before destroying it.
    loop_->SetHandler(nullptr);
    loop_->SetPeerObserver(nullptr);
  }
}

// Where an engine's calls may run (DESIGN.md 5).
static Loop::EngineCalls EngineCallsOf(const Backend& b) {
  return b.nonblocking()         ? Loop::EngineCalls::kAll
         : b.single_key_inline() ? Loop::EngineCalls::kSingleKey
                                 : Loop::EngineCalls::kWorkers;
}

Status Node::OpenStores(Loop::EngineCalls* engine_calls) {
  std::error_code ec;
  std::filesystem::create_directories(options_.data_dir, ec);
  if (ec || !std::filesystem::is_directory(options_.data_dir)) {
    return Status::IOError("cannot create data folder " + options_.data_dir + ": " +
                           (ec ? ec.message() : "not a directory"));
  }
  auto plugin = BackendPlugin::Load(options_.backend, options_.plugin_dir);
  if (!plugin.ok()) return plugin.status();
  plugin_ = *plugin;
  auto resolvers = Resolvers::Load(options_.resolvers, options_.plugin_dir);
  if (!resolvers.ok()) return resolvers.status();
  resolvers_ = std::move(resolvers).value();

  BackendOptions engine_options = options_.backend_opts;
  // A migration switched this node to another engine: it runs on that one,
  // with the options it was migrated with (node/migration.h).
  auto record = RecordedEngine(options_.data_dir, plugin_->name());
  if (record.ok()) {
    // The recorded options (the path a file engine was given, say), each
    // replaced by a --backend-opt of the same key (a rotated password, a
    // sync policy).
    engine_options = record->options;
    for (const auto& [k, v] : options_.backend_opts) {
      auto it = std::find_if(engine_options.begin(), engine_options.end(),
                             [&k = k](const auto& kv) { return kv.first == k; });
      if (it != engine_options.end()) {
        it->second = v;
      } else {
        engine_options.emplace_back(k, v);
      }
    }
  } else if (!record.status().IsNotFound()) {
    return record.status();
  }
  bool has_data_dir = false;
  for (const auto& kv : engine_options) has_data_dir = has_data_dir || kv.first == "data_dir";
  if (!has_data_dir) engine_options.emplace_back("data_dir", options_.data_dir);
  auto backend = Backend::Open(plugin_, engine_options);
  if (!backend.ok()) return backend.status();
  *engine_calls = EngineCallsOf(**backend);
  store_ = std::make_unique<LocalStore>(std::move(backend).value(), options_.max_clock_entries);
  HintStore::Options hint_options;
  hint_options.dir = options_.data_dir + "/hints";
  hint_options.max_keys = options_.max_hints;
  hint_options.max_bytes = options_.max_hint_bytes;
  auto hints = HintStore::Open(hint_options);
  if (!hints.ok()) return hints.status();
  hints_ = std::move(hints).value();
  return Status::OK();
}

// The actors, and the hooks by which one tells another what it needs to know.
void Node::Wire(Loop* loop) {
  loop_ = loop;
  ctx_ = std::make_unique<NodeContext>(options_, *loop_, *store_, *hints_, cluster_, detector_);
  if (!resolvers_.empty()) ctx_->resolvers = &resolvers_;
  Coordinator::Hooks coordinator_hooks;
  coordinator_hooks.on_latency = [this](double ms) { anti_entropy_->NoteForegroundLatency(ms); };
  coordinator_hooks.on_hint_stored = [this] { handoff_->OnHintStored(); };
  coordinator_ = std::make_unique<Coordinator>(*ctx_, std::move(coordinator_hooks));
  handoff_ = std::make_unique<Handoff>(*ctx_);
  AntiEntropy::Hooks ae_hooks;
  ae_hooks.on_round = [this] { transfer_->PlanOrphans(); };
  ae_hooks.rebuilding = [this](uint32_t p) { return rebuild_->Pending(p); };
  anti_entropy_ = std::make_unique<AntiEntropy>(*ctx_, std::move(ae_hooks));
  Transfer::Hooks transfer_hooks;
  transfer_hooks.handoff_idle = [this] { return handoff_->Idle(); };
  transfer_hooks.on_left = [this] { membership_->MarkSelfRemoved(); };
  transfer_ = std::make_unique<Transfer>(*ctx_, std::move(transfer_hooks));
  rebuild_ = std::make_unique<Rebuild>(*ctx_, *transfer_);
  Migration::Hooks migration_hooks;
  migration_hooks.mode_of = [](const Backend& b) { return EngineCallsOf(b); };
  migration_hooks.on_switched = [this](std::shared_ptr<BackendPlugin> plugin,
                                       Loop::EngineCalls mode) {
    plugin_ = std::move(plugin);
    status_->SetPlugin(plugin_.get());
    loop_->SetEngineMode(mode);
  };
  migration_ = std::make_unique<Migration>(*ctx_, std::move(migration_hooks));
  MembershipActor::Hooks membership_hooks;
  membership_hooks.on_ring_change = [this](const Ring& from, const Ring& to) {
    transfer_->Plan(from, to);
    anti_entropy_->SyncTreesWithRing();
    rebuild_->Tick();
  };
  membership_hooks.on_round = [this] {
    transfer_->Tick();
    rebuild_->Tick();
  };
  membership_ = std::make_unique<MembershipActor>(*ctx_, std::move(membership_hooks));
  StatusReport::Parts parts;
  parts.plugin = plugin_.get();
  parts.coordinator = coordinator_.get();
  parts.handoff = handoff_.get();
  parts.anti_entropy = anti_entropy_.get();
  parts.transfer = transfer_.get();
  parts.rebuild = rebuild_.get();
  parts.migration = migration_.get();
  status_ = std::make_unique<StatusReport>(*ctx_, parts);

  handoff_->LoadSnapshot();
  loop_->SetHandler(this);
  loop_->SetPeerObserver(
      [this](const std::string& endpoint, bool answered, Loop::Clock::time_point now) {
        if (answered) {
          detector_.OnAnswer(endpoint, now);
        } else {
          detector_.OnSent(endpoint, now);
        }
      });
}

Status Node::Assemble(Loop* loop) {
  Wire(loop);
  auto actor = Incarnation::Begin(options_.data_dir, options_.node_id, store_->backend().durable(),
                                  loop->WallMillis());
  if (!actor.ok()) return actor.status();
  ctx_->actor.Set(std::move(actor).value());
  if (Status s = membership_->LoadOrCreate(); !s.ok()) return s;
  membership_->Save();
  anti_entropy_->SyncTreesWithRing();
  return Status::OK();
}

Status Node::Start() {
  Loop::EngineCalls engine_calls = Loop::EngineCalls::kWorkers;
  if (Status s = OpenStores(&engine_calls); !s.ok()) return s;
  zmq_loop_ = std::make_unique<ZmqLoop>();
  ZmqLoop::Options loop_options;
  loop_options.listen = options_.listen;
  // Workers run blocking engine calls and file writes of the node's state;
  // a non-blocking engine still needs one for the latter.
  loop_options.workers = engine_calls == Loop::EngineCalls::kAll ? 1 : options_.workers;
  loop_options.workers_for_blocking_engines = options_.workers;
  loop_options.engine_calls = engine_calls;
  loop_options.curve = options_.curve;
  if (Status s = zmq_loop_->Open(loop_options); !s.ok()) return s;
  // After the bind, so a node that cannot listen says only that.
  if (Status s = Assemble(zmq_loop_.get()); !s.ok()) return s;
  if (!options_.redis_listen.empty()) {
    RedisFrontEnd::Hooks hooks;
    hooks.submit = [this](const std::string& identity, const RequestView& req) {
      SubmitLocal(identity, req);
    };
    redis_ = std::make_unique<RedisFrontEnd>(*ctx_, *zmq_loop_, std::move(hooks));
    ctx_->local_reply = [this](const std::string& to, const Reply& reply) {
      redis_->OnReply(to, reply);
    };
    if (Status s = redis_->Open(); !s.ok()) return s;
  }
  if (!options_.metrics_listen.empty()) {
    // Made on the loop (the HTTP thread waits for it).
    metrics_ = std::make_unique<MetricsServer>(
        options_.metrics_host, options_.metrics_port,
        [this](std::function<void(std::string)> done) {
          zmq_loop_->Post([this, done = std::move(done)] { status_->RenderMetrics(done); });
        });
    if (Status s = metrics_->Open(); !s.ok()) return s;
  }
  log::Info("serving on " + options_.listen + " with the " + plugin_->name() +
            " engine (data folder " + options_.data_dir + ")");
  if (options_.curve) {
    log::Info("CURVE on: public key " + options_.curve->pair.public_key + "; " +
              DescribeKeys(*options_.curve->authorized));
  } else {
    log::Warn("CURVE is off: anyone who can reach " + options_.listen +
              " can read, write and administer this node (see --curve-secret-key-file and "
              "--authorized-keys)");
  }
  return Status::OK();
}

std::string Node::DescribeKeys(const curve::AuthorizedKeys& keys) {
  return std::to_string(keys.size()) + " authorized keys, " +
         std::to_string(keys.endpoints().size()) + " of them peers with an endpoint";
}

void Node::ReloadKeys() {
  if (!zmq_loop_->Keys()) {
    log::Info("SIGHUP: nothing to reload (CURVE is off)");
    return;
  }
  // The file is read on a worker (a slow disk must not stall requests); the
  // keys are swapped on the loop, which owns them.
  const std::string file = options_.authorized_keys_file;
  zmq_loop_->RunOnWorker([this, file] {
    auto keys = std::make_shared<Result<curve::AuthorizedKeys>>(curve::AuthorizedKeys::Load(file));
    zmq_loop_->Post([this, file, keys] {
      if (!keys->ok()) {
        log::Error("SIGHUP: keeping the authorized keys in use: " + keys->status().message());
        return;
      }
      auto shared = std::make_shared<const curve::AuthorizedKeys>(std::move(*keys).value());
      zmq_loop_->SetAuthorizedKeys(shared);
      log::Info("SIGHUP: authorized keys reloaded from " + file + ": " + DescribeKeys(*shared));
    });
  });
}

Status Node::Start(Loop* loop) {
  Loop::EngineCalls engine_calls;  // the given loop decides
  if (Status s = OpenStores(&engine_calls); !s.ok()) return s;
  return Assemble(loop);
}

void Node::StartActors() {
  transfer_->PlanOrphans();  // resumes hand-offs a crash or stop cut short
  rebuild_->Start();
  membership_->Start();
  handoff_->Start();
  anti_entropy_->Start();
  ctx_->background.Start();
}

Status Node::Run(int stop_fd, int reload_fd) {
  StartActors();
  if (reload_fd >= 0) {
    Status w = zmq_loop_->WatchFd(reload_fd, EPOLLIN, [this, reload_fd](uint32_t) {
      signalfd_siginfo info;
      while (::read(reload_fd, &info, sizeof(info)) == sizeof(info)) {
      }
      ReloadKeys();
    });
    if (!w.ok()) return w;
  }
  Status s = zmq_loop_->Run(stop_fd);
  if (metrics_) metrics_->Stop();
  if (!s.ok()) return s;
  log::Info("stopping: finishing in-flight requests");
  s = store_->Sync();
  if (!s.ok()) {
    log::Error("final sync failed: " + s.ToString());
    return s;
  }
  // Nothing this run wrote is lost: the next run may keep its dots' name.
  s = Incarnation::End(options_.data_dir, ctx_->actor.Get());
  if (!s.ok()) log::Error(s.ToString());
  return s;
}

// ---- requests

void Node::OnMalformedEnvelope() {
  ++ctx_->malformed;
  ++ctx_->errors;  // the loop answered it with an error
}

void Node::OnRequest(const std::string& from, std::string_view frame, curve::Role role) {
  if (NodeContext::IsLocal(from)) {  // a network peer posing as a local requester
    ++ctx_->malformed;
    return;
  }
  OnRequestFrame(from, frame, false, role);
}

// What a request needs (DESIGN.md 3.7): clients read, write and look;
// administrators also change the membership; only peers send what goes
// between nodes (and anything this node does not know), forwarded writes
// that carry their dot included.
static curve::Role RequiredRole(const RequestView& req) {
  switch (req.type) {
    case MsgType::kPut:
    case MsgType::kDel:
      return req.dot_node.empty() ? curve::Role::kClient : curve::Role::kPeer;
    case MsgType::kGet:
    case MsgType::kStatus:
    case MsgType::kRing:
    case MsgType::kPing:
      return curve::Role::kClient;
    case MsgType::kAdminJoin:
    case MsgType::kAdminLeave:
    case MsgType::kAdminRemove:
    case MsgType::kAdminMigrate:
      return curve::Role::kAdmin;
    default:
      return curve::Role::kPeer;
  }
}

void Node::SubmitLocal(const std::string& identity, const RequestView& req) {
  ++ctx_->requests;
  if (Status s = Validate(req); !s.ok()) return Answer(identity, req, Reply::Error(req.id, s));
  Dispatch(identity, req);
}

void Node::OnRequestFrame(const std::string& identity, std::string_view frame, bool in_batch,
                          curve::Role role) {
  RequestView req;  // views into frame, which outlives every handler below
  Status s = wire::DecodeRequest(frame, &req);
  if (!s.ok()) {
    ++ctx_->malformed;
    ctx_->Reply(identity, Reply::Error(req.id, s));
    return;
  }
  if (const curve::Role needed = RequiredRole(req); role < needed) {
    ++ctx_->refused;
    std::string why;
    if (role == curve::Role::kNone) {
      why = "this connection's key is no longer authorized";
    } else {
      why = std::string("a ") + curve::RoleName(role) + " key may not send this request (type " +
            std::to_string(static_cast<int>(req.type)) + "): it needs ";
      why += needed == curve::Role::kAdmin ? "an admin or peer key" : "a peer key";
    }
    Answer(identity, req, Reply::Error(req.id, Status::NotAuthorized(why)));
    return;
  }
  if (req.type == MsgType::kBatch) {
    if (in_batch) {
      ++ctx_->malformed;
      ctx_->Reply(identity, Reply::Error(req.id, Status::InvalidArgument(
                                                     "malformed message: a batch inside a batch")));
      return;
    }
    // A peer's requests of one loop turn; each is answered as if it came
    // alone, and the answers go back batched as well.
    loop_->BatchRepliesTo(identity);
    for (std::string_view inner : req.frames) OnRequestFrame(identity, inner, true, role);
    return;
  }
  ++ctx_->requests;
  if (s = Validate(req); !s.ok()) return Answer(identity, req, Reply::Error(req.id, s));
  Dispatch(identity, req);
}

void Node::Answer(const std::string& identity, const RequestView& req, const Reply& reply) {
  if (!NodeContext::IsDataRequest(req.type)) return ctx_->Reply(identity, reply);  // not counted
  ctx_->Answer(ctx_->Started(req), identity, reply);
}

Status Node::Validate(const RequestView& req) const {
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

void Node::RefuseDataAfterLeaving(const std::string& identity, const RequestView& req) {
  Answer(identity, req, Reply::Error(req.id, Status::Unavailable("this node has left the ring")));
}

void Node::Dispatch(std::string identity, const RequestView& req) {
  switch (req.type) {
    case MsgType::kGet:
      if (req.flags & wire::kFlagLocal) {
        return coordinator_->ServeLocalGet(std::move(identity), req);
      }
      return coordinator_->CoordinateGet(std::move(identity), req);
    case MsgType::kPut:
    case MsgType::kDel:
      return coordinator_->CoordinatePut(std::move(identity), req);
    case MsgType::kStatus:
      return status_->ServeStatus(std::move(identity), req);
    case MsgType::kRing:
      return status_->ServeRing(identity, req);
    case MsgType::kPing:
      return ctx_->Reply(identity, Reply::Ack(req.id));
    case MsgType::kReplicaGet:
      return coordinator_->ServeReplicaGet(std::move(identity), req);
    case MsgType::kReplicaPut:
      if (ctx_->OutOfRing()) return RefuseDataAfterLeaving(identity, req);
      // A stand-in's copy (it names the owner) is kept apart from this
      // node's own data.
      if (!req.node_id.empty() && req.node_id != options_.node_id) {
        return handoff_->ServeHintedPut(std::move(identity), req);
      }
      return coordinator_->ServeReplicaPut(std::move(identity), req);
    case MsgType::kGossip:
      return membership_->ServeGossip(std::move(identity), req);
    case MsgType::kJoin:
      return membership_->ServeJoin(std::move(identity), req);
    case MsgType::kTransfer:
      if (ctx_->OutOfRing()) return RefuseDataAfterLeaving(identity, req);
      return transfer_->ServeTransfer(std::move(identity), req);
    case MsgType::kTree:
      return anti_entropy_->ServeTree(std::move(identity), req);
    case MsgType::kPull:
      if (ctx_->OutOfRing()) return RefuseDataAfterLeaving(identity, req);
      return transfer_->ServePull(std::move(identity), req);
    case MsgType::kAdminJoin:
      return membership_->ServeAdminJoin(std::move(identity), req);
    case MsgType::kAdminLeave:
      return membership_->ServeAdminLeave(std::move(identity), req);
    case MsgType::kAdminRemove:
      return membership_->ServeAdminRemove(std::move(identity), req);
    case MsgType::kAdminMigrate:
      return migration_->ServeAdminMigrate(std::move(identity), req);
    default:
      return ctx_->Reply(
          identity,
          Reply::Error(req.id, Status::Unsupported("message type " +
                                                   std::to_string(static_cast<int>(req.type)) +
                                                   " is not a request")));
  }
}

}  // namespace dynamo
