// Channel: a client's request/reply conversation with one node.
//
// A DEALER socket connected to one endpoint; Call() numbers each request,
// sends it and waits for the reply carrying the same id. A reply that
// arrives after its call timed out is recognised by its id and discarded.
// Not thread-safe: one Channel per thread (ZeroMQ sockets are not shared).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "dynamo/status.h"
#include "dynamo/transport/message.h"

namespace dynamo::transport {

class Channel {
 public:
  // Does not block: ZeroMQ connects in the background and queues the first
  // request until the connection is up.
  explicit Channel(std::string endpoint);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Sends req with a fresh id and returns the node's reply (which may be an
  // ERROR reply: see Reply::ToStatus). Timeout when no reply came in time;
  // InvalidArgument when the request exceeds the frame limit.
  Result<wire::Reply> Call(wire::Request req, std::chrono::milliseconds timeout);

  const std::string& endpoint() const { return endpoint_; }

 private:
  struct Impl;
  std::string endpoint_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dynamo::transport
