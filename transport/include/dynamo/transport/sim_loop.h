// SimLoop: a Loop on a virtual clock, with in-process message delivery, for
// deterministic tests of the node's actors and of whole clusters in one
// process (STYLE.md: FoundationDB's sim2, TigerBeetle's VOPR).
//
// A SimNetwork holds the virtual clock, one queue of events ordered by
// (time, sequence) and one random generator seeded by the test; each node
// gets a SimLoop from it. Nothing runs by itself: the test drives time with
// RunFor / RunUntilIdle, and the same seed replays the same run exactly.
// Requests and replies are encoded and decoded as on the wire, and travel
// with a latency drawn from the seed; links can be cut (one way or both), so
// a call times out as it would on a real network. Messages between nodes
// can also be lost, duplicated (all but a forwarded write: ZeroMQ delivers
// a message at most once, and that is the one message the protocol would
// apply twice) or held back (SetFaults), each drawn from the seed; a
// client's requests and replies are only delayed (a client library never
// sends a request twice). Worker jobs run as events too (a short, random
// delay later), so engine hand-offs interleave as on a real node.
//
// Single-threaded: everything, Post included, must be called from the
// thread that drives the network.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "dynamo/transport/loop.h"

namespace dynamo {

class SimLoop;

class SimNetwork {
 public:
  using Clock = Loop::Clock;
  using EngineCalls = Loop::EngineCalls;

  explicit SimNetwork(uint64_t seed);
  ~SimNetwork();
  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  // A loop for the node listening at endpoint (owned by the network).
  // engine_calls: where engine calls run; by default at once, as for the
  // memory engine. Worker jobs run as events of the loop.
  SimLoop* AddLoop(const std::string& endpoint, EngineCalls engine_calls = EngineCalls::kAll);
  SimLoop* LoopAt(const std::string& endpoint) const;

  Clock::time_point Now() const { return now_; }
  std::mt19937_64& rng() { return rng_; }

  // What happens to messages between two nodes (both endpoints loops of
  // this network). Latency is uniform in [latency_min, latency_max]; a
  // message is then lost with probability `loss`, else delivered twice with
  // probability `duplicate` (the copy with its own latency), and each copy
  // is held back by up to `slow_max` more with probability `slow`.
  struct Faults {
    double loss = 0;
    double duplicate = 0;
    double slow = 0;
    std::chrono::microseconds latency_min{100}, latency_max{500};
    std::chrono::milliseconds slow_max{0};
  };
  void SetFaults(const Faults& faults) { faults_ = faults; }
  const Faults& faults() const { return faults_; }
  struct Counts {
    uint64_t sent = 0, lost = 0, duplicated = 0, cut = 0, delivered = 0;
  };
  const Counts& counts() const { return counts_; }
  // While set, every event of a node's loop runs with the log tag set to
  // the node's endpoint (log::SetTag), so a run's log tells nodes apart.
  void TagLogs(bool on) { tag_logs_ = on; }

  // Events run so far.
  uint64_t events_run() const { return events_run_; }

  // Messages from `from` to `to` are lost until Heal (one direction).
  void Cut(const std::string& from, const std::string& to);
  // Both directions.
  void Isolate(const std::string& a, const std::string& b);
  void Heal();

  // Runs events in order until none is due before now + d; the clock then
  // reads now + d.
  void RunFor(std::chrono::milliseconds d);
  // Runs events until the queue is empty or `limit` of virtual time passed.
  // Returns false when the limit was reached with events left (periodic
  // timers never leave the queue empty).
  bool RunUntilIdle(std::chrono::milliseconds limit = std::chrono::seconds(60));

  // A client outside the cluster: sends frame to the node at endpoint as
  // identity `client`; its replies are kept for TakeReplies.
  void ClientSend(const std::string& client, const std::string& endpoint, const wire::Request& req);
  std::vector<wire::Reply> TakeReplies(const std::string& client);

 private:
  friend class SimLoop;
  struct Event {
    Clock::time_point when;
    uint64_t seq;
    std::function<void()> fn;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.when != b.when ? a.when > b.when : a.seq > b.seq;
    }
  };
  void Schedule(std::chrono::nanoseconds delay, std::function<void()> fn);
  std::chrono::nanoseconds DrawLatency(bool between_nodes);
  bool Chance(double p);
  bool Linked(const std::string& from, const std::string& to) const;
  // Delivers a frame from `from` to the node or client at `to`.
  void Send(const std::string& from, const std::string& to, std::string frame, bool is_reply);
  bool RunNext(Clock::time_point until);

  Clock::time_point now_;
  std::mt19937_64 rng_;
  uint64_t next_seq_ = 1;
  std::priority_queue<Event, std::vector<Event>, Later> events_;
  Faults faults_;
  Counts counts_;
  uint64_t events_run_ = 0;
  bool tag_logs_ = false;
  std::set<std::pair<std::string, std::string>> cut_;
  std::map<std::string, std::unique_ptr<SimLoop>> loops_;
  std::map<std::string, std::vector<wire::Reply>> client_replies_;
};

class SimLoop final : public Loop {
 public:
  SimLoop(SimNetwork* net, std::string endpoint, EngineCalls engine_calls);

  // A paused loop takes no events (as a SIGSTOPped process): what arrives
  // meanwhile and its due timers wait until Resume.
  void Pause() { paused_ = true; }
  void Resume();
  // A crash of the node on this loop: everything it had armed is gone (calls
  // in flight, timers, posted closures, worker jobs, what a pause held) and
  // never runs, and the handler and observer are detached; the loop itself
  // stays, for a node started on it again. Messages already on the network
  // still arrive, as they would at a restarted process.
  void Crash();

  // Loop.
  Clock::time_point Now() const override { return net_->Now(); }
  uint64_t WallMillis() const override;
  uint64_t Random() override { return net_->rng()(); }
  void SetHandler(LoopHandler* handler) override { handler_ = handler; }
  void Reply(const std::string& to, const wire::Reply& reply) override;
  void BatchRepliesTo(const std::string&) override {}
  void Call(const std::string& endpoint, const wire::RequestView& req,
            std::chrono::milliseconds timeout, ReplyCallback done) override;
  void SetPeerObserver(PeerObserver observer) override { observer_ = std::move(observer); }
  TimerId After(std::chrono::milliseconds delay, std::function<void()> fn) override;
  void Cancel(TimerId id) override { timers_.erase(id); }
  void Post(std::function<void()> fn) override;
  EngineCalls EngineMode() const override { return engine_calls_; }
  void SetEngineMode(EngineCalls mode) override { engine_calls_ = mode; }
  void RunOnWorker(std::function<void()> job) override;

 private:
  friend class SimNetwork;
  // Runs fn now, or when the loop is resumed.
  void Run(std::function<void()> fn);
  // fn, bound to the current epoch: it does nothing after a Crash.
  std::function<void()> Armed(std::function<void()> fn);
  void OnFrame(const std::string& from, std::string_view frame, bool is_reply);
  void Finish(uint64_t id, Result<wire::Reply> result);

  SimNetwork* net_;
  std::string endpoint_;
  EngineCalls engine_calls_;
  bool paused_ = false;
  uint64_t epoch_ = 0;                       // bumped by Crash
  std::vector<std::function<void()>> held_;  // events that came while paused
  LoopHandler* handler_ = nullptr;
  PeerObserver observer_;
  struct Pending {
    ReplyCallback done;
    std::string endpoint;
  };
  std::unordered_map<uint64_t, Pending> pending_;
  uint64_t next_call_ = 1;
  std::unordered_set<TimerId> timers_;  // armed, not cancelled
  TimerId next_timer_ = 1;
};

}  // namespace dynamo
