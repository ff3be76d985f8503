// Client: the one client implementation, under dynamoctl and (later) the C
// API. Speaks the wire protocol to one node, which coordinates.
//
// Contexts are opaque bytes: pass back what a get or put returned. Not
// thread-safe: use one Client per thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dynamo/status.h"

namespace dynamo {

namespace transport {
class Channel;
}
namespace wire {
struct Request;
}

struct ClientOptions {
  // The node to talk to. Default: tcp://127.0.0.1:7101.
  std::string endpoint = "tcp://127.0.0.1:7101";
  // How long to wait for each reply. Default: 5000 ms.
  std::chrono::milliseconds timeout{5000};
};

struct GetOptions {
  uint32_t r = 0;      // replies to wait for; 0 = the node's default
  bool local = false;  // the node's own engine only: no coordination, no repair
};

struct GetResult {
  bool found = false;               // false: no version, or tombstones only
  std::vector<std::string> values;  // the live siblings
  std::string context;              // pass to the next put/del (may be empty)
};

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // A missing key is not an error: found is false.
  Result<GetResult> Get(std::string_view key, const GetOptions& options = {});
  // Writes a new version; returns its context.
  Result<std::string> Put(std::string_view key, std::string_view value,
                          std::string_view context = {}, uint32_t w = 0);
  // Writes a tombstone; returns its context.
  Result<std::string> Del(std::string_view key, std::string_view context = {}, uint32_t w = 0);
  // The node's status as a JSON object (text).
  Result<std::string> StatusJson();
  // The node's ring as a JSON object: partitions, replicas, version, owners
  // (each partition's preference list).
  Result<std::string> RingJson();

  // Administration (DESIGN.md 3.2). Join: the node, holding a cluster of
  // its own, joins the cluster of the node at seed_endpoint. Leave: the node
  // hands its partitions off and leaves. Remove: node_id, a dead member,
  // is taken out of the cluster. Each returns once the node accepted the
  // request; the change then spreads by gossip.
  Status Join(std::string_view seed_endpoint);
  Status Leave();
  Status Remove(std::string_view node_id);

 private:
  Status Admin(wire::Request req);
  Result<std::string> Write(wire::Request req);    // PUT or DEL
  Result<std::string> MapJson(wire::Request req);  // STATUS or RING
  ClientOptions options_;
  std::unique_ptr<transport::Channel> channel_;
};

}  // namespace dynamo
