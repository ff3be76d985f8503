#include "dynamo/transport/sim_loop.h"

#include "dynamo/log.h"

namespace dynamo {

namespace {
// The virtual wall clock starts at a fixed instant, so runs replay exactly.
constexpr uint64_t kWallStartMs = 1767225600000;  // 2026-01-01T00:00:00Z
}  // namespace

// ---- SimNetwork

SimNetwork::SimNetwork(uint64_t seed)
    : now_(Clock::time_point(std::chrono::hours(1))), rng_(seed) {}

SimNetwork::~SimNetwork() = default;

SimLoop* SimNetwork::AddLoop(const std::string& endpoint, EngineCalls engine_calls) {
  auto loop = std::make_unique<SimLoop>(this, endpoint, engine_calls);
  SimLoop* raw = loop.get();
  loops_[endpoint] = std::move(loop);
  return raw;
}

SimLoop* SimNetwork::LoopAt(const std::string& endpoint) const {
  auto it = loops_.find(endpoint);
  return it == loops_.end() ? nullptr : it->second.get();
}

void SimNetwork::Cut(const std::string& from, const std::string& to) { cut_.emplace(from, to); }

void SimNetwork::Isolate(const std::string& a, const std::string& b) {
  Cut(a, b);
  Cut(b, a);
}

void SimNetwork::Heal() { cut_.clear(); }

bool SimNetwork::Linked(const std::string& from, const std::string& to) const {
  return cut_.count({from, to}) == 0;
}

void SimNetwork::Schedule(std::chrono::nanoseconds delay, std::function<void()> fn) {
  events_.push(Event{now_ + delay, next_seq_++, std::move(fn)});
}

namespace {
// A write one node forwarded to a replica to coordinate: the one message
// the protocol does not take twice (a second copy would be coordinated
// again, a second version of one write). ZeroMQ delivers each message at
// most once; duplicates here stand for what a network could do to every
// other message.
bool IsForwardedWrite(const std::string& frame, bool is_reply) {
  if (is_reply) return false;
  wire::RequestView req;
  if (!wire::DecodeRequest(frame, &req).ok()) return false;
  return (req.type == wire::MsgType::kPut || req.type == wire::MsgType::kDel) &&
         (req.flags & wire::kFlagForwarded) != 0;
}
}  // namespace

bool SimNetwork::Chance(double p) {
  if (p <= 0) return false;
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53 < p;
}

std::chrono::nanoseconds SimNetwork::DrawLatency(bool between_nodes) {
  const auto span = static_cast<uint64_t>((faults_.latency_max - faults_.latency_min).count());
  std::chrono::nanoseconds d =
      faults_.latency_min + std::chrono::microseconds(span == 0 ? 0 : rng_() % (span + 1));
  if (between_nodes && faults_.slow_max.count() > 0 && Chance(faults_.slow)) {
    const auto max_us = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(faults_.slow_max).count());
    d += std::chrono::microseconds(rng_() % (max_us + 1));
  }
  return d;
}

void SimNetwork::Send(const std::string& from, const std::string& to, std::string frame,
                      bool is_reply) {
  ++counts_.sent;
  if (!Linked(from, to)) {
    ++counts_.cut;
    return;
  }
  const bool between_nodes = LoopAt(from) != nullptr && LoopAt(to) != nullptr;
  int copies = 1;
  if (between_nodes) {
    if (Chance(faults_.loss)) {
      ++counts_.lost;
      return;
    }
    if (Chance(faults_.duplicate) && !IsForwardedWrite(frame, is_reply)) {
      ++counts_.duplicated;
      copies = 2;
    }
  }
  for (int i = 0; i < copies; ++i) {
    Schedule(DrawLatency(between_nodes), [this, from, to, frame, is_reply] {
      ++counts_.delivered;
      if (SimLoop* loop = LoopAt(to)) {
        loop->Run([loop, from, frame, is_reply] { loop->OnFrame(from, frame, is_reply); });
        return;
      }
      if (!is_reply) return;  // nobody listens there
      wire::Reply rep;
      if (wire::DecodeReply(frame, &rep).ok()) client_replies_[to].push_back(std::move(rep));
    });
  }
}

void SimNetwork::ClientSend(const std::string& client, const std::string& endpoint,
                            const wire::Request& req) {
  Send(client, endpoint, wire::EncodeRequest(req), false);
}

std::vector<wire::Reply> SimNetwork::TakeReplies(const std::string& client) {
  auto it = client_replies_.find(client);
  if (it == client_replies_.end()) return {};
  std::vector<wire::Reply> out = std::move(it->second);
  client_replies_.erase(it);
  return out;
}

bool SimNetwork::RunNext(Clock::time_point until) {
  if (events_.empty() || events_.top().when > until) return false;
  // Copy out before popping: fn may schedule more events.
  Event ev = events_.top();
  events_.pop();
  if (ev.when > now_) now_ = ev.when;
  ++events_run_;
  ev.fn();
  return true;
}

void SimNetwork::RunFor(std::chrono::milliseconds d) {
  const auto until = now_ + d;
  while (RunNext(until)) {
  }
  now_ = until;
}

bool SimNetwork::RunUntilIdle(std::chrono::milliseconds limit) {
  const auto until = now_ + limit;
  while (RunNext(until)) {
  }
  if (events_.empty()) return true;
  now_ = until;
  return false;
}

// ---- SimLoop

SimLoop::SimLoop(SimNetwork* net, std::string endpoint, EngineCalls engine_calls)
    : net_(net), endpoint_(std::move(endpoint)), engine_calls_(engine_calls) {}

uint64_t SimLoop::WallMillis() const {
  return kWallStartMs + static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  net_->Now().time_since_epoch())
                                                  .count());
}

void SimLoop::Run(std::function<void()> fn) {
  if (paused_) {
    held_.push_back(std::move(fn));
    return;
  }
  if (net_->tag_logs_) log::SetTag(endpoint_.substr(endpoint_.rfind(':') + 1));
  fn();
}

void SimLoop::Resume() {
  paused_ = false;
  auto held = std::move(held_);
  held_.clear();
  for (auto& fn : held) net_->Schedule(std::chrono::nanoseconds(0), Armed([this, fn] { Run(fn); }));
}

std::function<void()> SimLoop::Armed(std::function<void()> fn) {
  return [this, epoch = epoch_, fn = std::move(fn)] {
    if (epoch == epoch_) fn();
  };
}

void SimLoop::Crash() {
  ++epoch_;
  paused_ = false;
  held_.clear();
  pending_.clear();
  timers_.clear();
  handler_ = nullptr;
  observer_ = nullptr;
}

void SimLoop::Reply(const std::string& to, const wire::Reply& reply) {
  net_->Send(endpoint_, to, wire::EncodeReply(reply), true);
}

void SimLoop::Call(const std::string& endpoint, const wire::RequestView& req,
                   std::chrono::milliseconds timeout, ReplyCallback done) {
  const uint64_t id = next_call_++;
  wire::RequestView numbered = req;
  numbered.id = id;
  pending_.emplace(id, Pending{std::move(done), endpoint});
  if (observer_) observer_(endpoint, false, Now());
  net_->Send(endpoint_, endpoint, wire::EncodeRequest(numbered), false);
  net_->Schedule(timeout, Armed([this, id] {
                   Run([this, id] {
                     auto it = pending_.find(id);
                     if (it == pending_.end()) return;
                     Finish(id,
                            Status::Timeout("no reply from " + it->second.endpoint + " in time"));
                   });
                 }));
}

void SimLoop::OnFrame(const std::string& from, std::string_view frame, bool is_reply) {
  if (!is_reply) {
    if (handler_) handler_->OnRequest(from, frame, curve::Role::kPeer);
    return;
  }
  wire::Reply rep;
  Status s = wire::DecodeReply(frame, &rep);
  if (observer_) observer_(from, true, Now());
  if (s.ok() && rep.type == wire::MsgType::kBatchReply) {
    for (const auto& inner : rep.frames) OnFrame(from, inner, true);
    return;
  }
  if (!pending_.count(rep.id)) return;  // late: already timed out
  if (!s.ok()) return Finish(rep.id, Status::Corruption("bad reply from a peer: " + s.message()));
  Finish(rep.id, std::move(rep));
}

void SimLoop::Finish(uint64_t id, Result<wire::Reply> result) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  ReplyCallback done = std::move(it->second.done);
  pending_.erase(it);
  done(std::move(result));
}

Loop::TimerId SimLoop::After(std::chrono::milliseconds delay, std::function<void()> fn) {
  const TimerId id = next_timer_++;
  timers_.insert(id);
  net_->Schedule(delay, Armed([this, id, fn = std::move(fn)] {
                   Run([this, id, fn] {
                     if (!timers_.erase(id)) return;  // cancelled
                     fn();
                   });
                 }));
  return id;
}

void SimLoop::Post(std::function<void()> fn) {
  net_->Schedule(std::chrono::nanoseconds(0), Armed([this, fn = std::move(fn)] { Run(fn); }));
}

void SimLoop::RunOnWorker(std::function<void()> job) {
  // A worker picks the job up a little later (10 to 100 µs, from the seed).
  const auto delay = std::chrono::microseconds(10 + net_->rng()() % 91);
  net_->Schedule(delay, Armed([this, job = std::move(job)] { Run(job); }));
}

}  // namespace dynamo
