// Client: the one client implementation, under dynamoctl, dynamo-bench's
// client mode and the C API (dynamo/dynamo.h).
//
// Two ways to coordinate (paper 6.4, docs/client-api.md):
//   server  each request goes to one node of `endpoints`, which coordinates
//           it (forwarding a write to a replica when it is none);
//   client  the client pulls the ring from a node every ring_refresh (and
//           after a failure) and sends each key's request straight to the
//           first reachable node of the key's preference list, saving the
//           forwarding hop; with no usable ring it routes as in server mode.
//
// Contexts are opaque bytes: pass back what a get or put returned.
// Not thread-safe: use one Client per thread, or serialise the calls.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dynamo/status.h"

namespace dynamo {

namespace transport {
class Channel;
class ChannelContext;
}  // namespace transport
namespace wire {
template <typename Bytes>
struct BasicRequest;
using Request = BasicRequest<std::string>;
struct Reply;
}  // namespace wire

enum class CoordinationMode { kServer, kClient };

// tcp://HOST:PORT (a non-empty host, a port from 1 to 65535) or ipc://PATH:
// the endpoints a client accepts.
bool IsValidEndpoint(std::string_view endpoint);

struct ClientOptions {
  // The nodes to talk to: in server mode, requests go to the first one that
  // can be reached (and stay with it while it answers); in client mode these
  // are where the ring is first pulled from. Default: tcp://127.0.0.1:7101.
  std::vector<std::string> endpoints{"tcp://127.0.0.1:7101"};
  // Longest a call waits for its answer, every retry and a ring pull
  // included. Default 5000 ms.
  std::chrono::milliseconds timeout{5000};
  // Longest a call waits for a connection to one node before trying the
  // next (capped by timeout). Default 1000 ms.
  std::chrono::milliseconds connect_timeout{1000};
  CoordinationMode mode = CoordinationMode::kServer;
  // Client mode: how often the ring is pulled again. Default 10 s (paper 6.4).
  std::chrono::milliseconds ring_refresh{10000};
  // Replies a get waits for (R) and acknowledgements a put or delete waits
  // for (W) when the call does not say; 0 = the coordinating node's default.
  uint32_t r = 0;
  uint32_t w = 0;
  // CURVE (DESIGN.md 3.7): this client's key pair and the public key of
  // the node(s) in `endpoints`, each 40 characters of Z85. All empty: plain
  // connections. In client mode each member's own key comes with the ring.
  std::string curve_public_key;
  std::string curve_secret_key;
  std::string server_public_key;
  // Optional: one public key per entry of `endpoints`, in the same order,
  // for nodes that each have their own; used instead of server_public_key.
  std::vector<std::string> server_public_keys;
};

struct GetOptions {
  uint32_t r = 0;      // replies to wait for; 0 = ClientOptions::r
  bool local = false;  // the node's own engine only: no coordination, no repair
};

struct GetResult {
  bool found = false;               // false: no version, or tombstones only
  std::vector<std::string> values;  // the live siblings
  std::string context;              // pass to the next put/del (may be empty)
};

// What a client has done, for tests and tuning.
struct ClientCounters {
  uint64_t ring_pulls = 0;   // successful RING pulls (client mode)
  uint64_t direct = 0;       // key requests sent to a preference-list node
  uint64_t fallback = 0;     // key requests routed as in server mode
  uint64_t unreachable = 0;  // attempts that found no connection
};

// A ring as a client sees it: parsed from a node's RING reply.
class RingView {
 public:
  // Refuses anything that is not a RING reply of this protocol version:
  // Q a power of two, one non-empty preference list per partition, and an
  // endpoint for every node named.
  static Result<RingView> FromJson(std::string_view json);

  uint32_t partitions() const { return static_cast<uint32_t>(lists_.size()); }
  uint64_t version() const { return version_; }
  // Endpoints of the key's preference list, owner first.
  const std::vector<std::string>& PreferenceEndpoints(std::string_view key) const;
  // Every member's endpoint, sorted by node id.
  const std::vector<std::string>& endpoints() const { return endpoints_; }
  // Whether the node the ring came from took this endpoint's node for down.
  bool ReportedDown(const std::string& endpoint) const;
  // The endpoint of a member, or nullptr.
  const std::string* EndpointOf(std::string_view node_id) const;
  // The CURVE public key the member at endpoint serves with (the ring of a
  // node with CURVE on), or nullptr.
  const std::string* PublicKeyAt(const std::string& endpoint) const;

 private:
  uint64_t version_ = 0;
  std::vector<std::pair<std::string, std::string>> members_;  // (node id, endpoint), sorted
  std::vector<std::vector<std::string>> lists_;               // per partition
  std::vector<std::string> endpoints_;
  std::vector<std::string> down_;                          // endpoints, sorted
  std::vector<std::pair<std::string, std::string>> keys_;  // (endpoint, public key), sorted
};

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // A missing key is not an error: found is false.
  Result<GetResult> Get(std::string_view key, const GetOptions& options = {});
  // Writes a new version; returns its context. w = 0: ClientOptions::w.
  Result<std::string> Put(std::string_view key, std::string_view value,
                          std::string_view context = {}, uint32_t w = 0);
  // Writes a tombstone; returns its context.
  Result<std::string> Del(std::string_view key, std::string_view context = {}, uint32_t w = 0);
  // The node's status as a JSON object (text).
  Result<std::string> StatusJson();
  // The node's ring as a JSON object: partitions, replicas, version, owners
  // (each partition's preference list), endpoints (node id to endpoint).
  Result<std::string> RingJson();

  // Administration (DESIGN.md 3.2). Join: the node, holding a cluster of
  // its own, joins the cluster of the node at seed_endpoint. Leave: the node
  // hands its partitions off and leaves. Remove: node_id, a dead member,
  // is taken out of the cluster. Each returns once the node accepted the
  // request; the change then spreads by gossip.
  Status Join(std::string_view seed_endpoint);
  Status Leave();
  Status Remove(std::string_view node_id);
  // Starts moving the node's data into a new engine (DESIGN.md 3.10);
  // answered once the engine opened and the copy began (status shows the
  // rest).
  Status Migrate(std::string_view backend,
                 const std::vector<std::pair<std::string, std::string>>& options);

  const ClientCounters& counters() const { return counters_; }
  // Client mode: the ring in use (nullptr before the first pull succeeds).
  const RingView* ring() const { return ring_.get(); }

 private:
  struct Target;
  using Clock = std::chrono::steady_clock;

  // Sends req to the first of candidates that can be reached before the
  // deadline, in order, skipping nodes that recently could not be reached
  // unless nothing else is left. Only "unreachable" (nothing sent) moves on
  // to the next candidate: a request that was sent is never sent twice.
  Result<wire::Reply> Send(const wire::Request& req, const std::vector<std::string>& candidates,
                           Clock::time_point deadline);
  // The endpoints a request goes to: for a key in client mode, its
  // preference list then every other member; else the configured endpoints
  // starting with the one that answered last.
  // A write's context may name the node that should coordinate it (the
  // fastest replica of the read before, paper 6.4): it goes first when it
  // is on the preference list.
  std::vector<std::string> Route(std::string_view key, std::string_view context,
                                 Clock::time_point deadline);
  std::vector<std::string> ServerRoute();
  // Server mode starts with the configured endpoint `offset` places after
  // `endpoint` (when it is one of them).
  void Prefer(const std::string& endpoint, size_t offset);
  // Client mode: pulls the ring when it is due, within the call's deadline.
  void MaybePullRing(Clock::time_point deadline);
  Clock::time_point Deadline() const;  // now + timeout
  Target& TargetFor(const std::string& endpoint);
  Result<wire::Reply> Call(wire::Request req);  // server-routed
  Status Admin(wire::Request req);
  Result<std::string> Write(wire::Request req);    // PUT or DEL
  Result<std::string> MapJson(wire::Request req);  // STATUS or RING

  ClientOptions options_;
  std::shared_ptr<transport::ChannelContext> context_;
  std::vector<std::unique_ptr<Target>> targets_;
  size_t preferred_ = 0;  // index into options_.endpoints of the last node that answered
  std::unique_ptr<RingView> ring_;
  Clock::time_point ring_pulled_{};
  Clock::time_point last_pull_attempt_{};
  bool last_pull_failed_ = false;
  bool ring_stale_ = true;
  uint64_t rng_state_;
  ClientCounters counters_;
};

}  // namespace dynamo
