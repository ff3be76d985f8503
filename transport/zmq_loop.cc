#include "dynamo/transport/zmq_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <zmq.hpp>

#include "dynamo/log.h"
#include "dynamo/transport/worker_pool.h"
#include "peers.h"

namespace dynamo {

struct ZmqLoop::Sockets {
  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
  std::unique_ptr<zmq::socket_t> zap;  // CURVE only: the ZAP handler (RFC 27)
};

namespace {

// The role of the key a request came with: the ZAP handler made the key the
// connection's User-Id, and the current authorized keys say what it may do
// (so a revoked key loses its rights on connections it already has).
curve::Role RoleOf(const curve::ServerKeys* keys, zmq::message_t& body) {
  if (keys == nullptr) return curve::Role::kPeer;
  const char* key = zmq_msg_gets(body.handle(), "User-Id");
  if (key == nullptr) return curve::Role::kNone;
  const curve::Role* role = keys->authorized->RoleOf(key);
  return role == nullptr ? curve::Role::kNone : *role;
}

}  // namespace

ZmqLoop::ZmqLoop() : rng_(std::random_device{}()) {}

ZmqLoop::~ZmqLoop() {
  if (workers_) workers_->Stop();
  peers_.reset();
  sockets_.reset();
  if (event_fd_ >= 0) ::close(event_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

Status ZmqLoop::AddToEpoll(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0) return Status::OK();
  if (errno == EEXIST && ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) == 0) return Status::OK();
  return Status::IOError(std::string("epoll_ctl failed: ") + std::strerror(errno));
}

Status ZmqLoop::Open(const Options& options) {
  engine_calls_ = options.engine_calls;
  blocking_workers_ = std::max(options.workers, options.workers_for_blocking_engines);
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return Status::IOError("epoll_create1 failed");
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) return Status::IOError("eventfd failed");
  if (Status s = AddToEpoll(event_fd_, EPOLLIN); !s.ok()) return s;
  sockets_ = std::make_unique<Sockets>();
  curve_ = options.curve;
  try {
    if (curve_) {
      if (!curve::Available()) {
        return Status::Unsupported("this libzmq has no CURVE support (built without libsodium)");
      }
      // The handler is bound before the ROUTER, so no handshake ever finds
      // none (libzmq would then admit any key).
      sockets_->zap = std::make_unique<zmq::socket_t>(sockets_->ctx, zmq::socket_type::rep);
      sockets_->zap->set(zmq::sockopt::linger, 0);
      sockets_->zap->bind("inproc://zeromq.zap.01");
      zap_fd_ = sockets_->zap->get(zmq::sockopt::fd);
      if (Status s = AddToEpoll(zap_fd_, EPOLLIN); !s.ok()) return s;
      sockets_->router.set(zmq::sockopt::curve_server, 1);
      sockets_->router.set(zmq::sockopt::curve_secretkey, curve_->pair.secret_key);
      sockets_->router.set(zmq::sockopt::zap_domain, "dynamo");
    }
    sockets_->router.set(zmq::sockopt::linger, 0);
    sockets_->router.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(wire::kMaxFrameBytes));
    sockets_->router.set(zmq::sockopt::sndhwm, 100000);
    sockets_->router.set(zmq::sockopt::rcvhwm, 100000);
    sockets_->router.bind(options.listen);
    router_fd_ = sockets_->router.get(zmq::sockopt::fd);
    if (Status s = AddToEpoll(router_fd_, EPOLLIN); !s.ok()) return s;
  } catch (const zmq::error_t& e) {
    return Status::IOError("cannot listen on " + options.listen + ": " + e.what());
  }
  peers_ = std::make_unique<Peers>(sockets_->ctx, options.listen, curve_ ? &curve_->pair : nullptr);
  if (curve_) peers_->SetServerKeys(curve_->authorized);
  // ZMQ_FD only says "look again": Run asks each socket (ZMQ_EVENTS)
  // before it waits, so a level-triggered registration never spins.
  peers_->SetSocketObserver([this](int fd) { (void)AddToEpoll(fd, EPOLLIN); });
  workers_ =
      std::make_unique<WorkerPool>(options.workers == 0 ? 1 : options.workers, nullptr, nullptr);
  return Status::OK();
}

uint64_t ZmqLoop::WallMillis() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Status ZmqLoop::Run(int stop_fd) {
  if (Status s = AddToEpoll(stop_fd, EPOLLIN); !s.ok()) return s;
  constexpr int kMaxEvents = 64;
  epoll_event events[kMaxEvents];
  bool more = false;  // a socket was left with messages last turn
  for (;;) {
    RunPosted();
    RunTimers();
    peers_->RunDue();
    RunPosted();
    // Everything this turn produced leaves now, batched per peer.
    for (const auto& fn : turn_end_) fn();
    FlushReplies();
    peers_->Flush();
    // How long to sleep, from what is armed now that every callback of the
    // turn has run (one may have set a timer or made a call).
    long wait = NextTimerWait();
    const long peer_wait = peers_->NextWait();
    if (peer_wait >= 0 && (wait < 0 || peer_wait < wait)) wait = peer_wait;
    if (more || HasZmqInput()) wait = 0;
    {
      std::lock_guard<std::mutex> l(posted_mu_);
      if (!posted_.empty()) wait = 0;
    }
    constexpr long kMaxWaitMs = 60 * 1000;  // epoll_wait takes an int
    if (wait < 0 || wait > kMaxWaitMs) wait = kMaxWaitMs;
    const int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, static_cast<int>(wait));
    if (n < 0 && errno != EINTR) {
      return Status::IOError(std::string("epoll_wait failed: ") + std::strerror(errno));
    }
    bool stop = false;
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == stop_fd) {
        stop = true;
      } else if (fd == router_fd_) {
        router_ready_.Signalled();
      } else if (fd == zap_fd_) {
        zap_ready_.Signalled();
      } else if (peers_->OnReadable(fd)) {
        // drained below
      } else if (fd == event_fd_) {
        // Reset the eventfd before taking the queue: a Post that finds the
        // queue empty after that writes again, so no wake-up is lost.
        uint64_t count;
        ssize_t r = ::read(event_fd_, &count, sizeof(count));
        (void)r;
      } else if (auto it = watched_.find(fd); it != watched_.end()) {
        auto on_ready = it->second;  // it may unwatch itself
        on_ready(events[i].events);
      }
    }
    if (stop) break;
    DrainZap();
    more = DrainRouter();
    more = peers_->Drain() || more;
  }
  if (workers_) workers_->Stop();
  RunPosted();
  for (const auto& fn : turn_end_) fn();
  FlushReplies();
  return Status::OK();
}

// Only sockets sent on since their last drain are asked (ZmqReadiness).
bool ZmqLoop::HasZmqInput() {
  const bool router = router_ready_.BeforeSleep([this] { return HasPollIn(sockets_->router); });
  const bool peers = peers_->HasInput();
  const bool zap =
      sockets_->zap && zap_ready_.BeforeSleep([this] { return HasPollIn(*sockets_->zap); });
  return router || peers || zap;
}

void ZmqLoop::DrainZap() {
  if (!sockets_->zap || !zap_ready_.ready()) return;
  zmq::socket_t& zap = *sockets_->zap;
  for (int i = 0; i < 256; ++i) {
    std::vector<zmq::message_t> parts(1);
    if (!zap.recv(parts[0], zmq::recv_flags::dontwait)) {
      zap_ready_.Drained(/*to_eagain=*/true);
      return;
    }
    while (parts.back().more() && parts.size() < 16) {
      zmq::message_t part;
      (void)zap.recv(part, zmq::recv_flags::dontwait);
      parts.push_back(std::move(part));
    }
    // RFC 27: version, request id, domain, address, identity, mechanism,
    // then the mechanism's credentials (CURVE: the client's public key).
    std::string code = "400", text = "malformed ZAP request", user;
    if (parts.size() >= 7 && parts[0].to_string_view() == "1.0" &&
        parts[5].to_string_view() == "CURVE" && parts[6].size() == 32) {
      char key[curve::kKeyChars + 1];
      zmq_z85_encode(key, parts[6].data<uint8_t>(), 32);
      if (curve_->authorized->RoleOf(key) != nullptr) {
        code = "200";
        text = "OK";
        user = key;
      } else {
        text = "key not authorized";
        const auto now = Clock::now();
        if (now - refusals_logged_ >= std::chrono::seconds(1)) {
          // A public key is not a secret: naming it lets the operator act.
          log::Warn("refused a connection from " + parts[3].to_string() + ": its key " + key +
                    " is not in the authorized keys" +
                    (refusals_unlogged_ > 0
                         ? " (" + std::to_string(refusals_unlogged_) + " more refused since)"
                         : std::string()));
          refusals_logged_ = now;
          refusals_unlogged_ = 0;
        } else {
          ++refusals_unlogged_;
        }
      }
    }
    const std::string version = "1.0";
    const std::string request_id = parts.size() > 1 ? parts[1].to_string() : std::string();
    try {
      for (const std::string* f :
           std::initializer_list<const std::string*>{&version, &request_id, &code, &text, &user}) {
        (void)zap.send(zmq::buffer(*f), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      }
      (void)zap.send(zmq::str_buffer(""), zmq::send_flags::dontwait);  // no metadata
    } catch (const zmq::error_t& e) {
      log::Error(std::string("cannot answer a CURVE handshake: ") + e.what());
    }
    zap_ready_.Sent();
  }
  zap_ready_.Drained(/*to_eagain=*/false);
}

void ZmqLoop::SetAuthorizedKeys(std::shared_ptr<const curve::AuthorizedKeys> keys) {
  if (!curve_) return;
  curve_ = std::make_shared<curve::ServerKeys>(curve::ServerKeys{curve_->pair, keys});
  peers_->SetServerKeys(std::move(keys));
}

bool ZmqLoop::DrainRouter() {
  if (!router_ready_.ready()) return false;
  // Bounded, so replies and peers are not starved.
  for (int i = 0; i < 1024; ++i) {
    zmq::message_t identity;
    if (!sockets_->router.recv(identity, zmq::recv_flags::dontwait)) {
      router_ready_.Drained(/*to_eagain=*/true);
      return false;
    }
    // A multipart message arrives whole, so its parts are all ready. The
    // first after the identity is the request; any further one only counts.
    zmq::message_t body;
    size_t frames = 0;
    for (bool more = identity.more(); more; ++frames) {
      zmq::message_t part;
      (void)sockets_->router.recv(part, zmq::recv_flags::dontwait);
      more = part.more();
      if (frames == 0) body = std::move(part);
    }
    std::string from = identity.to_string();
    if (frames != 1) {
      Reply(from, wire::Reply::Error(
                      0, Status::InvalidArgument("malformed message: a request is exactly one "
                                                 "frame, got " +
                                                 std::to_string(frames))));
      if (handler_) handler_->OnMalformedEnvelope();
      continue;
    }
    if (handler_) handler_->OnRequest(from, body.to_string_view(), RoleOf(curve_.get(), body));
  }
  return true;
}

Loop::PeerTraffic ZmqLoop::peer_traffic() const {
  return peers_ ? peers_->traffic() : PeerTraffic{};
}

void ZmqLoop::Post(std::function<void()> fn) {
  bool wake;
  {
    std::lock_guard<std::mutex> l(posted_mu_);
    wake = posted_.empty();
    posted_.push_back(std::move(fn));
  }
  if (wake) {
    uint64_t one = 1;
    ssize_t n = ::write(event_fd_, &one, sizeof(one));
    (void)n;  // EAGAIN: the counter is already non-zero, the loop wakes anyway
  }
}

void ZmqLoop::RunPosted() {
  std::vector<std::function<void()>> ready;
  for (;;) {
    {
      std::lock_guard<std::mutex> l(posted_mu_);
      if (posted_.empty()) return;
      ready.swap(posted_);
    }
    for (auto& fn : ready) fn();
    ready.clear();
  }
}

Loop::TimerId ZmqLoop::After(std::chrono::milliseconds delay, std::function<void()> fn) {
  const TimerId id = next_timer_++;
  timers_.emplace(id, std::move(fn));
  due_.emplace(Clock::now() + delay, id);
  return id;
}

void ZmqLoop::RunTimers() {
  const auto now = Clock::now();
  for (;;) {
    while (!due_.empty() && !timers_.count(due_.top().second)) due_.pop();  // cancelled
    if (due_.empty() || due_.top().first > now) break;
    const TimerId id = due_.top().second;
    due_.pop();
    auto it = timers_.find(id);
    auto fn = std::move(it->second);
    timers_.erase(it);
    fn();
  }
}

long ZmqLoop::NextTimerWait() {
  while (!due_.empty() && !timers_.count(due_.top().second)) due_.pop();
  if (due_.empty()) return -1;
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(due_.top().first - Clock::now())
          .count();
  return ms < 0 ? 0 : ms + 1;
}

void ZmqLoop::Reply(const std::string& to, const wire::Reply& reply) {
  if (batching_.count(to)) {
    auto it = outbox_.find(to);
    if (it == outbox_.end()) {
      it = outbox_.emplace(to, wire::BatchWriter(wire::MsgType::kBatchReply)).first;
    }
    it->second.Add(reply);
    return;
  }
  SendFrame(to, wire::EncodeReply(reply));
}

void ZmqLoop::FlushReplies() {
  for (auto& [to, batch] : outbox_) {
    if (batch.size() > 0) SendFrame(to, batch.Take(0));
  }
}

void ZmqLoop::SendFrame(const std::string& to, const std::string& frame) {
  router_ready_.Sent();
  try {
    if (!sockets_->router.send(zmq::buffer(to),
                               zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return;
    }
    (void)sockets_->router.send(zmq::buffer(frame), zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
    // The requester is gone (ROUTER_MANDATORY is off, so this is rare): the
    // reply has nobody to go to.
  }
}

void ZmqLoop::Call(const std::string& endpoint, const wire::RequestView& req,
                   std::chrono::milliseconds timeout, ReplyCallback done) {
  peers_->Call(endpoint, req, timeout, std::move(done));
}

void ZmqLoop::SetPeerObserver(PeerObserver observer) { peers_->SetObserver(std::move(observer)); }

void ZmqLoop::RunOnWorker(std::function<void()> job) { workers_->Submit(std::move(job)); }

void ZmqLoop::SetEngineMode(EngineCalls mode) {
  engine_calls_ = mode;
  // An engine that may block gets the workers it was meant to have.
  if (mode != EngineCalls::kAll && workers_) {
    workers_->Grow(blocking_workers_);
  }
}

size_t ZmqLoop::WorkerThreads() const { return workers_ ? workers_->size() : 0; }

Status ZmqLoop::WatchFd(int fd, uint32_t events, std::function<void(uint32_t)> on_ready) {
  if (Status s = AddToEpoll(fd, events); !s.ok()) return s;
  watched_[fd] = std::move(on_ready);
  return Status::OK();
}

void ZmqLoop::UnwatchFd(int fd) {
  if (watched_.erase(fd)) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

}  // namespace dynamo
