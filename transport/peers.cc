#include "peers.h"

#include "dynamo/log.h"

namespace dynamo {
namespace {

// "tcp://HOST:PORT" -> HOST, for a concrete IPv4 host; else "".
std::string SourceHost(const std::string& listen) {
  const std::string prefix = "tcp://";
  if (listen.rfind(prefix, 0) != 0) return "";
  std::string hostport = listen.substr(prefix.size());
  auto colon = hostport.rfind(':');
  if (colon == std::string::npos) return "";
  std::string host = hostport.substr(0, colon);
  if (host.empty() || host == "*" || host == "0.0.0.0" || host.find('[') != std::string::npos) {
    return "";
  }
  return host;
}

}  // namespace

Peers::Peers(zmq::context_t& ctx, const std::string& listen, const curve::KeyPair* pair)
    : ctx_(ctx), source_host_(SourceHost(listen)) {
  if (pair != nullptr) pair_ = *pair;
}

void Peers::SetServerKeys(std::shared_ptr<const curve::AuthorizedKeys> keys) {
  server_keys_ = std::move(keys);
  warned_no_key_.clear();
  for (auto it = sockets_.begin(); it != sockets_.end();) {
    const std::string* key = server_keys_ ? server_keys_->KeyAt(it->first) : nullptr;
    if (key != nullptr && *key == it->second.server_key) {
      ++it;
      continue;
    }
    // Calls already sent on it end by their deadline.
    by_fd_.erase(it->second.sock->get(zmq::sockopt::fd));
    it = sockets_.erase(it);
  }
}

Peers::~Peers() = default;

Peers::PeerSocket* Peers::SocketFor(const std::string& endpoint, Status* why) {
  auto it = sockets_.find(endpoint);
  if (it != sockets_.end()) return &it->second;
  std::string server_key;
  if (pair_) {
    const std::string* key = server_keys_ ? server_keys_->KeyAt(endpoint) : nullptr;
    if (key == nullptr) {
      *why =
          Status::NotAuthorized("no CURVE public key is known for " + endpoint +
                                ": list it in the authorized keys as 'KEY peer " + endpoint + "'");
      if (warned_no_key_.insert(endpoint).second) log::Warn(why->message());
      return nullptr;
    }
    server_key = *key;
  }
  auto sock = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
  if (pair_) {
    sock->set(zmq::sockopt::curve_serverkey, server_key);
    sock->set(zmq::sockopt::curve_publickey, pair_->public_key);
    sock->set(zmq::sockopt::curve_secretkey, pair_->secret_key);
  }
  sock->set(zmq::sockopt::linger, 0);
  sock->set(zmq::sockopt::sndhwm, 10000);
  sock->set(zmq::sockopt::rcvhwm, 100000);
  sock->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(wire::kMaxFrameBytes));
  std::string target = endpoint;
  if (!source_host_.empty() && endpoint.rfind("tcp://", 0) == 0) {
    target = "tcp://" + source_host_ + ":0;" + endpoint.substr(6);
  }
  sock->connect(target);
  const int fd = sock->get(zmq::sockopt::fd);
  PeerSocket& added =
      sockets_.emplace(endpoint, PeerSocket{std::move(sock), ZmqReadiness(), server_key})
          .first->second;
  by_fd_[fd] = &added;
  if (socket_observer_) socket_observer_(fd);
  return &added;
}

void Peers::Call(const std::string& endpoint, const wire::RequestView& req,
                 std::chrono::milliseconds timeout, Callback done) {
  const uint64_t id = next_id_++;
  wire::RequestView numbered = req;
  numbered.id = id;
  const auto deadline = Clock::now() + timeout;
  pending_.emplace(id, Pending{std::move(done), deadline, endpoint});
  deadlines_.emplace(deadline, id);
  if (observer_) observer_(endpoint, false, Clock::now());
  auto it = outbox_.find(endpoint);
  if (it == outbox_.end()) it = outbox_.emplace(endpoint, Outgoing()).first;
  it->second.batch.Add(numbered);
  it->second.ids.push_back(id);
}

void Peers::Flush() {
  for (auto& [endpoint, queued] : outbox_) {
    if (queued.ids.empty()) continue;
    const std::string frame = queued.batch.Take(next_id_++);
    Status failure;
    try {
      PeerSocket* peer = SocketFor(endpoint, &failure);
      if (peer != nullptr) {
        peer->readiness.Sent();
        if (!peer->sock->send(zmq::buffer(frame), zmq::send_flags::dontwait)) {
          failure = Status::Unavailable("send queue to " + endpoint + " is full");
        }
      }
    } catch (const zmq::error_t& e) {
      failure = Status::IOError("cannot send to " + endpoint + ": " + e.what());
    }
    traffic_.requests += queued.ids.size();
    ++traffic_.frames;
    traffic_.batch_sizes.Add(queued.ids.size());
    if (!failure.ok()) {
      traffic_.send_failures += queued.ids.size();
      for (uint64_t id : queued.ids) failed_now_.emplace_back(id, failure);
    }
    queued.ids.clear();
  }
}

void Peers::OnReplyFrame(std::string_view frame, bool nested) {
  wire::Reply rep;
  Status s = wire::DecodeReply(frame, &rep);
  if (s.ok() && rep.type == wire::MsgType::kBatchReply) {
    if (nested) return;  // batches hold replies, not batches
    for (const auto& inner : rep.frames) OnReplyFrame(inner, true);
    return;
  }
  if (pending_.find(rep.id) == pending_.end()) return;  // late: already timed out
  ++traffic_.replies;
  if (!s.ok()) {
    Finish(rep.id, Status::Corruption("bad reply from a peer: " + s.message()));
  } else {
    Finish(rep.id, std::move(rep));
  }
}

bool Peers::Drain() {
  bool more = false;
  for (auto& [endpoint, peer] : sockets_) {
    if (!peer.readiness.ready()) continue;
    int n = 0;
    for (; n < 1024; ++n) {
      zmq::message_t msg;
      if (!peer.sock->recv(msg, zmq::recv_flags::dontwait)) break;
      if (observer_) observer_(endpoint, true, Clock::now());
      OnReplyFrame(msg.to_string_view(), false);
    }
    peer.readiness.Drained(/*to_eagain=*/n < 1024);
    more = more || peer.readiness.ready();
  }
  return more;
}

bool Peers::HasInput() {
  bool input = false;
  for (auto& [endpoint, peer] : sockets_) {
    auto& sock = *peer.sock;
    if (peer.readiness.BeforeSleep([&sock] { return HasPollIn(sock); })) input = true;
  }
  return input;
}

bool Peers::OnReadable(int fd) {
  auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return false;
  it->second->readiness.Signalled();
  return true;
}

void Peers::Finish(uint64_t id, Result<wire::Reply> result) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  p.done(std::move(result));
}

void Peers::RunDue() {
  while (!failed_now_.empty()) {
    auto failed = std::move(failed_now_);
    failed_now_.clear();
    for (auto& [id, s] : failed) Finish(id, s);
  }
  const auto now = Clock::now();
  for (;;) {
    // Skip entries of calls that finished already.
    while (!deadlines_.empty() && !pending_.count(deadlines_.top().second)) deadlines_.pop();
    if (deadlines_.empty() || deadlines_.top().first > now) break;
    const uint64_t id = deadlines_.top().second;
    deadlines_.pop();
    ++traffic_.timeouts;
    Finish(id, Status::Timeout("no reply from " + pending_[id].endpoint + " in time"));
  }
}

long Peers::NextWait() {
  if (!failed_now_.empty()) return 0;
  while (!deadlines_.empty() && !pending_.count(deadlines_.top().second)) deadlines_.pop();
  if (deadlines_.empty()) return -1;
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadlines_.top().first - Clock::now())
          .count();
  return ms < 0 ? 0 : ms + 1;
}

}  // namespace dynamo
