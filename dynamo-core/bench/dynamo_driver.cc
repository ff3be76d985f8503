// The dynamo driver: DEALER sockets multiplexed by one zmq_poll loop per
// thread; requests built with the wire schema of dynamo_transport and
// matched to replies by request id. Server mode: one socket per client, to
// its --target node. Client mode: one socket per client and ring node; each
// request goes to the first node of its key's preference list.
#include <zmq.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <optional>
#include <random>
#include <thread>

#include "driver.h"
#include "dynamo/client.h"
#include "dynamo/transport/channel.h"
#include "dynamo/transport/curve.h"
#include "dynamo/transport/message.h"

namespace dynamo::bench {
namespace {

using wire::MsgType;

// One ZeroMQ context (one I/O thread) for the whole process: every I/O
// thread more is one more thread competing for the two cores.
void* SharedZmqContext() {
  struct Holder {
    void* ctx = zmq_ctx_new();
    ~Holder() { zmq_ctx_term(ctx); }
  };
  static Holder holder;
  return holder.ctx;
}

// The context this thread last got for each key (from a PUT_REPLY or a
// GET_REPLY), so the next put of the key supersedes what came before
// instead of adding a sibling: a put without a context is concurrent with
// every stored version, so blind writes would grow a hot key's sibling set
// without bound. Direct-mapped on the key index: bounded, and no allocation
// once each slot's string has grown to a context's size. A miss (evicted or
// never seen) makes a blind put.
class ContextCache {
 public:
  explicit ContextCache(size_t capacity) : tags_(capacity, 0), contexts_(capacity) {}
  const std::string* Find(uint64_t key) const {
    if (tags_.empty()) return nullptr;
    const size_t i = key % tags_.size();
    return tags_[i] == key + 1 ? &contexts_[i] : nullptr;
  }
  void Store(uint64_t key, std::string_view context) {
    if (tags_.empty() || context.empty()) return;
    const size_t i = key % tags_.size();
    tags_[i] = key + 1;
    contexts_[i].assign(context);
  }

 private:
  std::vector<uint64_t> tags_;  // key + 1; 0 = empty
  std::vector<std::string> contexts_;
};

struct Slot {
  bool busy = false;
  bool is_put = false;
  bool preload_get = false;  // preload: a read whose context the put after it uses
  uint64_t id = 0;
  uint64_t key = 0;
  size_t socket = 0;  // index into sockets_ of the socket the request went out on
  Clock::time_point start;
};

class DynamoDriver final : public Driver {
 public:
  DynamoDriver(const BenchOptions& opts, int thread, int first_client, int clients,
               const ZipfianChooser* zipf, const RingView* ring)
      : opts_(opts),
        timeout_(std::chrono::milliseconds(opts.timeout_ms)),
        cache_(std::min<uint64_t>(opts.keys, opts.context_cache / opts.threads)),
        gen_(opts, zipf, opts.seed * 7919 + static_cast<uint64_t>(thread) + 1),
        ring_(ring),
        per_client_(ring ? ring->endpoints().size() : 1) {
    next_id_ = std::random_device{}() | 1;
    req_.key.assign(kKeyBytes, '\0');
    req_.value = MakeValue(opts.value_size, opts.seed + static_cast<uint64_t>(thread));
    zmq_msg_init(&msg_);
    const int linger = 0;
    for (int i = 0; i < clients; ++i) {
      for (size_t n = 0; n < per_client_; ++n) {
        void* s = zmq_socket(SharedZmqContext(), ZMQ_DEALER);
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
        const std::string& target =
            ring ? ring->endpoints()[n]
                 : opts.targets[static_cast<size_t>(first_client + i) % opts.targets.size()];
        if (opts.curve()) {
          const std::string& server = opts.server_keys.at(target);
          zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server.data(), server.size());
          zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, opts.curve_public_key.data(),
                         opts.curve_public_key.size());
          zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, opts.curve_secret_key.data(),
                         opts.curve_secret_key.size());
        }
        if (zmq_connect(s, target.c_str()) != 0 && first_error_.empty()) {
          first_error_ = "cannot connect to " + target + ": " + zmq_strerror(zmq_errno());
        }
        sockets_.push_back(s);
        // Server mode polls every socket; client mode only those waiting
        // for a reply (PollItems), as most of a client's sockets are idle.
        if (!ring) {
          items_.push_back(zmq_pollitem_t{s, 0, ZMQ_POLLIN, 0});
          item_socket_.push_back(sockets_.size() - 1);
        }
      }
    }
    pending_.assign(sockets_.size(), 0);
    slots_.resize(static_cast<size_t>(clients) * static_cast<size_t>(opts.depth));
  }

  ~DynamoDriver() override {
    zmq_msg_close(&msg_);
    for (void* s : sockets_) zmq_close(s);
  }

  void Preload(RunControl* ctl, ThreadStats* stats) override { Loop(ctl, stats, true); }
  void Run(RunControl* ctl, ThreadStats* stats) override { Loop(ctl, stats, false); }

 private:
  // One PING on every socket, each answered (or given up on after
  // --timeout-ms), so that no measured request waits for a TCP connection
  // and its handshake. A node that does not answer shows later as the
  // errors of the requests sent to it.
  void Connect() override {
    wire::Request ping;
    ping.type = MsgType::kPing;
    std::vector<uint64_t> want(sockets_.size(), 0);  // the PING's id; 0 = answered
    size_t waiting = 0;
    for (size_t s = 0; s < sockets_.size(); ++s) {
      ping.id = next_id_++;
      const std::string frame = wire::EncodeRequest(ping);
      if (zmq_send(sockets_[s], frame.data(), frame.size(), ZMQ_DONTWAIT) < 0) continue;
      want[s] = ping.id;
      ++waiting;
    }
    const auto deadline = Clock::now() + timeout_;
    std::vector<zmq_pollitem_t> items;
    std::vector<size_t> which;
    while (waiting > 0 && Clock::now() < deadline) {
      items.clear();
      which.clear();
      for (size_t s = 0; s < sockets_.size(); ++s) {
        if (want[s] == 0) continue;
        items.push_back(zmq_pollitem_t{sockets_[s], 0, ZMQ_POLLIN, 0});
        which.push_back(s);
      }
      const int rc = zmq_poll(items.data(), static_cast<int>(items.size()), 10);
      if (rc < 0 && zmq_errno() != EINTR) return;
      for (size_t k = 0; rc > 0 && k < items.size(); ++k) {
        if (!(items[k].revents & ZMQ_POLLIN)) continue;
        const size_t s = which[k];
        while (want[s] != 0 && zmq_msg_recv(&msg_, sockets_[s], ZMQ_DONTWAIT) >= 0) {
          const std::string_view frame(static_cast<const char*>(zmq_msg_data(&msg_)),
                                       zmq_msg_size(&msg_));
          if (wire::DecodeReply(frame, &rep_).ok() && rep_.id == want[s]) {
            want[s] = 0;
            --waiting;
          }
        }
      }
    }
  }

  void Loop(RunControl* ctl, ThreadStats* stats, bool preload) {
    ctl_ = ctl;
    stats_ = stats;
    preload_ = preload;
    exhausted_ = false;
    if (!first_error_.empty()) stats->NoteError(first_error_);
    if (ring_) stats->sent_to.assign(per_client_, 0);
    for (size_t i = 0; i < slots_.size(); ++i) StartNext(i);
    auto last_scan = Clock::now();
    while (busy_ > 0 || !exhausted_) {
      if (ring_) PollItems();
      int rc = 0;
      if (items_.empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // nothing out: Scan refills
      } else {
        rc = zmq_poll(items_.data(), static_cast<int>(items_.size()), 10);
      }
      if (rc < 0 && zmq_errno() != EINTR) {
        stats->NoteError(std::string("zmq_poll: ") + zmq_strerror(zmq_errno()));
        break;
      }
      for (size_t k = 0; rc > 0 && k < items_.size(); ++k) {
        if (items_[k].revents & ZMQ_POLLIN) Drain(item_socket_[k]);
      }
      const auto now = Clock::now();
      if (now - last_scan >= std::chrono::milliseconds(10)) {
        last_scan = now;
        Scan(now);
      }
    }
  }

  // Issues the next operation on slot i, if the run allows one more.
  void StartNext(size_t i) {
    if (exhausted_) return;
    uint64_t key;
    if (preload_) {
      if (!ctl_->ClaimPreloadKey(opts_.keys, &key)) {
        exhausted_ = true;
        return;
      }
      // Read first unless the context is known, so preloading a key that
      // holds versions (an earlier run) supersedes them instead of adding a
      // sibling.
      const bool known = cache_.Find(key) != nullptr;
      Send(i, /*is_put=*/known, key, /*preload_get=*/!known);
      return;
    }
    if (!ctl_->Claim()) {
      exhausted_ = true;
      return;
    }
    const bool is_put = gen_.NextIsPut();
    Send(i, is_put, gen_.NextKey(), false);
  }

  // Client mode: the sockets waiting for a reply, polled this turn.
  void PollItems() {
    items_.clear();
    item_socket_.clear();
    for (size_t s = 0; s < sockets_.size(); ++s) {
      if (pending_[s] == 0) continue;
      items_.push_back(zmq_pollitem_t{sockets_[s], 0, ZMQ_POLLIN, 0});
      item_socket_.push_back(s);
    }
  }

  // Client mode: the ring node (index into ring_->endpoints()) that takes
  // the key: the first of its preference list not reported down, else the
  // first. Routed by the exact key bytes sent.
  size_t NodeFor(std::string_view key) const {
    const std::vector<std::string>& pref = ring_->PreferenceEndpoints(key);
    const std::string* pick = &pref.front();
    for (const std::string& ep : pref) {
      if (!ring_->ReportedDown(ep)) {
        pick = &ep;
        break;
      }
    }
    const std::vector<std::string>& eps = ring_->endpoints();
    for (size_t n = 0; n < eps.size(); ++n) {
      if (eps[n] == *pick) return n;
    }
    return 0;  // not reached: RingView::FromJson checks every listed node has an endpoint
  }

  void Send(size_t i, bool is_put, uint64_t key, bool preload_get) {
    Slot& slot = slots_[i];
    req_.type = is_put ? MsgType::kPut : MsgType::kGet;
    req_.id = next_id_++;
    FormatKey(key, req_.key.data());
    const size_t client = i / static_cast<size_t>(opts_.depth);
    size_t node = 0;
    if (ring_) node = NodeFor(req_.key);
    const size_t socket = client * per_client_ + node;
    req_.flags = 0;
    req_.quorum = is_put ? opts_.w : opts_.r;
    if (const std::string* ctx = is_put ? cache_.Find(key) : nullptr) {
      req_.context.assign(*ctx);
    } else {
      req_.context.clear();
    }
    const std::string frame = wire::EncodeRequest(req_);
    slot.is_put = is_put;
    slot.preload_get = preload_get;
    slot.id = req_.id;
    slot.key = key;
    slot.socket = socket;
    slot.start = Clock::now();
    if (zmq_send(sockets_[socket], frame.data(), frame.size(), ZMQ_DONTWAIT) < 0) {
      // Queue full or no connection: counted; Scan() retries the slot later.
      Fail(slot, std::string("send failed: ") + zmq_strerror(zmq_errno()), false);
      return;
    }
    slot.busy = true;
    ++busy_;
    ++pending_[socket];
    if (ring_) ++stats_->sent_to[node];
  }

  void Release(Slot& slot) {
    slot.busy = false;
    --busy_;
    --pending_[slot.socket];
  }

  // Reads the replies that are ready on socket s: at most as many as it
  // has outstanding (at least one, so a late reply cannot keep the socket
  // readable forever). Not until EAGAIN: with libzmq 4.3 every failed recv
  // costs a poll() and a getpid() syscall.
  void Drain(size_t s) {
    void* socket = sockets_[s];
    const size_t client = s / per_client_;
    const size_t expect = pending_[s];
    for (size_t n = 0; n < std::max<size_t>(expect, 1); ++n) {
      if (zmq_msg_recv(&msg_, socket, ZMQ_DONTWAIT) < 0) return;
      const bool extra = zmq_msg_more(&msg_);
      const std::string_view frame(static_cast<const char*>(zmq_msg_data(&msg_)),
                                   zmq_msg_size(&msg_));
      const Status decoded = wire::DecodeReply(frame, &rep_);
      if (extra) {  // a reply is one frame; skip the rest
        while (zmq_msg_more(&msg_) && zmq_msg_recv(&msg_, socket, ZMQ_DONTWAIT) >= 0) {
        }
      }
      Slot* slot = FindSlot(client, rep_.id);
      if (slot == nullptr) continue;  // a late reply to a request that timed out
      Complete(*slot, static_cast<size_t>(slot - slots_.data()), decoded);
    }
  }

  Slot* FindSlot(size_t client, uint64_t id) {
    const size_t depth = static_cast<size_t>(opts_.depth);
    for (size_t i = client * depth; i < (client + 1) * depth; ++i) {
      if (slots_[i].busy && slots_[i].id == id) return &slots_[i];
    }
    return nullptr;
  }

  void Complete(Slot& slot, size_t i, const Status& decoded) {
    const auto now = Clock::now();
    Release(slot);
    const MsgType want = slot.is_put ? MsgType::kPutReply : MsgType::kGetReply;
    if (!decoded.ok() || rep_.type != want) {
      std::string why = !decoded.ok()              ? "bad reply: " + decoded.ToString()
                        : rep_.type == MsgType::kError ? rep_.ToStatus().ToString()
                                                       : std::string("unexpected reply type");
      Fail(slot, why, false);
      StartNext(i);
      return;
    }
    cache_.Store(slot.key, rep_.context);
    if (preload_) {
      if (slot.preload_get) {
        Send(i, /*is_put=*/true, slot.key, false);  // with the context just read
        return;
      }
      stats_->Tick(false);
    } else {
      OpStats& s = slot.is_put ? stats_->put : stats_->get;
      s.latency.Record(MicrosSince(slot.start, now));
      if (!slot.is_put && !rep_.found) ++s.not_found;
      stats_->Finished(slot.is_put, false);
    }
    StartNext(i);
  }

  void Fail(const Slot& slot, std::string_view why, bool timeout) {
    stats_->NoteError(why);
    if (preload_) {
      ++stats_->preload_errors;
      stats_->Tick(true);
      return;
    }
    if (timeout) ++(slot.is_put ? stats_->put : stats_->get).timeouts;
    stats_->Finished(slot.is_put, true);
  }

  // Times out overdue requests and refills idle slots.
  void Scan(Clock::time_point now) {
    for (size_t i = 0; i < slots_.size(); ++i) {
      Slot& slot = slots_[i];
      if (slot.busy && now - slot.start > timeout_) {
        Release(slot);
        Fail(slot, "timeout: no reply within " + std::to_string(opts_.timeout_ms) + " ms", true);
      }
      if (!slot.busy) StartNext(i);
    }
  }

  const BenchOptions& opts_;
  const Clock::duration timeout_;
  ContextCache cache_;
  OpGenerator gen_;
  const RingView* ring_;           // client mode; nullptr in server mode
  const size_t per_client_;        // sockets per client: 1, or one per ring node
  std::vector<void*> sockets_;     // per_client_ per client, client-major
  std::vector<uint32_t> pending_;  // per socket: requests waiting for a reply
  std::vector<zmq_pollitem_t> items_;
  std::vector<size_t> item_socket_;  // per item: its index into sockets_
  std::vector<Slot> slots_;          // depth slots per client, client-major
  size_t busy_ = 0;
  bool exhausted_ = false;
  bool preload_ = false;
  RunControl* ctl_ = nullptr;
  ThreadStats* stats_ = nullptr;
  uint64_t next_id_ = 1;
  wire::Request req_;  // reused: key, value and context keep their capacity
  wire::Reply rep_;
  zmq_msg_t msg_;
  std::string first_error_;
};

}  // namespace

std::unique_ptr<Driver> MakeDynamoDriver(const BenchOptions& opts, int thread, int first_client,
                                         int clients, const ZipfianChooser* zipf,
                                         const RingView* ring) {
  return std::make_unique<DynamoDriver>(opts, thread, first_client, clients, zipf, ring);
}

std::string PullRing(const BenchOptions& opts, std::unique_ptr<RingView>* ring) {
  ClientOptions co;
  co.endpoints = opts.targets;
  co.timeout = std::chrono::milliseconds(opts.timeout_ms);
  if (opts.curve()) {  // through the first target, the one whose key was given
    co.endpoints = {opts.targets.front()};
    co.curve_public_key = opts.curve_public_key;
    co.curve_secret_key = opts.curve_secret_key;
    co.server_public_key = opts.server_public_key;
  }
  Client client(co);
  auto json = client.RingJson();
  if (!json.ok()) {
    return "cannot pull the ring (for --mode client, or the targets' keys): " +
           json.status().ToString();
  }
  auto view = RingView::FromJson(*json);
  if (!view.ok()) return "cannot use the ring: " + view.status().ToString();
  *ring = std::make_unique<RingView>(std::move(*view));
  return "";
}

std::string ProbeDynamo(const BenchOptions& opts) {
  for (const std::string& target : opts.targets) {
    std::optional<curve::ClientKeys> keys;
    if (opts.curve()) {
      keys = curve::ClientKeys{{opts.curve_public_key, opts.curve_secret_key},
                               opts.server_keys.at(target)};
    }
    transport::Channel channel(target, nullptr, keys ? &*keys : nullptr);
    wire::Request req;
    req.type = MsgType::kStatus;
    auto reply = channel.Call(req, std::chrono::milliseconds(opts.timeout_ms));
    if (!reply.ok()) return "cannot reach " + target + ": " + reply.status().ToString();
  }
  return "";
}

std::string MakeValue(size_t size, uint64_t seed) {
  std::string v(size, '\0');
  Rng rng(seed + 0x5eed);
  for (char& ch : v) ch = static_cast<char>('a' + rng.Next() % 26);
  return v;
}

}  // namespace dynamo::bench
