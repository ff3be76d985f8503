#include "node/node.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "dynamo/backend.h"
#include "dynamo/versioning.h"
#include "node/local_store.h"
#include "node/worker_pool.h"
#include "util/log.h"

namespace dynamo {

using wire::MsgType;
using wire::Reply;
using wire::Request;

struct Node::Sockets {
  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
};

Node::Node(NodeOptions options) : options_(std::move(options)) {}

Node::~Node() {
  if (workers_) workers_->Stop();
  sockets_.reset();
  if (event_fd_ >= 0) ::close(event_fd_);
}

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
  inline_engine_ = (*backend)->nonblocking();
  store_ = std::make_unique<LocalStore>(std::move(backend).value(), options_.max_clock_entries);

  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) return Status::IOError("eventfd failed");
  sockets_ = std::make_unique<Sockets>();
  try {
    sockets_->router.set(zmq::sockopt::linger, 0);
    sockets_->router.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(wire::kMaxFrameBytes));
    sockets_->router.set(zmq::sockopt::sndhwm, 100000);
    sockets_->router.set(zmq::sockopt::rcvhwm, 100000);
    sockets_->router.bind(options_.listen);
  } catch (const zmq::error_t& e) {
    return Status::IOError("cannot listen on " + options_.listen + ": " + e.what());
  }
  if (!inline_engine_) {
    workers_ = std::make_unique<WorkerPool>(options_.workers, nullptr, nullptr);
  }
  log::Info("serving on " + options_.listen + " with the " + plugin_->name() +
            " engine (data folder " + options_.data_dir + ")");
  return Status::OK();
}

Status Node::Run(int stop_fd) {
  zmq::pollitem_t items[3] = {
      {sockets_->router.handle(), 0, ZMQ_POLLIN, 0},
      {nullptr, event_fd_, ZMQ_POLLIN, 0},
      {nullptr, stop_fd, ZMQ_POLLIN, 0},
  };
  for (;;) {
    try {
      zmq::poll(items, 3, std::chrono::milliseconds(-1));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return Status::IOError(std::string("poll failed: ") + e.what());
    }
    if (items[2].revents & ZMQ_POLLIN) break;
    if (items[0].revents & ZMQ_POLLIN) {
      // Drain what is ready, bounded so completions are not starved.
      for (int i = 0; i < 1024; ++i) {
        zmq::message_t identity;
        if (!sockets_->router.recv(identity, zmq::recv_flags::dontwait)) break;
        // A multipart message arrives whole, so its parts are all ready.
        std::vector<zmq::message_t> frames;
        for (bool more = identity.more(); more;) {
          zmq::message_t part;
          (void)sockets_->router.recv(part, zmq::recv_flags::dontwait);
          more = part.more();
          frames.push_back(std::move(part));
        }
        std::string id = identity.to_string();
        if (frames.size() != 1) {
          ++malformed_;
          Complete(std::move(id),
                   Reply::Error(0, Status::InvalidArgument(
                                       "malformed message: a request is exactly one frame, got " +
                                       std::to_string(frames.size()))));
          continue;
        }
        OnRequestFrame(std::move(id), frames[0].to_string_view());
      }
    }
    DrainCompletions();
  }
  log::Info("stopping: finishing in-flight requests");
  if (workers_) workers_->Stop();
  DrainCompletions();
  Status s = store_->backend().Sync();
  if (!s.ok()) log::Error("final sync failed: " + s.ToString());
  return s;
}

void Node::OnRequestFrame(std::string identity, std::string_view frame) {
  Request req;
  Status s = wire::DecodeRequest(frame, &req);
  if (!s.ok()) {
    ++malformed_;
    Complete(std::move(identity), Reply::Error(req.id, s));
    return;
  }
  ++requests_;
  if (s = Validate(req); !s.ok()) {
    ++errors_;
    Complete(std::move(identity), Reply::Error(req.id, s));
    return;
  }
  Dispatch(std::move(identity), std::move(req));
}

Status Node::Validate(const Request& req) const {
  if (req.type == MsgType::kStatus) return Status::OK();
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
  if (req.quorum > options_.replicas) {
    const char* what = req.type == MsgType::kGet ? "r" : "w";
    return Status::InvalidArgument(std::string(what) + "=" + std::to_string(req.quorum) +
                                   " is more than the " + std::to_string(options_.replicas) +
                                   " replicas (N) of the cluster");
  }
  return Status::OK();
}

void Node::Dispatch(std::string identity, Request req) {
  if (inline_engine_) {
    Complete(std::move(identity), Execute(req));
    return;
  }
  workers_->Submit([this, identity = std::move(identity), req = std::move(req)]() mutable {
    Complete(std::move(identity), Execute(req));
  });
}

void Node::Complete(std::string identity, const Reply& reply) {
  if (reply.type == MsgType::kError && reply.error_code != 0) ++errors_;
  Completion c{std::move(identity), wire::EncodeReply(reply)};
  bool wake;
  {
    std::lock_guard<std::mutex> l(completions_mu_);
    wake = completions_.empty();
    completions_.push_back(std::move(c));
  }
  if (wake) {
    uint64_t one = 1;
    ssize_t n = ::write(event_fd_, &one, sizeof(one));
    (void)n;  // EAGAIN means the counter is already non-zero: the loop wakes
  }
}

void Node::DrainCompletions() {
  uint64_t count;
  ssize_t n = ::read(event_fd_, &count, sizeof(count));
  (void)n;
  std::vector<Completion> ready;
  {
    std::lock_guard<std::mutex> l(completions_mu_);
    ready.swap(completions_);
  }
  for (auto& c : ready) {
    try {
      if (!sockets_->router.send(zmq::buffer(c.identity),
                                 zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        continue;
      }
      (void)sockets_->router.send(zmq::buffer(c.frame), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      log::Warn(std::string("reply dropped: ") + e.what());
    }
  }
}

Reply Node::Execute(const Request& req) {
  try {
    switch (req.type) {
      case MsgType::kGet: return ExecuteGet(req);
      case MsgType::kPut:
      case MsgType::kDel: return ExecuteWrite(req);
      case MsgType::kStatus: return ExecuteStatus(req);
      default: return Reply::Error(req.id, Status::Unsupported("unknown message type"));
    }
  } catch (const std::exception& e) {
    log::Error(std::string("request failed: ") + e.what());
    return Reply::Error(req.id, Status::Internal(e.what()));
  }
}

Reply Node::ExecuteGet(const Request& req) {
  Result<SiblingSet> set = store_->Read(req.key);
  if (!set.ok()) return Reply::Error(req.id, set.status());
  Reply r;
  r.type = MsgType::kGetReply;
  r.id = req.id;
  r.found = !set->IsDeleted();
  for (std::string_view v : set->LiveValues()) r.values.emplace_back(v);
  if (!set->empty()) r.context = EncodeClock(set->Context());
  return r;
}

Reply Node::ExecuteWrite(const Request& req) {
  Result<VectorClock> context = DecodeClock(req.context);
  if (!context.ok()) return Reply::Error(req.id, context.status());
  const bool tombstone = req.type == MsgType::kDel;
  // A delete without a context removes what the key holds now; a put
  // without one is a write concurrent with everything (docs/design.md).
  const bool supersede = tombstone && req.context.empty();
  auto written = store_->Write(req.key, *context, options_.node_id,
                               tombstone ? std::string() : req.value, tombstone, supersede);
  if (!written.ok()) return Reply::Error(req.id, written.status());
  Reply r;
  r.type = MsgType::kPutReply;
  r.id = req.id;
  r.context = EncodeClock(written->history);
  return r;
}

Reply Node::ExecuteStatus(const Request& req) {
  using nlohmann::json;
  const uint32_t members = 1;
  json j;
  j["node_id"] = options_.node_id;
  j["endpoint"] = options_.listen;
  j["backend"] = plugin_->name();
  j["backend_version"] = plugin_->version();
  j["members"] = json::array({json{{"node_id", options_.node_id},
                                   {"endpoint", options_.listen},
                                   {"state", "up"}}});
  j["partitions"] = options_.partitions;
  j["partitions_owned"] = options_.partitions;
  j["replicas"] = options_.replicas;
  j["read_quorum"] = options_.read_quorum;
  j["write_quorum"] = options_.write_quorum;
  j["under_replicated"] = members < options_.replicas;
  j["hints_pending"] = 0;
  j["requests"] = requests_.load();
  j["errors"] = errors_.load();
  j["malformed"] = malformed_.load();
  auto stats = store_->backend().Stats();
  if (stats.ok()) {
    j["engine"] = json::parse(*stats, nullptr, /*allow_exceptions=*/false);
    if (j["engine"].is_discarded()) j["engine"] = *stats;
  } else {
    j["engine"] = json{{"error", stats.status().ToString()}};
  }
  std::vector<uint8_t> packed = json::to_msgpack(j);
  Reply r;
  r.type = MsgType::kStatusReply;
  r.id = req.id;
  r.status_msgpack.assign(packed.begin(), packed.end());
  return r;
}

}  // namespace dynamo
