#include "dynamo/transport/channel.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>
#include <zmq.hpp>

namespace dynamo::transport {
namespace {

// Handshake failures in a row (no detail given) that mean a wrong server
// key rather than a connection that broke during a handshake.
constexpr int kSilentRefusals = 2;

std::atomic<uint64_t> monitor_serial{0};

}  // namespace

struct ChannelContext::Impl {
  zmq::context_t ctx{1};
};

ChannelContext::ChannelContext() : impl_(new Impl) {}
ChannelContext::~ChannelContext() = default;

struct Channel::Impl {
  explicit Impl(std::shared_ptr<ChannelContext> c)
      : context(c ? std::move(c) : std::make_shared<ChannelContext>()),
        socket(context->impl_->ctx, zmq::socket_type::dealer) {}
  std::shared_ptr<ChannelContext> context;  // declared first: outlives the socket
  zmq::socket_t socket;
  uint64_t next_id = 0;
  std::string connect_error;  // the endpoint was refused by ZeroMQ
  bool curve = false;
  // The socket's connection events: how a refused handshake is told from a
  // node that is not there.
  std::unique_ptr<zmq::socket_t> monitor;
  Status refused;  // the last handshake's refusal, until one succeeds
  int silent_refusals = 0;
  // Reads the connection events that arrived; true if any did.
  bool ReadEvents(const std::string& endpoint);
};

bool Channel::Impl::ReadEvents(const std::string& endpoint) {
  bool any = false;
  for (;;) {
    zmq::message_t event, address;
    if (!monitor->recv(event, zmq::recv_flags::dontwait)) return any;
    if (event.more()) (void)monitor->recv(address, zmq::recv_flags::dontwait);
    any = true;
    if (event.size() < 6) continue;
    uint16_t id;
    uint32_t value;
    std::memcpy(&id, event.data(), sizeof(id));
    std::memcpy(&value, static_cast<const char*>(event.data()) + 2, sizeof(value));
    switch (id) {
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        refused = Status::OK();
        silent_refusals = 0;
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        refused = Status::NotAuthorized(endpoint +
                                        " refused this client's CURVE key: it is not in the "
                                        "node's authorized keys (ZAP status " +
                                        std::to_string(value) + ")");
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
          refused = Status::NotAuthorized(
              curve ? endpoint + " does not use CURVE, but this client was given keys"
                    : endpoint +
                          " requires CURVE: give this client a key pair and the node's "
                          "public key (dynamoctl --curve-secret-key-file, --server-public-key)");
        } else {
          refused = Status::NotAuthorized("the handshake with " + endpoint +
                                          " failed: protocol error " + std::to_string(value));
        }
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        // The node could not open our CURVE hello: it was sealed for
        // another key than the node's own.
        if (curve && ++silent_refusals >= kSilentRefusals) {
          refused = Status::NotAuthorized(
              endpoint +
              " closed every connection during the CURVE handshake: its public key is not the "
              "one this client was given (--server-public-key), or it does not use CURVE");
        }
        break;
      default:
        break;
    }
  }
}

Channel::Channel(std::string endpoint, std::shared_ptr<ChannelContext> context,
                 const curve::ClientKeys* keys)
    : endpoint_(std::move(endpoint)), impl_(new Impl(std::move(context))) {
  impl_->socket.set(zmq::sockopt::linger, 0);
  try {
    if (keys != nullptr) {
      impl_->curve = true;
      impl_->socket.set(zmq::sockopt::curve_serverkey, keys->server_public_key);
      impl_->socket.set(zmq::sockopt::curve_publickey, keys->pair.public_key);
      impl_->socket.set(zmq::sockopt::curve_secretkey, keys->pair.secret_key);
    }
    const std::string monitor_endpoint =
        "inproc://dynamo-channel-monitor-" + std::to_string(++monitor_serial);
    if (zmq_socket_monitor(impl_->socket.handle(), monitor_endpoint.c_str(),
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0) {
      impl_->monitor =
          std::make_unique<zmq::socket_t>(impl_->context->impl_->ctx, zmq::socket_type::pair);
      impl_->monitor->set(zmq::sockopt::linger, 0);
      impl_->monitor->connect(monitor_endpoint);
    }
  } catch (const zmq::error_t& e) {
    impl_->connect_error = std::string("cannot set up the connection's keys: ") + e.what();
    return;
  }
  // Queue nothing while there is no connection: the socket is writable only
  // once the node is connected, so Call can tell "unreachable" (nothing
  // sent) from "no reply" (sent, fate unknown).
  impl_->socket.set(zmq::sockopt::immediate, 1);
  // ZMTP heartbeats: a peer that stops answering them (stopped, cut off) is
  // disconnected after a few seconds and counts as unreachable from then on,
  // instead of queueing requests on a dead TCP connection until the kernel
  // gives up (many minutes).
  impl_->socket.set(zmq::sockopt::heartbeat_ivl, 1000);
  impl_->socket.set(zmq::sockopt::heartbeat_timeout, 3000);
  // Start ids at a random point so two channels of one process, or a
  // restarted client, never mistake each other's replies.
  impl_->next_id = std::random_device{}() | 1;
  try {
    impl_->socket.connect(endpoint_);
  } catch (const zmq::error_t& e) {
    impl_->connect_error = "cannot use endpoint '" + endpoint_ + "': " + e.what();
  }
}

Channel::~Channel() = default;

bool Channel::usable() const { return impl_->connect_error.empty(); }
const std::string& Channel::connect_error() const { return impl_->connect_error; }

Result<wire::Reply> Channel::Call(wire::Request req, std::chrono::milliseconds timeout,
                                  std::chrono::milliseconds connect_timeout) {
  if (!impl_->connect_error.empty()) return Status::InvalidArgument(impl_->connect_error);
  req.id = impl_->next_id++;
  std::string frame = wire::EncodeRequest(req);
  if (frame.size() > wire::kMaxFrameBytes) {
    return Status::InvalidArgument("request of " + std::to_string(frame.size()) +
                                   " bytes exceeds the protocol's frame limit");
  }
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  auto timed_out = [&] {
    return Status::Timeout("no reply from " + endpoint_ + " within " +
                           std::to_string(timeout.count()) + " ms");
  };
  try {
    const auto connect_wait = std::min(timeout, connect_timeout);
    // Connected (the usual case): send without looking at the handshake
    // events. They wait in the monitor's queue, in order, and are read when
    // the socket is next found unconnected, the last of them deciding.
    bool sent = (impl_->socket.get(zmq::sockopt::events) & ZMQ_POLLOUT) != 0 &&
                impl_->socket.send(zmq::buffer(frame), zmq::send_flags::dontwait).has_value();
    while (!sent) {
      zmq::pollitem_t items[2] = {
          {impl_->socket.handle(), 0, ZMQ_POLLOUT, 0},
          {impl_->monitor ? impl_->monitor->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          start + connect_wait - std::chrono::steady_clock::now());
      if (left.count() < 0) left = std::chrono::milliseconds(0);
      const int ready = zmq::poll(items, impl_->monitor ? 2 : 1, left);
      if (impl_->monitor) impl_->ReadEvents(endpoint_);
      if ((items[0].revents & ZMQ_POLLOUT) == 0) {
        // Not connected: a refused handshake says why; else wait on.
        if (!impl_->refused.ok()) return impl_->refused;
        if (ready == 0) {
          return Status::Unavailable("cannot reach " + endpoint_ + ": no connection within " +
                                     std::to_string(connect_wait.count()) + " ms");
        }
        continue;
      }
      // Writable, yet the connection may have dropped since: then the send
      // would block, and we wait for the reconnection.
      sent = impl_->socket.send(zmq::buffer(frame), zmq::send_flags::dontwait).has_value();
    }
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return timed_out();
      zmq::pollitem_t item{impl_->socket.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, left) == 0) return timed_out();
      zmq::message_t msg;
      if (!impl_->socket.recv(msg, zmq::recv_flags::dontwait)) continue;
      while (msg.more()) {  // a reply is one frame; skip any extra
        zmq::message_t extra;
        (void)impl_->socket.recv(extra, zmq::recv_flags::dontwait);
        if (!extra.more()) break;
      }
      wire::Reply rep;
      Status s = wire::DecodeReply(msg.to_string_view(), &rep);
      if (rep.id != req.id) continue;  // a late reply to an earlier call
      if (!s.ok()) return Status::Corruption("bad reply from " + endpoint_ + ": " + s.message());
      return rep;
    }
  } catch (const zmq::error_t& e) {
    return Status::IOError("zmq error talking to " + endpoint_ + ": " + e.what());
  }
}

}  // namespace dynamo::transport
