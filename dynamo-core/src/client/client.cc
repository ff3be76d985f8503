#include "dynamo/client.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>
#include <unordered_map>

#include "dynamo/key_hash.h"
#include "dynamo/transport/channel.h"
#include "dynamo/versioning.h"

namespace dynamo {

using wire::MsgType;

namespace {

// How long a node that could not be reached is tried only after the others.
constexpr std::chrono::milliseconds kUnreachableBackoff{1000};
// How often a failing ring pull is retried.
constexpr std::chrono::milliseconds kRingRetry{1000};
// A ring not refreshed for this many refresh periods is no longer trusted:
// requests are routed as in server mode until a pull succeeds.
constexpr int kRingTrustPeriods = 3;

Status Unexpected(const wire::Reply& r) {
  return Status::Corruption("unexpected reply type " + std::to_string(static_cast<int>(r.type)));
}

}  // namespace

bool IsValidEndpoint(std::string_view ep) {
  if (ep.rfind("ipc://", 0) == 0) return ep.size() > 6;
  if (ep.rfind("tcp://", 0) != 0) return false;
  const size_t colon = ep.rfind(':');
  if (colon <= 6 || colon + 1 >= ep.size() || ep.size() - colon - 1 > 5) return false;
  unsigned long port = 0;
  for (size_t i = colon + 1; i < ep.size(); ++i) {
    if (ep[i] < '0' || ep[i] > '9') return false;
    port = port * 10 + static_cast<unsigned long>(ep[i] - '0');
  }
  return port >= 1 && port <= 65535;
}

// ---- RingView

Result<RingView> RingView::FromJson(std::string_view text) {
  auto bad = [](const std::string& why) { return Status::Corruption("bad ring reply: " + why); };
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return bad("not a JSON object");
  auto owners = j.find("owners");
  auto endpoints = j.find("endpoints");
  if (owners == j.end() || !owners->is_array()) return bad("no owners");
  if (endpoints == j.end() || !endpoints->is_object()) {
    return bad("no endpoints (a node older than this client?)");
  }
  const size_t q = owners->size();
  if (q == 0 || (q & (q - 1)) != 0) return bad("partition count " + std::to_string(q));
  RingView v;
  if (auto ver = j.find("version"); ver != j.end() && ver->is_number_unsigned()) {
    v.version_ = ver->get<uint64_t>();
  }
  std::unordered_map<std::string, std::string> where;
  std::vector<std::pair<std::string, std::string>> members;
  for (const auto& [node, ep] : endpoints->items()) {
    if (!ep.is_string() || ep.get_ref<const std::string&>().empty()) {
      return bad("no endpoint for " + node);
    }
    where[node] = ep.get<std::string>();
    members.emplace_back(node, ep.get<std::string>());
  }
  std::sort(members.begin(), members.end());
  for (const auto& m : members) v.endpoints_.push_back(m.second);
  v.members_ = std::move(members);
  v.lists_.resize(q);
  for (size_t p = 0; p < q; ++p) {
    const auto& list = (*owners)[p];
    if (!list.is_array() || list.empty()) return bad("partition " + std::to_string(p));
    for (const auto& node : list) {
      if (!node.is_string()) return bad("partition " + std::to_string(p));
      auto it = where.find(node.get<std::string>());
      if (it == where.end()) return bad("no endpoint for " + node.get<std::string>());
      v.lists_[p].push_back(it->second);
    }
  }
  if (auto keys = j.find("public_keys"); keys != j.end() && keys->is_object()) {
    for (const auto& [node, key] : keys->items()) {
      auto it = where.find(node);
      if (it == where.end() || !key.is_string()) continue;
      v.keys_.emplace_back(it->second, key.get<std::string>());
    }
    std::sort(v.keys_.begin(), v.keys_.end());
  }
  if (auto down = j.find("down"); down != j.end() && down->is_array()) {
    for (const auto& node : *down) {
      if (!node.is_string()) continue;
      if (auto it = where.find(node.get<std::string>()); it != where.end()) {
        v.down_.push_back(it->second);
      }
    }
    std::sort(v.down_.begin(), v.down_.end());
  }
  return v;
}

const std::vector<std::string>& RingView::PreferenceEndpoints(std::string_view key) const {
  return lists_[PartitionOf(KeyHash(key), partitions())];
}

bool RingView::ReportedDown(const std::string& endpoint) const {
  return std::binary_search(down_.begin(), down_.end(), endpoint);
}

const std::string* RingView::EndpointOf(std::string_view node_id) const {
  auto it = std::lower_bound(members_.begin(), members_.end(), node_id,
                             [](const auto& m, std::string_view n) { return m.first < n; });
  return it != members_.end() && it->first == node_id ? &it->second : nullptr;
}

const std::string* RingView::PublicKeyAt(const std::string& endpoint) const {
  auto it = std::lower_bound(keys_.begin(), keys_.end(), endpoint,
                             [](const auto& k, const std::string& e) { return k.first < e; });
  return it != keys_.end() && it->first == endpoint ? &it->second : nullptr;
}

// ---- Client

struct Client::Target {
  std::unique_ptr<transport::Channel> channel;
  Clock::time_point unreachable_until{};
};

Client::Client(ClientOptions options)
    : options_(std::move(options)),
      context_(std::make_shared<transport::ChannelContext>()),
      rng_state_((static_cast<uint64_t>(std::random_device{}()) << 32) | std::random_device{}() |
                 1) {
  if (options_.endpoints.empty()) options_.endpoints.push_back("tcp://127.0.0.1:7101");
}

Client::~Client() = default;

Client::Target& Client::TargetFor(const std::string& endpoint) {
  for (auto& t : targets_) {
    if (t->channel->endpoint() == endpoint) return *t;
  }
  auto t = std::make_unique<Target>();
  if (options_.curve_secret_key.empty()) {
    t->channel = std::make_unique<transport::Channel>(endpoint, context_);
  } else {
    curve::ClientKeys keys{{options_.curve_public_key, options_.curve_secret_key},
                           options_.server_public_key};
    const auto& eps = options_.endpoints;
    if (auto it = std::find(eps.begin(), eps.end(), endpoint);
        it != eps.end() && options_.server_public_keys.size() == eps.size()) {
      keys.server_public_key = options_.server_public_keys[static_cast<size_t>(it - eps.begin())];
    }
    // A member the ring named serves with its own key.
    if (const std::string* key = ring_ ? ring_->PublicKeyAt(endpoint) : nullptr) {
      keys.server_public_key = *key;
    }
    t->channel = std::make_unique<transport::Channel>(endpoint, context_, &keys);
  }
  targets_.push_back(std::move(t));
  return *targets_.back();
}

Result<wire::Reply> Client::Send(const wire::Request& req,
                                 const std::vector<std::string>& candidates,
                                 Clock::time_point deadline) {
  const auto start = Clock::now();
  // Reachable-looking nodes first, in order; then those that recently were not.
  std::vector<Target*> order, later;
  for (const std::string& ep : candidates) {
    Target& t = TargetFor(ep);
    if (std::find(order.begin(), order.end(), &t) != order.end() ||
        std::find(later.begin(), later.end(), &t) != later.end()) {
      continue;
    }
    (t.unreachable_until <= start ? order : later).push_back(&t);
  }
  order.insert(order.end(), later.begin(), later.end());
  Status last;
  size_t tried = 0;
  for (Target* t : order) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    ++tried;
    if (!t->channel->usable()) {
      // ZeroMQ refused the endpoint itself: nothing can be sent there.
      last = Status::Unavailable(t->channel->connect_error());
      continue;
    }
    auto rep = t->channel->Call(req, left, std::min(options_.connect_timeout, left));
    if (rep.ok()) {
      t->unreachable_until = {};
      Prefer(t->channel->endpoint(), 0);
      return rep;
    }
    ring_stale_ = true;
    t->unreachable_until = Clock::now() + kUnreachableBackoff;
    if (rep.status().code() == Status::Code::kTimeout) {
      // Sent, so never sent again elsewhere; but the next calls start with
      // another node, so a node that takes requests and answers none (paused,
      // overloaded, cut off) does not hold every call to its timeout.
      Prefer(t->channel->endpoint(), 1);
    }
    if (rep.status().code() != Status::Code::kUnavailable) return rep.status();
    // Nothing was sent: the next candidate may take the request.
    ++counters_.unreachable;
    last = rep.status();
  }
  if (tried <= 1 && !last.ok()) return last;
  if (tried == 0) {
    // The call's time went on pulling the ring: nothing was sent.
    return Status::Unavailable("no node reached within " +
                               std::to_string(options_.timeout.count()) + " ms");
  }
  return Status::Unavailable("cannot reach any of " + std::to_string(tried) +
                             " nodes tried; last: " + last.message());
}

void Client::Prefer(const std::string& endpoint, size_t offset) {
  const auto& eps = options_.endpoints;
  if (auto it = std::find(eps.begin(), eps.end(), endpoint); it != eps.end()) {
    preferred_ = (static_cast<size_t>(it - eps.begin()) + offset) % eps.size();
  }
}

std::vector<std::string> Client::ServerRoute() {
  const auto& eps = options_.endpoints;
  std::vector<std::string> out;
  out.reserve(eps.size());
  for (size_t i = 0; i < eps.size(); ++i) out.push_back(eps[(preferred_ + i) % eps.size()]);
  return out;
}

void Client::MaybePullRing(Clock::time_point deadline) {
  const auto now = Clock::now();
  if (ring_ && !ring_stale_ && now - ring_pulled_ < options_.ring_refresh) return;
  if (last_pull_failed_ && now - last_pull_attempt_ < kRingRetry) {
    return;  // a pull failed a moment ago: do not retry on every request
  }
  last_pull_attempt_ = now;
  last_pull_failed_ = true;  // until it succeeds
  // A random known node (paper 6.4): the configured ones and the ring's,
  // those the ring reports down last.
  std::vector<std::string> known = options_.endpoints;
  if (ring_) {
    for (const std::string& ep : ring_->endpoints()) {
      if (std::find(known.begin(), known.end(), ep) == known.end()) known.push_back(ep);
    }
  }
  rng_state_ ^= rng_state_ << 13;
  rng_state_ ^= rng_state_ >> 7;
  rng_state_ ^= rng_state_ << 17;
  std::rotate(known.begin(), known.begin() + static_cast<long>(rng_state_ % known.size()),
              known.end());
  if (ring_) {
    std::stable_partition(known.begin(), known.end(),
                          [this](const std::string& ep) { return !ring_->ReportedDown(ep); });
  }
  // The pull gets part of the call's time, so the request itself can still
  // go out (with the ring it has, if the pull fails).
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
  const auto budget = std::min(options_.connect_timeout, left / 2);
  wire::Request req;
  req.type = MsgType::kRing;
  auto rep = Send(req, known, now + budget);
  if (!rep.ok() || !rep->ToStatus().ok() || rep->type != MsgType::kRingReply) return;
  auto j = nlohmann::json::from_msgpack(rep->status_msgpack, true, false);
  if (j.is_discarded()) return;
  auto view = RingView::FromJson(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  if (!view.ok()) return;
  ring_ = std::make_unique<RingView>(std::move(*view));
  ring_pulled_ = Clock::now();
  ring_stale_ = false;
  last_pull_failed_ = false;
  ++counters_.ring_pulls;
}

std::vector<std::string> Client::Route(std::string_view key, std::string_view context,
                                       Clock::time_point deadline) {
  if (options_.mode != CoordinationMode::kClient) return ServerRoute();
  MaybePullRing(deadline);
  if (!ring_ || Clock::now() - ring_pulled_ > kRingTrustPeriods * options_.ring_refresh) {
    ++counters_.fallback;
    return ServerRoute();
  }
  ++counters_.direct;
  const auto& pref = ring_->PreferenceEndpoints(key);
  std::vector<std::string> out;
  out.reserve(ring_->endpoints().size());
  std::string hint;
  const std::string* hinted = nullptr;
  if (!context.empty() && DecodeContext(context, &hint).ok() && !hint.empty()) {
    hinted = ring_->EndpointOf(hint);
    if (hinted != nullptr && (ring_->ReportedDown(*hinted) ||
                              std::find(pref.begin(), pref.end(), *hinted) == pref.end())) {
      hinted = nullptr;
    }
  }
  if (hinted != nullptr) out.push_back(*hinted);
  for (const std::string& ep : pref) {
    if (!ring_->ReportedDown(ep) && (hinted == nullptr || ep != *hinted)) out.push_back(ep);
  }
  for (const std::string& ep : pref) {
    if (ring_->ReportedDown(ep)) out.push_back(ep);
  }
  // Any node takes any request: past the preference list, the others.
  for (const std::string& ep : ring_->endpoints()) {
    if (std::find(pref.begin(), pref.end(), ep) == pref.end()) out.push_back(ep);
  }
  return out;
}

Client::Clock::time_point Client::Deadline() const { return Clock::now() + options_.timeout; }

Result<wire::Reply> Client::Call(wire::Request req) { return Send(req, ServerRoute(), Deadline()); }

Result<GetResult> Client::Get(std::string_view key, const GetOptions& options) {
  wire::Request req;
  req.type = MsgType::kGet;
  req.key = key;
  req.quorum = options.r ? options.r : options_.r;
  req.flags = options.local ? wire::kFlagLocal : 0;
  // A local read asks the configured node itself, whatever the mode. One
  // deadline covers a ring pull and the request.
  const auto deadline = Deadline();
  auto rep = Send(req, options.local ? ServerRoute() : Route(key, {}, deadline), deadline);
  if (!rep.ok()) return rep.status();
  if (Status s = rep->ToStatus(); !s.ok()) return s;
  if (rep->type != MsgType::kGetReply) return Unexpected(*rep);
  GetResult out;
  out.found = rep->found;
  out.values = std::move(rep->values);
  out.context = std::move(rep->context);
  return out;
}

Result<std::string> Client::Write(wire::Request req) {
  const auto deadline = Deadline();
  auto rep = Send(req, Route(req.key, req.context, deadline), deadline);
  if (!rep.ok()) return rep.status();
  if (Status s = rep->ToStatus(); !s.ok()) return s;
  if (rep->type != MsgType::kPutReply) return Unexpected(*rep);
  return std::move(rep->context);
}

Result<std::string> Client::Put(std::string_view key, std::string_view value,
                                std::string_view context, uint32_t w) {
  wire::Request req;
  req.type = MsgType::kPut;
  req.key = key;
  req.value = value;
  req.context = context;
  req.quorum = w ? w : options_.w;
  return Write(std::move(req));
}

Result<std::string> Client::Del(std::string_view key, std::string_view context, uint32_t w) {
  wire::Request req;
  req.type = MsgType::kDel;
  req.key = key;
  req.context = context;
  req.quorum = w ? w : options_.w;
  return Write(std::move(req));
}

Result<std::string> Client::MapJson(wire::Request req) {
  const MsgType want = req.type == MsgType::kRing ? MsgType::kRingReply : MsgType::kStatusReply;
  auto rep = Call(std::move(req));
  if (!rep.ok()) return rep.status();
  if (Status s = rep->ToStatus(); !s.ok()) return s;
  if (rep->type != want) return Unexpected(*rep);
  auto j = nlohmann::json::from_msgpack(rep->status_msgpack, true, false);
  if (j.is_discarded()) return Status::Corruption("reply is not a msgpack map");
  return j.dump();
}

Result<std::string> Client::StatusJson() {
  wire::Request req;
  req.type = MsgType::kStatus;
  return MapJson(std::move(req));
}

Result<std::string> Client::RingJson() {
  wire::Request req;
  req.type = MsgType::kRing;
  return MapJson(std::move(req));
}

Status Client::Admin(wire::Request req) {
  // An administrative request is about the node it is sent to: never the next one.
  auto rep = Send(req, {options_.endpoints.front()}, Deadline());
  if (!rep.ok()) return rep.status();
  if (Status s = rep->ToStatus(); !s.ok()) return s;
  if (rep->type != MsgType::kAck) return Unexpected(*rep);
  return Status::OK();
}

Status Client::Join(std::string_view seed_endpoint) {
  wire::Request req;
  req.type = MsgType::kAdminJoin;
  req.endpoint = std::string(seed_endpoint);
  return Admin(std::move(req));
}

Status Client::Leave() {
  wire::Request req;
  req.type = MsgType::kAdminLeave;
  return Admin(std::move(req));
}

Status Client::Remove(std::string_view node_id) {
  wire::Request req;
  req.type = MsgType::kAdminRemove;
  req.node_id = std::string(node_id);
  return Admin(std::move(req));
}

Status Client::Migrate(std::string_view backend,
                       const std::vector<std::pair<std::string, std::string>>& options) {
  wire::Request req;
  req.type = MsgType::kAdminMigrate;
  req.endpoint = std::string(backend);
  req.batch = options;
  return Admin(std::move(req));
}

}  // namespace dynamo
