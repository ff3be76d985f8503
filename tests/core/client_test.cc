// The client core without a cluster: RingView::FromJson on good and bad ring
// replies, and Client routing against endpoints the test plays itself on
// 127.0.0.1 (a port that refuses connections, and ZeroMQ ROUTER sockets that
// answer like a node, or never answer).
#include "dynamo/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "dynamo/key_hash.h"
#include "dynamo/transport/message.h"

namespace dynamo {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using wire::MsgType;

// ---- RingView::FromJson

// An owners array: one preference list (node ids) per partition.
json Owners(const std::vector<std::vector<std::string>>& lists) { return json(lists); }

// Three nodes, four partitions of two replicas each.
json GoodRing() {
  return json{{"version", 7},
              {"partitions", 4},
              {"replicas", 2},
              {"owners", Owners({{"b", "a"}, {"a", "c"}, {"c", "b"}, {"b", "c"}})},
              {"endpoints", {{"c", "tcp://c:3"}, {"a", "tcp://a:1"}, {"b", "tcp://b:2"}}},
              {"down", json::array()}};
}

// FromJson's error message for doc, or "" when it parses.
std::string RingError(const json& doc) {
  auto r = RingView::FromJson(doc.dump());
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  return r.status().message();
}

TEST(RingViewTest, GoodRing) {
  auto r = RingView::FromJson(GoodRing().dump());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->partitions(), 4u);
  EXPECT_EQ(r->version(), 7u);
  // Sorted by node id.
  EXPECT_EQ(r->endpoints(), (std::vector<std::string>{"tcp://a:1", "tcp://b:2", "tcp://c:3"}));
  const std::vector<std::vector<std::string>> lists = {{"tcp://b:2", "tcp://a:1"},
                                                       {"tcp://a:1", "tcp://c:3"},
                                                       {"tcp://c:3", "tcp://b:2"},
                                                       {"tcp://b:2", "tcp://c:3"}};
  std::vector<bool> seen(4, false);
  for (int i = 0; i < 200; ++i) {
    const std::string key = "key-" + std::to_string(i);
    const uint32_t p = PartitionOf(KeyHash(key), 4);
    seen[p] = true;
    EXPECT_EQ(r->PreferenceEndpoints(key), lists[p]) << key;
  }
  EXPECT_EQ(seen, std::vector<bool>(4, true));
  for (const char* ep : {"tcp://a:1", "tcp://b:2", "tcp://c:3"}) EXPECT_FALSE(r->ReportedDown(ep));
}

TEST(RingViewTest, OnePartitionAndNoVersion) {
  json doc = GoodRing();
  doc.erase("version");
  doc["owners"] = Owners({{"c"}});
  auto r = RingView::FromJson(doc.dump());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->partitions(), 1u);
  EXPECT_EQ(r->version(), 0u);
  EXPECT_EQ(r->PreferenceEndpoints("anything"), std::vector<std::string>{"tcp://c:3"});
}

TEST(RingViewTest, MissingEndpointsIsRefused) {
  json doc = GoodRing();
  doc.erase("endpoints");
  EXPECT_NE(RingError(doc).find("no endpoints"), std::string::npos) << RingError(doc);
  doc["endpoints"] = json::array({"tcp://a:1", "tcp://b:2", "tcp://c:3"});  // an array, not a map
  EXPECT_NE(RingError(doc).find("no endpoints"), std::string::npos) << RingError(doc);
}

TEST(RingViewTest, EmptyOrNonStringEndpointIsRefused) {
  json doc = GoodRing();
  doc["endpoints"]["b"] = "";
  EXPECT_NE(RingError(doc).find("no endpoint for b"), std::string::npos) << RingError(doc);
  doc["endpoints"]["b"] = 2;
  EXPECT_NE(RingError(doc).find("no endpoint for b"), std::string::npos) << RingError(doc);
}

TEST(RingViewTest, MissingOwnersIsRefused) {
  json doc = GoodRing();
  doc.erase("owners");
  EXPECT_NE(RingError(doc).find("no owners"), std::string::npos) << RingError(doc);
  doc["owners"] = "a";
  EXPECT_NE(RingError(doc).find("no owners"), std::string::npos) << RingError(doc);
}

TEST(RingViewTest, PartitionCountMustBeAPowerOfTwo) {
  json doc = GoodRing();
  doc["owners"] = json::array();
  EXPECT_NE(RingError(doc).find("partition count 0"), std::string::npos) << RingError(doc);
  doc["owners"] = Owners({{"a"}, {"b"}, {"c"}});
  EXPECT_NE(RingError(doc).find("partition count 3"), std::string::npos) << RingError(doc);
  doc["owners"] = Owners({{"a"}, {"b"}, {"c"}, {"a"}, {"b"}, {"c"}});
  EXPECT_NE(RingError(doc).find("partition count 6"), std::string::npos) << RingError(doc);
  doc["owners"] = Owners({{"a"}, {"b"}});
  EXPECT_EQ(RingError(doc), "");
}

TEST(RingViewTest, UnknownNodeInOwnersIsRefused) {
  json doc = GoodRing();
  doc["owners"][2] = json::array({"c", "zed"});
  EXPECT_NE(RingError(doc).find("no endpoint for zed"), std::string::npos) << RingError(doc);
}

TEST(RingViewTest, BadPreferenceListIsRefused) {
  json doc = GoodRing();
  doc["owners"][1] = json::array();  // empty
  EXPECT_NE(RingError(doc).find("partition 1"), std::string::npos) << RingError(doc);
  doc = GoodRing();
  doc["owners"][3] = json::array({"b", 5});  // not a node id
  EXPECT_NE(RingError(doc).find("partition 3"), std::string::npos) << RingError(doc);
  doc = GoodRing();
  doc["owners"][0] = "b";  // not a list
  EXPECT_NE(RingError(doc).find("partition 0"), std::string::npos) << RingError(doc);
}

TEST(RingViewTest, NotAJsonObjectIsRefused) {
  for (const char* text : {"", "{", "null", "[1, 2]", "\"ring\"", "42"}) {
    auto r = RingView::FromJson(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << text;
    EXPECT_NE(r.status().message().find("not a JSON object"), std::string::npos)
        << text << ": " << r.status().message();
  }
}

TEST(RingViewTest, DownListNamesEndpoints) {
  json doc = GoodRing();
  // Unknown members and non-strings are ignored.
  doc["down"] = json::array({"b", "ghost", 3});
  auto r = RingView::FromJson(doc.dump());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->ReportedDown("tcp://b:2"));
  EXPECT_FALSE(r->ReportedDown("tcp://a:1"));
  EXPECT_FALSE(r->ReportedDown("tcp://c:3"));
  EXPECT_FALSE(r->ReportedDown("ghost"));
  EXPECT_FALSE(r->ReportedDown("b"));
  // The preference lists are as they were: the client orders by liveness.
  EXPECT_EQ(r->endpoints().size(), 3u);

  doc["down"] = "b";  // not a list: no one is down
  r = RingView::FromJson(doc.dump());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->ReportedDown("tcp://b:2"));
}

// ---- endpoints played by the test

// A TCP port of 127.0.0.1 bound but not listening: every connection to it is
// refused, and no other process takes the port while this lives.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot bind a loopback port";
    }
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  }
  ~RefusingPort() {
    if (fd_ >= 0) close(fd_);
  }
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;

  const std::string& endpoint() const { return endpoint_; }

 private:
  int fd_ = -1;
  std::string endpoint_;
};

// A node played by a ROUTER socket on a free port of 127.0.0.1 and a thread
// serving it: RING gets the ring set with SetRing, PUT and DEL a context
// naming the node, GET one value naming the node, STATUS {"node_id": name}.
// A silent node takes requests and answers none.
class FakeNode {
 public:
  explicit FakeNode(std::string name, bool silent = false)
      : name_(std::move(name)), silent_(silent), socket_(context_, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeNode() {
    stop_ = true;
    thread_.join();
  }
  FakeNode(const FakeNode&) = delete;
  FakeNode& operator=(const FakeNode&) = delete;

  const std::string& endpoint() const { return endpoint_; }

  void SetRing(json ring) {
    std::lock_guard<std::mutex> lock(mu_);
    ring_ = std::move(ring);
  }

  // The requests received so far, in order.
  std::vector<wire::Request> received() const {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  std::vector<MsgType> types() const {
    std::vector<MsgType> out;
    for (const auto& r : received()) out.push_back(r.type);
    return out;
  }

 private:
  void Serve() {
    while (!stop_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, milliseconds(20)) == 0) continue;
      zmq::message_t identity, frame;
      if (!socket_.recv(identity, zmq::recv_flags::dontwait) || !identity.more() ||
          !socket_.recv(frame, zmq::recv_flags::dontwait)) {
        continue;
      }
      wire::RequestView view;
      Status s = wire::DecodeRequest(frame.to_string_view(), &view);
      const wire::Request req(view);  // kept after frame is gone
      wire::Reply rep;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (s.ok()) received_.push_back(req);
        rep = s.ok() ? Answer(req) : wire::Reply::Error(req.id, s);
      }
      if (silent_) continue;
      socket_.send(identity, zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(wire::EncodeReply(rep)), zmq::send_flags::none);
    }
  }

  wire::Reply Answer(const wire::Request& req) const {
    wire::Reply rep;
    rep.id = req.id;
    switch (req.type) {
      case MsgType::kRing: {
        rep.type = MsgType::kRingReply;
        auto bytes = json::to_msgpack(ring_);
        rep.status_msgpack.assign(bytes.begin(), bytes.end());
        return rep;
      }
      case MsgType::kStatus: {
        rep.type = MsgType::kStatusReply;
        auto bytes = json::to_msgpack(json{{"node_id", name_}});
        rep.status_msgpack.assign(bytes.begin(), bytes.end());
        return rep;
      }
      case MsgType::kPut:
      case MsgType::kDel:
        rep.type = MsgType::kPutReply;
        rep.context = "ctx-" + name_;
        return rep;
      case MsgType::kGet:
        rep.type = MsgType::kGetReply;
        rep.found = true;
        rep.values = {name_};
        rep.context = "ctx-" + name_;
        return rep;
      default:
        return wire::Reply::Error(req.id, Status::Unsupported("not played by the test"));
    }
  }

  const std::string name_;
  const bool silent_;
  zmq::context_t context_{1};
  zmq::socket_t socket_;  // used by the serving thread only, once it runs
  std::string endpoint_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  json ring_ = json::object();
  std::vector<wire::Request> received_;
};

// Generous limits: a loopback connection is made in well under a second.
ClientOptions Options(std::vector<std::string> endpoints,
                      CoordinationMode mode = CoordinationMode::kServer) {
  ClientOptions o;
  o.endpoints = std::move(endpoints);
  o.mode = mode;
  o.timeout = milliseconds(20000);
  o.connect_timeout = milliseconds(10000);
  o.ring_refresh = milliseconds(600000);
  return o;
}

// A key of partition p of q.
std::string KeyIn(uint32_t p, uint32_t q) {
  for (int i = 0;; ++i) {
    std::string key = "key-" + std::to_string(i);
    if (PartitionOf(KeyHash(key), q) == p) return key;
  }
}

// Two partitions: the first owned by a alone, the second by b alone.
json TwoNodeRing(const FakeNode& a, const FakeNode& b) {
  return json{{"version", 3},
              {"owners", Owners({{"a"}, {"b"}})},
              {"endpoints", {{"a", a.endpoint()}, {"b", b.endpoint()}}},
              {"down", json::array()}};
}

// ---- unreachable nodes

TEST(ClientRoutingTest, UnreachableNodeIsUnavailable) {
  RefusingPort port;
  ClientOptions o = Options({port.endpoint()});
  o.timeout = milliseconds(60000);
  o.connect_timeout = milliseconds(100);
  Client client(o);
  const auto start = std::chrono::steady_clock::now();
  auto r = client.Put("k", "v");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find(port.endpoint()), std::string::npos) << r.status().ToString();
  // It gave up at the connect timeout, not the call's: far below a minute.
  EXPECT_LT(took, milliseconds(30000));
  EXPECT_EQ(client.counters().unreachable, 1u);
  EXPECT_EQ(client.counters().direct, 0u);
  EXPECT_EQ(client.counters().fallback, 0u);

  auto g = client.Get("k");
  EXPECT_EQ(g.status().code(), Status::Code::kUnavailable);
  auto s = client.StatusJson();
  EXPECT_EQ(s.status().code(), Status::Code::kUnavailable);
}

TEST(ClientRoutingTest, EveryNodeUnreachable) {
  RefusingPort p1, p2;
  ClientOptions o = Options({p1.endpoint(), p2.endpoint()});
  o.connect_timeout = milliseconds(100);
  Client client(o);
  auto r = client.Put("k", "v");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(r.status().message().find("cannot reach any of 2 nodes"), std::string::npos)
      << r.status().ToString();
  EXPECT_EQ(client.counters().unreachable, 2u);
}

TEST(ClientRoutingTest, ClientModeWithoutRingFallsBack) {
  RefusingPort port;
  ClientOptions o = Options({port.endpoint()}, CoordinationMode::kClient);
  o.connect_timeout = milliseconds(100);
  Client client(o);
  auto r = client.Get("k");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable) << r.status().ToString();
  EXPECT_EQ(client.ring(), nullptr);
  EXPECT_EQ(client.counters().ring_pulls, 0u);
  EXPECT_EQ(client.counters().fallback, 1u);
  EXPECT_EQ(client.counters().direct, 0u);
  EXPECT_GE(client.counters().unreachable, 1u);
}

// ---- server mode

TEST(ClientRoutingTest, ServerModeMovesOnFromUnreachableNode) {
  RefusingPort port;
  FakeNode a("a");
  ClientOptions o = Options({port.endpoint(), a.endpoint()});
  o.connect_timeout = milliseconds(200);
  Client client(o);
  auto r = client.Put("k", "v");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "ctx-a");
  EXPECT_EQ(client.counters().unreachable, 1u);
  // The node that answered is tried first from now on.
  auto g = client.Get("k");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->values, std::vector<std::string>{"a"});
  EXPECT_EQ(client.counters().unreachable, 1u);
  EXPECT_EQ(a.types(), (std::vector<MsgType>{MsgType::kPut, MsgType::kGet}));
}

TEST(ClientRoutingTest, SentRequestIsNotSentElsewhere) {
  FakeNode silent("s", /*silent=*/true);
  FakeNode a("a");
  ClientOptions o = Options({silent.endpoint(), a.endpoint()});
  o.timeout = milliseconds(2000);
  Client client(o);
  auto r = client.Put("k", "v");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kTimeout) << r.status().ToString();
  EXPECT_NE(r.status().message().find(silent.endpoint()), std::string::npos)
      << r.status().ToString();
  EXPECT_EQ(silent.types(), std::vector<MsgType>{MsgType::kPut});
  EXPECT_TRUE(a.received().empty());
}

TEST(ClientRoutingTest, NextCallsLeaveANodeThatTimedOut) {
  FakeNode silent("s", /*silent=*/true);
  FakeNode a("a");
  ClientOptions o = Options({silent.endpoint(), a.endpoint()});
  o.timeout = milliseconds(2000);
  Client client(o);
  ASSERT_EQ(client.Put("k1", "v").status().code(), Status::Code::kTimeout);
  // The node took the request and answered nothing: the next calls go to
  // the other node first instead of waiting for it again.
  for (int i = 0; i < 3; ++i) {
    auto r = client.Put("k2", "v");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, "ctx-a");
  }
  EXPECT_EQ(silent.types(), std::vector<MsgType>{MsgType::kPut});
  EXPECT_EQ(a.received().size(), 3u);
}

TEST(ClientRoutingTest, AFailedRingPullIsNotRetriedOnEveryRequest) {
  FakeNode a("a");
  json bad = {{"owners", Owners({{"a"}, {"a"}, {"a"}})},  // three partitions: refused
              {"endpoints", {{"a", a.endpoint()}}}};
  a.SetRing(bad);
  ClientOptions o = Options({a.endpoint()}, CoordinationMode::kClient);
  Client client(o);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client.Put("k", "v").ok());
  // One pull, then the five puts, routed as in server mode: a refused ring
  // is tried again at most once a second, not before every request.
  std::vector<MsgType> want{MsgType::kRing};
  want.insert(want.end(), 5, MsgType::kPut);
  EXPECT_EQ(a.types(), want);
  EXPECT_EQ(client.counters().fallback, 5u);
}

TEST(ClientRoutingTest, ARingPullLeavesTimeForTheRequest) {
  // The pull goes to a node that never answers; the request, with the time
  // left, goes to the node that does (server-mode routing: no ring yet).
  FakeNode silent("s", /*silent=*/true);
  FakeNode a("a");
  a.SetRing(json{{"owners", Owners({{"a"}})}, {"endpoints", {{"a", a.endpoint()}}}});
  ClientOptions o = Options({silent.endpoint(), a.endpoint()}, CoordinationMode::kClient);
  o.timeout = milliseconds(4000);
  o.connect_timeout = milliseconds(1000);
  // Which node the pull asks is random: new clients until one asked the
  // silent node. Every put succeeds, that one included.
  for (int attempt = 0; attempt < 50 && silent.received().empty(); ++attempt) {
    Client client(o);
    auto r = client.Put("k", "v");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, "ctx-a");
  }
  EXPECT_EQ(silent.types(), std::vector<MsgType>{MsgType::kRing});
  EXPECT_FALSE(silent.received().empty()) << "the pull never picked the silent node";
}

TEST(ClientRoutingTest, InvalidEndpoints) {
  for (const char* ep : {"tcp://127.0.0.1:7101", "tcp://h:1", "tcp://[::1]:65535", "ipc:///x"}) {
    EXPECT_TRUE(IsValidEndpoint(ep)) << ep;
  }
  for (const char* ep : {"", "tcp://", "tcp://h", "tcp://h:", "tcp://:1", "tcp://h:0",
                         "tcp://h:65536", "tcp://h:1x", "ipc://", "udp://h:1", "h:1"}) {
    EXPECT_FALSE(IsValidEndpoint(ep)) << ep;
  }
}

TEST(ClientRoutingTest, ServerModeNeverPullsTheRing) {
  FakeNode a("a"), b("b");
  a.SetRing(TwoNodeRing(a, b));
  Client client(Options({a.endpoint()}));
  for (uint32_t p = 0; p < 2; ++p) ASSERT_TRUE(client.Put(KeyIn(p, 2), "v").ok());
  EXPECT_EQ(a.types(), (std::vector<MsgType>{MsgType::kPut, MsgType::kPut}));
  EXPECT_TRUE(b.received().empty());
  EXPECT_EQ(client.ring(), nullptr);
  EXPECT_EQ(client.counters().ring_pulls, 0u);
  EXPECT_EQ(client.counters().direct, 0u);
}

// ---- client mode

TEST(ClientRoutingTest, ClientModeSendsToThePreferenceList) {
  FakeNode a("a"), b("b");
  a.SetRing(TwoNodeRing(a, b));
  b.SetRing(TwoNodeRing(a, b));
  Client client(Options({a.endpoint()}, CoordinationMode::kClient));
  const std::string ka = KeyIn(0, 2), kb = KeyIn(1, 2);

  auto r = client.Put(kb, "v");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "ctx-b");
  auto g = client.Get(ka);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->values, std::vector<std::string>{"a"});
  auto d = client.Del(kb);
  ASSERT_TRUE(d.ok()) << d.status().ToString();

  // The ring came from the configured node, once; each key went to its owner.
  EXPECT_EQ(a.types(), (std::vector<MsgType>{MsgType::kRing, MsgType::kGet}));
  EXPECT_EQ(a.received()[1].key, ka);
  EXPECT_EQ(b.types(), (std::vector<MsgType>{MsgType::kPut, MsgType::kDel}));
  EXPECT_EQ(b.received()[0].key, kb);
  ASSERT_NE(client.ring(), nullptr);
  EXPECT_EQ(client.ring()->partitions(), 2u);
  EXPECT_EQ(client.ring()->version(), 3u);
  EXPECT_EQ(client.counters().ring_pulls, 1u);
  EXPECT_EQ(client.counters().direct, 3u);
  EXPECT_EQ(client.counters().fallback, 0u);

  // Status is about a configured node, whatever the ring says.
  auto s = client.StatusJson();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(json::parse(*s)["node_id"], "a");
}

TEST(ClientRoutingTest, ClientModeSkipsNodeReportedDown) {
  FakeNode a("a"), b("b");
  json ring = {{"owners", Owners({{"b", "a"}, {"b", "a"}})},
               {"endpoints", {{"a", a.endpoint()}, {"b", b.endpoint()}}},
               {"down", json::array({"b"})}};
  a.SetRing(ring);
  Client client(Options({a.endpoint()}, CoordinationMode::kClient));
  ASSERT_TRUE(client.Put("k", "v").ok());
  EXPECT_EQ(a.types(), (std::vector<MsgType>{MsgType::kRing, MsgType::kPut}));
  EXPECT_TRUE(b.received().empty());
  EXPECT_EQ(client.counters().direct, 1u);
}

TEST(ClientRoutingTest, ClientModeMovesOnFromUnreachableOwner) {
  RefusingPort port;
  FakeNode a("a");
  json ring = {{"owners", Owners({{"gone", "a"}})},
               {"endpoints", {{"a", a.endpoint()}, {"gone", port.endpoint()}}}};
  a.SetRing(ring);
  ClientOptions o = Options({a.endpoint()}, CoordinationMode::kClient);
  o.connect_timeout = milliseconds(200);
  Client client(o);
  auto r = client.Put("k", "v");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "ctx-a");
  EXPECT_EQ(a.types(), (std::vector<MsgType>{MsgType::kRing, MsgType::kPut}));
  EXPECT_EQ(client.counters().unreachable, 1u);
  EXPECT_EQ(client.counters().direct, 1u);
}

TEST(ClientRoutingTest, ClientModeFallsBackOnABadRing) {
  FakeNode a("a");
  json ring = {{"owners", Owners({{"a"}, {"a"}, {"a"}})},  // three partitions: refused
               {"endpoints", {{"a", a.endpoint()}}}};
  a.SetRing(ring);
  Client client(Options({a.endpoint()}, CoordinationMode::kClient));
  ASSERT_TRUE(client.Put("k", "v").ok());
  EXPECT_EQ(a.types(), (std::vector<MsgType>{MsgType::kRing, MsgType::kPut}));
  EXPECT_EQ(client.ring(), nullptr);
  EXPECT_EQ(client.counters().ring_pulls, 0u);
  EXPECT_EQ(client.counters().fallback, 1u);
  EXPECT_EQ(client.counters().direct, 0u);
}

}  // namespace
}  // namespace dynamo
