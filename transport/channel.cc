#include "dynamo/transport/channel.h"

#include <algorithm>
#include <random>
#include <zmq.hpp>

namespace dynamo::transport {

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
};

Channel::Channel(std::string endpoint, std::shared_ptr<ChannelContext> context)
    : endpoint_(std::move(endpoint)), impl_(new Impl(std::move(context))) {
  impl_->socket.set(zmq::sockopt::linger, 0);
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
    for (;;) {
      zmq::pollitem_t out_item{impl_->socket.handle(), 0, ZMQ_POLLOUT, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          start + connect_wait - std::chrono::steady_clock::now());
      if (left.count() < 0) left = std::chrono::milliseconds(0);
      if (zmq::poll(&out_item, 1, left) == 0) {
        return Status::Unavailable("cannot reach " + endpoint_ + ": no connection within " +
                                   std::to_string(connect_wait.count()) + " ms");
      }
      // Writable, yet the connection may have dropped since: then the send
      // would block, and we wait for the reconnection.
      if (impl_->socket.send(zmq::buffer(frame), zmq::send_flags::dontwait)) break;
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
