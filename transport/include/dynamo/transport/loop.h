// Loop: the world as a node's actors see it (DESIGN.md 5, STYLE.md 13).
//
// An actor (the coordinator, membership, hinted handoff, anti-entropy,
// partition transfer) never touches a socket, a thread or the clock itself:
// it sends requests to peers, replies to whoever asked, sets timers, runs
// engine work off the loop and reads the time, all through this interface.
// Two implementations: ZmqLoop (zmq_loop.h: ZeroMQ sockets, an eventfd, a
// worker pool, the real clock) and SimLoop (sim_loop.h: a virtual clock and
// in-process delivery, for deterministic tests).
//
// Thread-safety: every method runs on the loop's thread, except Post and
// WallMillis, which any thread may call. Callbacks always run on the loop's
// thread, never from inside the call that registered them.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "dynamo/histogram.h"
#include "dynamo/no_wait.h"
#include "dynamo/status.h"
#include "dynamo/transport/curve.h"
#include "dynamo/transport/message.h"

namespace dynamo {

// What a loop hands to the node: the requests that arrive.
class LoopHandler {
 public:
  virtual ~LoopHandler() = default;
  // One request frame from `from` (an opaque identity: pass it to
  // Loop::Reply), sent with a key of `role` (kPeer when the loop does not
  // authenticate: DESIGN.md 3.7). The frame is valid only during the call.
  virtual void OnRequest(const std::string& from, std::string_view frame, curve::Role role) = 0;
  // A message that was not one frame; the loop has answered it with an error.
  virtual void OnMalformedEnvelope() = 0;
};

// Whether an engine call's result says it would have blocked.
inline bool WouldBlock(const Status& s) { return s.IsWouldBlock(); }
template <typename T>
bool WouldBlock(const Result<T>& r) {
  return r.status().IsWouldBlock();
}
template <typename T>
bool WouldBlock(const T&) {
  return false;
}

class Loop {
 public:
  using Clock = std::chrono::steady_clock;
  using ReplyCallback = std::function<void(Result<wire::Reply>)>;
  using TimerId = uint64_t;
  // Told of every request sent to a peer (answered = false) and every reply
  // from one, late ones included: the failure detector's input.
  using PeerObserver =
      std::function<void(const std::string& endpoint, bool answered, Clock::time_point now)>;

  virtual ~Loop() = default;

  // ---- time
  virtual Clock::time_point Now() const = 0;
  // Wall-clock milliseconds since the Unix epoch (version timestamps).
  // Thread-safe: workers stamp versions with it.
  virtual uint64_t WallMillis() const = 0;
  // A uniformly random number (seeded once per loop).
  virtual uint64_t Random() = 0;

  // ---- clients and peers that sent us requests
  virtual void SetHandler(LoopHandler* handler) = 0;
  // Sends a reply to `to`: at once, or, for a sender marked with
  // BatchRepliesTo, at the end of the loop turn with its other replies.
  virtual void Reply(const std::string& to, const wire::Reply& reply) = 0;
  // `to` sends BATCH requests: its replies of one turn go back as one
  // BATCH_REPLY.
  virtual void BatchRepliesTo(const std::string& to) = 0;

  // ---- peers we send requests to
  // Sends req (its id is replaced) to the node at endpoint; done runs
  // exactly once, later: with the reply, or Timeout after `timeout`, or the
  // send failure.
  virtual void Call(const std::string& endpoint, const wire::RequestView& req,
                    std::chrono::milliseconds timeout, ReplyCallback done) = 0;
  virtual void SetPeerObserver(PeerObserver observer) = 0;
  // The CURVE keys the loop serves and calls peers with, as last reloaded;
  // null: plain traffic. The loop is their one owner.
  virtual std::shared_ptr<const curve::ServerKeys> Keys() const { return nullptr; }

  // ---- timers
  // Runs fn once, on the loop, `delay` from now (0: in this or the next turn).
  virtual TimerId After(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
  // Cancels a timer that has not run yet; a no-op otherwise.
  virtual void Cancel(TimerId id) = 0;

  // ---- other threads
  // Runs fn on the loop soon. Thread-safe.
  virtual void Post(std::function<void()> fn) = 0;

  // ---- engine work
  // Where engine calls run (DESIGN.md 5; docs/design.md "Engines on the
  // loop"):
  //  - kWorkers: on worker threads (an engine that may block on any call);
  //  - kSingleKey: calls for one key on the loop under a NoWaitScope, where
  //    a read that would wait for the disk answers WouldBlock and is run again
  //    on a worker; calls over many keys (scans, batches) on workers;
  //  - kAll: every call on the loop (an engine that never blocks).
  enum class EngineCalls { kWorkers, kSingleKey, kAll };
  virtual EngineCalls EngineMode() const = 0;
  // Changes where engine calls run from now on (an engine migration);
  // calls already running stay where they are.
  virtual void SetEngineMode(EngineCalls mode) = 0;
  // Worker threads running now (0 for a loop without threads of its own).
  virtual size_t WorkerThreads() const { return 0; }
  // Runs job on a worker thread (it posts its result back with Post).
  virtual void RunOnWorker(std::function<void()> job) = 0;

  // Runs work, a call of the engine for one key, then `then` with its result
  // (a T) on the loop: at once when the engine allows it, else on a worker.
  // Work may run twice (once on the loop, answering WouldBlock before it
  // changed anything, then on a worker). Work and Then are any callables: a
  // call that completes on the loop costs no allocation at all.
  template <typename T, typename Work, typename Then>
  void OnEngine(Work&& work, Then&& then) {
    switch (EngineMode()) {
      case EngineCalls::kAll:
        then(T(work()));
        return;
      case EngineCalls::kSingleKey: {
        std::optional<T> r;
        {
          NoWaitScope no_wait;
          r.emplace(work());
        }
        if (!WouldBlock(*r)) {
          then(std::move(*r));
          return;
        }
        ++engine_retries_;
        break;
      }
      case EngineCalls::kWorkers:
        break;
    }
    OnWorker<T>(std::forward<Work>(work), std::forward<Then>(then));
  }

  // Single-key engine calls that answered WouldBlock on the loop and ran
  // again on a worker (a read that had to go to the disk).
  uint64_t engine_retries() const { return engine_retries_; }

  // What this loop sent to peers and heard back (metrics): requests, the
  // frames they went in (a batch is one), batch sizes, replies, calls that
  // timed out or could not be sent. Loop thread only. A SimLoop counts none.
  struct PeerTraffic {
    static constexpr std::array<uint64_t, 8> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128};
    uint64_t requests = 0;
    uint64_t frames = 0;
    uint64_t replies = 0;
    uint64_t timeouts = 0;
    uint64_t send_failures = 0;
    FixedHistogram<8> batch_sizes{kBatchBounds};  // requests per frame
  };
  virtual PeerTraffic peer_traffic() const { return {}; }

  // Runs work, an engine call over many keys (a scan, a batch), on a worker,
  // or at once when every engine call may run on the loop.
  template <typename T, typename Work, typename Then>
  void OnEngineBulk(Work&& work, Then&& then) {
    if (EngineMode() == EngineCalls::kAll) {
      then(T(work()));
      return;
    }
    OnWorker<T>(std::forward<Work>(work), std::forward<Then>(then));
  }

  // Runs work on a worker thread always (files the loop must not wait for:
  // the hint store, the cluster state), then `then` on the loop. The result
  // travels in the posted closure itself.
  template <typename T, typename Work, typename Then>
  void OnWorker(Work&& work, Then&& then) {
    RunOnWorker([this, work = std::forward<Work>(work), then = std::forward<Then>(then)]() mutable {
      Post([then = std::move(then), result = T(work())]() mutable { then(std::move(result)); });
    });
  }

 private:
  uint64_t engine_retries_ = 0;
};

}  // namespace dynamo
