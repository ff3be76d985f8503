// ZmqLoop: the real Loop of a dynamod process.
//
// One thread (the one that calls Run) owns every socket: the ROUTER bound on
// --listen, one DEALER per peer (peers.h), and any plain file descriptor a
// front end asks to watch (WatchFd: the RESP listener and its connections).
// It waits in one epoll set holding all of them (ZeroMQ sockets through
// their ZMQ_FD), an eventfd for closures posted from other threads, and the
// stop signal. A loop turn: run due timers and posted closures, send every
// reply and peer request queued this turn (one message per peer), wait, then
// drain every ready message. Engine work runs on a WorkerPool.
//
// Not thread-safe except Post (see loop.h).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "dynamo/status.h"
#include "dynamo/transport/curve.h"
#include "dynamo/transport/loop.h"
#include "dynamo/transport/zmq_readiness.h"

namespace dynamo {

class Peers;
class WorkerPool;

class ZmqLoop final : public Loop {
 public:
  struct Options {
    // The ROUTER's endpoint ("tcp://HOST:PORT"); peer connections leave
    // from its host.
    std::string listen;
    // Worker threads for blocking engine calls and file writes. Default: 4.
    size_t workers = 4;
    // The workers wanted once engine calls may block (SetEngineMode to other
    // than kAll: a node migrated off the memory engine); 0: `workers`.
    size_t workers_for_blocking_engines = 0;
    // Where engine calls run (Loop::EngineCalls, DESIGN.md 5).
    EngineCalls engine_calls = EngineCalls::kWorkers;
    // CURVE (DESIGN.md 3.7; null: plain, every caller a peer). The ROUTER is
    // then a CURVE server whose ZAP handler, run by this loop, admits only
    // listed keys; each request carries its key's role; peer connections
    // use the pair and the server key listed for the peer's endpoint.
    std::shared_ptr<const curve::ServerKeys> curve;
  };

  ZmqLoop();
  ~ZmqLoop() override;
  ZmqLoop(const ZmqLoop&) = delete;
  ZmqLoop& operator=(const ZmqLoop&) = delete;

  // Binds the ROUTER and starts the workers. The error is one line.
  Status Open(const Options& options);

  // Serves until stop_fd (e.g. a signalfd) becomes readable; then lets the
  // workers finish their queued jobs, runs what they posted, sends what is
  // queued and returns.
  Status Run(int stop_fd);

  // Watches a plain file descriptor (a TCP listener or connection): calls
  // on_ready with the epoll events (EPOLLIN, EPOLLOUT, ...) whenever it is
  // ready for `events`. Modify by calling again; UnwatchFd before closing it.
  Status WatchFd(int fd, uint32_t events, std::function<void(uint32_t)> on_ready);
  void UnwatchFd(int fd);
  // Runs fn at the end of every loop turn, before the loop waits (a front
  // end writes what the turn produced for its connections).
  void AtTurnEnd(std::function<void()> fn) { turn_end_.push_back(std::move(fn)); }

  // CURVE only: replaces the authorized keys (a reload). Roles apply from
  // the next request, to connections made before too; a peer connection
  // whose server key changed is made again.
  void SetAuthorizedKeys(std::shared_ptr<const curve::AuthorizedKeys> keys);

  // Loop.
  Clock::time_point Now() const override { return Clock::now(); }
  uint64_t WallMillis() const override;
  uint64_t Random() override { return rng_(); }
  void SetHandler(LoopHandler* handler) override { handler_ = handler; }
  void Reply(const std::string& to, const wire::Reply& reply) override;
  void BatchRepliesTo(const std::string& to) override { batching_.insert(to); }
  void Call(const std::string& endpoint, const wire::RequestView& req,
            std::chrono::milliseconds timeout, ReplyCallback done) override;
  void SetPeerObserver(PeerObserver observer) override;
  std::shared_ptr<const curve::ServerKeys> Keys() const override { return curve_; }
  TimerId After(std::chrono::milliseconds delay, std::function<void()> fn) override;
  void Cancel(TimerId id) override { timers_.erase(id); }
  void Post(std::function<void()> fn) override;
  EngineCalls EngineMode() const override { return engine_calls_; }
  void SetEngineMode(EngineCalls mode) override;
  size_t WorkerThreads() const override;
  PeerTraffic peer_traffic() const override;
  void RunOnWorker(std::function<void()> job) override;

 private:
  struct Sockets;
  void RunPosted();
  void RunTimers();
  // Milliseconds until the next timer is due (0: now), or -1 for none.
  long NextTimerWait();
  void FlushReplies();
  void SendFrame(const std::string& to, const std::string& frame);
  // Receives what the ROUTER has ready (bounded); true if more may remain.
  bool DrainRouter();
  bool HasZmqInput();
  // Answers the ZAP requests (CURVE handshakes) that are waiting.
  void DrainZap();
  Status AddToEpoll(int fd, uint32_t events);

  std::unique_ptr<Sockets> sockets_;
  int router_fd_ = -1;  // the ROUTER's ZMQ_FD
  ZmqReadiness router_ready_;
  std::shared_ptr<const curve::ServerKeys> curve_;  // null: plain
  int zap_fd_ = -1;                                 // the ZAP handler's ZMQ_FD
  ZmqReadiness zap_ready_;
  Clock::time_point refusals_logged_{};  // refused handshakes are logged at most once a second
  uint64_t refusals_unlogged_ = 0;
  std::unique_ptr<Peers> peers_;
  std::unique_ptr<WorkerPool> workers_;
  EngineCalls engine_calls_ = EngineCalls::kWorkers;
  size_t blocking_workers_ = 4;  // Options: what SetEngineMode grows the pool to
  LoopHandler* handler_ = nullptr;
  int epoll_fd_ = -1;
  int event_fd_ = -1;
  std::mt19937_64 rng_;

  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;  // guarded by posted_mu_

  // Timers: a min-heap of (when, id); a cancelled id is gone from timers_
  // and its heap entry skipped when it reaches the top.
  using Due = std::pair<Clock::time_point, TimerId>;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due_;
  std::unordered_map<TimerId, std::function<void()>> timers_;
  TimerId next_timer_ = 1;

  // Senders of BATCH requests, and their replies of this turn.
  std::unordered_set<std::string> batching_;
  std::unordered_map<std::string, wire::BatchWriter> outbox_;  // replies of this turn

  std::unordered_map<int, std::function<void(uint32_t)>> watched_;
  std::vector<std::function<void()>> turn_end_;
};

}  // namespace dynamo
