// Channel: a client's request/reply conversation with one node.
//
// A DEALER socket connected to one endpoint; Call() numbers each request,
// sends it and waits for the reply carrying the same id. A reply that
// arrives after its call timed out is recognised by its id and discarded.
// Not thread-safe: one Channel per thread (ZeroMQ sockets are not shared),
// or calls serialised by the owner.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "dynamo/status.h"
#include "dynamo/transport/curve.h"
#include "dynamo/transport/message.h"

namespace dynamo::transport {

// A ZeroMQ context (one I/O thread) that several channels of one client
// share. Must outlive them: channels keep a reference.
class ChannelContext {
 public:
  ChannelContext();
  ~ChannelContext();
  ChannelContext(const ChannelContext&) = delete;
  ChannelContext& operator=(const ChannelContext&) = delete;

 private:
  friend class Channel;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Channel {
 public:
  // Does not block: ZeroMQ connects in the background (and reconnects after
  // a failure). Without a context, the channel makes one of its own. With
  // keys, the connection is CURVE (DESIGN.md 3.7).
  explicit Channel(std::string endpoint, std::shared_ptr<ChannelContext> context = nullptr,
                   const curve::ClientKeys* keys = nullptr);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Sends req with a fresh id and returns the node's reply (which may be an
  // ERROR reply: see Reply::ToStatus). Errors:
  //   Unavailable      no connection to the node within connect_timeout
  //                    (capped by timeout); nothing was sent, so the
  //                    request may safely go elsewhere;
  //   Timeout          sent, but no reply within timeout (the node may
  //                    have acted on it);
  //   NotAuthorized    the node refused the connection's key, or this
  //                    channel's CURVE settings do not match the node's
  //                    (no key, a wrong server key); nothing was sent;
  //   InvalidArgument  the request exceeds the frame limit;
  //   Corruption       the reply did not decode.
  Result<wire::Reply> Call(wire::Request req, std::chrono::milliseconds timeout,
                           std::chrono::milliseconds connect_timeout);
  Result<wire::Reply> Call(wire::Request req, std::chrono::milliseconds timeout) {
    return Call(std::move(req), timeout, timeout);
  }

  const std::string& endpoint() const { return endpoint_; }
  // False when ZeroMQ refused the endpoint itself (connect_error says why):
  // every Call then fails without sending.
  bool usable() const;
  const std::string& connect_error() const;

 private:
  struct Impl;
  std::string endpoint_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dynamo::transport
