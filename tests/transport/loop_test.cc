// The two Loop implementations: ZmqLoop on real sockets and threads, SimLoop
// on a virtual clock. Both must keep the contract of loop.h: callbacks on
// the loop, exactly once, replies matched to calls, timers in order.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "dynamo/transport/sim_loop.h"
#include "dynamo/transport/zmq_loop.h"
#include "gtest/gtest.h"

namespace dynamo {
namespace {

using namespace std::chrono_literals;

std::string FreeEndpoint() {
  // Bind port 0 with a throwaway socket, then reuse the number.
  zmq::context_t ctx;
  zmq::socket_t s(ctx, zmq::socket_type::router);
  s.bind("tcp://127.0.0.1:0");
  return s.get(zmq::sockopt::last_endpoint);
}

// Answers PING with ACK; remembers what it saw.
class Echo : public LoopHandler {
 public:
  explicit Echo(Loop* loop) : loop_(loop) {}
  void OnRequest(const std::string& from, std::string_view frame, curve::Role role) override {
    wire::RequestView req;
    if (!wire::DecodeRequest(frame, &req).ok()) return;
    if (req.type == wire::MsgType::kBatch) {
      ++batches;
      loop_->BatchRepliesTo(from);
      for (const auto& inner : req.frames) OnRequest(from, inner, role);
      return;
    }
    ++requests;
    if (silent) return;
    loop_->Reply(from, wire::Reply::Ack(req.id));
  }
  void OnMalformedEnvelope() override { ++malformed; }
  Loop* loop_;
  std::atomic<int> requests{0}, batches{0}, malformed{0};
  bool silent = false;
};

// A ZmqLoop running on its own thread until Stop.
class Running {
 public:
  explicit Running(Loop::EngineCalls engine_calls = Loop::EngineCalls::kAll) {
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
    ZmqLoop::Options o;
    o.listen = FreeEndpoint();
    o.workers = 2;
    o.engine_calls = engine_calls;
    endpoint = o.listen;
    Status s = loop.Open(o);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  void Start() {
    thread_ = std::thread([this] { result = loop.Run(stop_fd_); });
  }
  void Stop() {
    uint64_t one = 1;
    ASSERT_EQ(::write(stop_fd_, &one, sizeof(one)), 8);
    thread_.join();
  }
  ~Running() {
    if (thread_.joinable()) Stop();
    ::close(stop_fd_);
  }
  ZmqLoop loop;
  std::string endpoint;
  Status result;

 private:
  int stop_fd_ = -1;
  std::thread thread_;
};

template <typename F>
bool WaitFor(F done, std::chrono::milliseconds limit = 5000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(ZmqLoopTest, TimersRunInOrderAndCancelledOnesNever) {
  Running r;
  std::vector<int> order;
  std::atomic<bool> done{false};
  r.loop.Post([&] {
    r.loop.After(30ms, [&] { order.push_back(3); });
    r.loop.After(10ms, [&] { order.push_back(1); });
    const auto cancelled = r.loop.After(20ms, [&] { order.push_back(99); });
    r.loop.After(15ms, [&] { order.push_back(2); });
    r.loop.Cancel(cancelled);
    r.loop.After(50ms, [&] { done = true; });
  });
  r.Start();
  ASSERT_TRUE(WaitFor([&] { return done.load(); }));
  r.Stop();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(r.result.ok());
}

TEST(ZmqLoopTest, PostedClosuresAndWorkerResultsRunOnTheLoopThread) {
  Running r(Loop::EngineCalls::kWorkers);
  std::thread::id loop_id;
  std::atomic<int> on_loop{0}, off_loop{0};
  r.loop.Post([&] { loop_id = std::this_thread::get_id(); });
  r.Start();
  std::vector<std::thread> posters;
  for (int t = 0; t < 4; ++t) {
    posters.emplace_back([&] {
      for (int i = 0; i < 250; ++i) {
        r.loop.Post([&] { (std::this_thread::get_id() == loop_id ? on_loop : off_loop)++; });
      }
    });
  }
  for (auto& t : posters) t.join();
  std::atomic<int> engine_done{0};
  r.loop.Post([&] {
    EXPECT_EQ(r.loop.EngineMode(), Loop::EngineCalls::kWorkers);
    for (int i = 0; i < 10; ++i) {
      r.loop.OnEngine<int>(
          [&] {
            EXPECT_NE(std::this_thread::get_id(), loop_id);  // a worker
            return 7;
          },
          [&](int v) {
            EXPECT_EQ(v, 7);
            EXPECT_EQ(std::this_thread::get_id(), loop_id);
            ++engine_done;
          });
    }
  });
  ASSERT_TRUE(WaitFor([&] { return on_loop + off_loop == 1000 && engine_done == 10; }));
  r.Stop();
  EXPECT_EQ(on_loop.load(), 1000);
}

// With single-key engine calls on the loop, a call runs there first under a
// NoWaitScope; one that answers WouldBlock runs again on a worker, outside
// any scope, and its result (only that one) reaches `then` on the loop.
// Calls over many keys always go to a worker.
TEST(ZmqLoopTest, SingleKeyCallsRunOnTheLoopAndWhatWouldBlockRunsAgainOnAWorker) {
  Running r(Loop::EngineCalls::kSingleKey);
  std::thread::id loop_id;
  r.loop.Post([&] { loop_id = std::this_thread::get_id(); });
  r.Start();
  std::atomic<int> done{0};
  std::vector<std::string> log;  // appended to on the loop only, or by one worker at a time
  std::mutex log_mu;
  auto note = [&](std::string what) {
    std::lock_guard<std::mutex> l(log_mu);
    log.push_back(std::move(what));
  };
  r.loop.Post([&] {
    ASSERT_EQ(r.loop.EngineMode(), Loop::EngineCalls::kSingleKey);
    // Answers from memory: completes on the loop, in the same turn.
    r.loop.OnEngine<Status>(
        [&] {
          note(std::string("fast on ") +
               (std::this_thread::get_id() == loop_id ? "loop" : "worker") +
               (NoWaitScope::Active() ? " no-wait" : " may-wait"));
          return Status::OK();
        },
        [&](Status s) {
          EXPECT_TRUE(s.ok());
          ++done;
        });
    EXPECT_EQ(done.load(), 1);
    // Would have to wait for the disk: tried on the loop, then on a worker.
    r.loop.OnEngine<Result<int>>(
        [&]() -> Result<int> {
          bool on_loop = std::this_thread::get_id() == loop_id;
          note(std::string("slow on ") + (on_loop ? "loop" : "worker") +
               (NoWaitScope::Active() ? " no-wait" : " may-wait"));
          if (NoWaitScope::Active()) return Status::WouldBlock("not cached");
          return 42;
        },
        [&](Result<int> v) {
          EXPECT_EQ(std::this_thread::get_id(), loop_id);
          ASSERT_TRUE(v.ok()) << v.status().ToString();
          EXPECT_EQ(*v, 42);
          ++done;
        });
    EXPECT_EQ(done.load(), 1);  // the retry is still on its way
    r.loop.OnEngineBulk<int>(
        [&] {
          note(std::string("bulk on ") +
               (std::this_thread::get_id() == loop_id ? "loop" : "worker"));
          return 1;
        },
        [&](int) { ++done; });
  });
  ASSERT_TRUE(WaitFor([&] { return done == 3; }));
  r.Stop();
  std::sort(log.begin(), log.end());
  EXPECT_EQ(log, (std::vector<std::string>{"bulk on worker", "fast on loop no-wait",
                                           "slow on loop no-wait", "slow on worker may-wait"}));
}

TEST(ZmqLoopTest, CallsGetTheirRepliesAndOneTurnsCallsTravelAsOneBatch) {
  Running a, b;
  Echo echo_b(&b.loop);
  b.loop.SetHandler(&echo_b);
  std::atomic<int> sent{0}, answered{0}, ok{0};
  a.loop.SetPeerObserver([&](const std::string& ep, bool answer, Loop::Clock::time_point) {
    EXPECT_EQ(ep, b.endpoint);
    (answer ? answered : sent)++;
  });
  a.Start();
  b.Start();
  std::atomic<int> replies{0};
  a.loop.Post([&] {
    for (int i = 0; i < 5; ++i) {
      wire::Request req;
      req.type = wire::MsgType::kPing;
      a.loop.Call(b.endpoint, req, 5000ms, [&](Result<wire::Reply> rep) {
        ++replies;
        if (rep.ok() && rep->type == wire::MsgType::kAck) ++ok;
      });
    }
  });
  ASSERT_TRUE(WaitFor([&] { return replies == 5; }));
  a.Stop();
  b.Stop();
  EXPECT_EQ(ok.load(), 5);
  EXPECT_EQ(echo_b.requests.load(), 5);
  EXPECT_EQ(echo_b.batches.load(), 1);  // the five of one turn, in one message
  EXPECT_EQ(sent.load(), 5);
  EXPECT_EQ(answered.load(), 1);  // one batch reply came back
}

// Two running loops; b takes requests and never answers.
struct CallerAndSilentPeer {
  CallerAndSilentPeer() {
    silent.silent = true;
    b.loop.SetHandler(&silent);
    a.Start();
    b.Start();
  }
  Running a, b;
  Echo silent{&b.loop};
};

wire::Request Ping() {
  wire::Request req;
  req.type = wire::MsgType::kPing;
  return req;
}

TEST(ZmqLoopTest, ACallNobodyAnswersTimesOutOnce) {
  CallerAndSilentPeer pair;
  Running &a = pair.a, &b = pair.b;
  Echo& silent = pair.silent;
  std::atomic<int> calls{0};
  Status got;
  a.loop.Post([&] {
    a.loop.Call(b.endpoint, Ping(), 100ms, [&](Result<wire::Reply> rep) {
      got = rep.status();
      ++calls;
    });
  });
  ASSERT_TRUE(WaitFor([&] { return calls == 1; }));
  std::this_thread::sleep_for(200ms);
  a.Stop();
  b.Stop();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(got.code(), Status::Code::kTimeout) << got.ToString();
  EXPECT_EQ(silent.requests.load(), 1);
}

TEST(ZmqLoopTest, ATimerSetByATimeoutCallbackStillFires) {
  // The loop decides how long to sleep after every callback of its turn
  // ran: a timer armed by a call's timeout is not slept past.
  CallerAndSilentPeer pair;
  Running &a = pair.a, &b = pair.b;
  std::atomic<bool> fired{false};
  a.loop.Post([&] {
    a.loop.Call(b.endpoint, Ping(), 50ms,
                [&](Result<wire::Reply>) { a.loop.After(20ms, [&] { fired = true; }); });
  });
  EXPECT_TRUE(WaitFor([&] { return fired.load(); }));
  a.Stop();
  b.Stop();
}

TEST(ZmqLoopTest, AMessageOfTwoFramesIsAnsweredWithAnErrorAndTheLoopServesOn) {
  Running b;
  Echo echo(&b.loop);
  b.loop.SetHandler(&echo);
  b.Start();
  zmq::context_t ctx;
  zmq::socket_t client(ctx, zmq::socket_type::dealer);
  client.set(zmq::sockopt::rcvtimeo, 5000);
  client.connect(b.endpoint);
  client.send(zmq::str_buffer("one"), zmq::send_flags::sndmore);
  client.send(zmq::str_buffer("two"), zmq::send_flags::none);
  zmq::message_t msg;
  ASSERT_TRUE(client.recv(msg));
  wire::Reply rep;
  ASSERT_TRUE(wire::DecodeReply(msg.to_string_view(), &rep).ok());
  EXPECT_EQ(rep.type, wire::MsgType::kError);
  EXPECT_NE(rep.error_message.find("exactly one frame, got 2"), std::string::npos)
      << rep.error_message;
  wire::Request ping;
  ping.type = wire::MsgType::kPing;
  ping.id = 42;
  client.send(zmq::buffer(wire::EncodeRequest(ping)));
  ASSERT_TRUE(client.recv(msg));
  ASSERT_TRUE(wire::DecodeReply(msg.to_string_view(), &rep).ok());
  EXPECT_EQ(rep.type, wire::MsgType::kAck);
  EXPECT_EQ(rep.id, 42u);
  b.Stop();
  EXPECT_EQ(echo.malformed.load(), 1);
}

TEST(ZmqLoopTest, WatchedDescriptorsWakeTheLoop) {
  Running r;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::atomic<int> reads{0};
  ASSERT_TRUE(r.loop
                  .WatchFd(fds[0], EPOLLIN,
                           [&](uint32_t events) {
                             EXPECT_TRUE(events & EPOLLIN);
                             char c;
                             if (::read(fds[0], &c, 1) == 1) ++reads;
                           })
                  .ok());
  r.Start();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(::write(fds[1], "x", 1), 1);
    ASSERT_TRUE(WaitFor([&] { return reads == i + 1; }));
  }
  r.loop.Post([&] { r.loop.UnwatchFd(fds[0]); });
  r.Stop();
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_EQ(reads.load(), 3);
}

// ---- SimLoop

TEST(SimLoopTest, CallsAreDeliveredOnTheVirtualClockAndTimersRunInOrder) {
  SimNetwork net(1);
  SimLoop* a = net.AddLoop("sim://a");
  SimLoop* b = net.AddLoop("sim://b");
  Echo echo(b);
  b->SetHandler(&echo);
  const auto start = net.Now();
  Result<wire::Reply> got = Status::Internal("not yet");
  Loop::Clock::time_point answered_at;
  wire::Request req;
  req.type = wire::MsgType::kPing;
  a->Call("sim://b", req, 1000ms, [&](Result<wire::Reply> rep) {
    got = std::move(rep);
    answered_at = a->Now();
  });
  std::vector<int> order;
  a->After(5ms, [&] { order.push_back(2); });
  a->After(1ms, [&] { order.push_back(1); });
  net.RunFor(10ms);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->type, wire::MsgType::kAck);
  // Two one-way latencies of 100-500 µs.
  EXPECT_GE(answered_at - start, 200us);
  EXPECT_LE(answered_at - start, 1000us);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_EQ(net.Now() - start, 10ms);
}

TEST(SimLoopTest, ACutLinkTimesTheCallOutAndHealingRestoresIt) {
  SimNetwork net(2);
  SimLoop* a = net.AddLoop("sim://a");
  SimLoop* b = net.AddLoop("sim://b");
  Echo echo(b);
  b->SetHandler(&echo);
  net.Cut("sim://b", "sim://a");  // replies are lost, requests arrive
  int calls = 0;
  Status first;
  wire::Request req;
  req.type = wire::MsgType::kPing;
  a->Call("sim://b", req, 50ms, [&](Result<wire::Reply> rep) {
    ++calls;
    first = rep.status();
  });
  net.RunFor(100ms);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(first.code(), Status::Code::kTimeout);
  EXPECT_EQ(echo.requests.load(), 1);
  net.Heal();
  bool ok = false;
  a->Call("sim://b", req, 50ms, [&](Result<wire::Reply> rep) { ok = rep.ok(); });
  net.RunFor(100ms);
  EXPECT_TRUE(ok);
}

TEST(SimLoopTest, APausedLoopAnswersOnlyAfterResume) {
  SimNetwork net(3);
  SimLoop* a = net.AddLoop("sim://a");
  SimLoop* b = net.AddLoop("sim://b");
  Echo echo(b);
  b->SetHandler(&echo);
  b->Pause();
  wire::Request req;
  req.type = wire::MsgType::kPing;
  Status s1, s2;
  a->Call("sim://b", req, 20ms, [&](Result<wire::Reply> rep) { s1 = rep.status(); });
  a->Call("sim://b", req, 500ms, [&](Result<wire::Reply> rep) { s2 = rep.status(); });
  net.RunFor(100ms);
  EXPECT_EQ(s1.code(), Status::Code::kTimeout);
  EXPECT_EQ(echo.requests.load(), 0);
  b->Resume();
  net.RunFor(100ms);
  EXPECT_EQ(echo.requests.load(), 2);  // both arrived; the first answer comes too late
  EXPECT_TRUE(s2.ok()) << s2.ToString();
}

TEST(SimLoopTest, ACrashDropsEverythingTheLoopHadArmed) {
  SimNetwork net(5);
  SimLoop* a = net.AddLoop("sim://a", Loop::EngineCalls::kWorkers);
  SimLoop* b = net.AddLoop("sim://b");
  Echo echo(b);
  b->SetHandler(&echo);
  int ran = 0;
  wire::Request req;
  req.type = wire::MsgType::kPing;
  a->Call("sim://b", req, 50ms, [&](Result<wire::Reply>) { ++ran; });
  a->After(5ms, [&] { ++ran; });
  a->Post([&] { ++ran; });
  a->OnWorker<int>([] { return 1; }, [&](int) { ++ran; });
  a->Crash();
  net.RunFor(200ms);
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(echo.requests.load(), 1);  // the request was on the network already
  // The loop serves a node started on it again.
  bool ok = false;
  a->Call("sim://b", req, 50ms, [&](Result<wire::Reply> rep) { ok = rep.ok(); });
  net.RunFor(100ms);
  EXPECT_TRUE(ok);
}

TEST(SimLoopTest, TheSameSeedReplaysTheSameRun) {
  auto trace = [](uint64_t seed) {
    SimNetwork net(seed);
    std::vector<SimLoop*> loops;
    std::vector<std::unique_ptr<Echo>> echoes;
    for (int i = 0; i < 3; ++i) {
      loops.push_back(net.AddLoop("sim://" + std::to_string(i), Loop::EngineCalls::kWorkers));
      echoes.push_back(std::make_unique<Echo>(loops.back()));
      loops.back()->SetHandler(echoes.back().get());
    }
    std::vector<std::pair<int, int64_t>> events;
    for (int i = 0; i < 30; ++i) {
      SimLoop* from = loops[i % 3];
      wire::Request req;
      req.type = wire::MsgType::kPing;
      from->Call("sim://" + std::to_string((i + 1) % 3), req, 100ms,
                 [&events, &net, i](Result<wire::Reply>) {
                   events.emplace_back(i, (net.Now().time_since_epoch()).count());
                 });
      from->OnEngine<int>([] { return 1; },
                          [&events, &net, i](int) {
                            events.emplace_back(100 + i, net.Now().time_since_epoch().count());
                          });
    }
    net.RunFor(1000ms);
    return events;
  };
  const auto one = trace(7), again = trace(7), other = trace(8);
  EXPECT_EQ(one.size(), 60u);
  EXPECT_EQ(one, again);
  EXPECT_NE(one, other);
}

TEST(SimLoopTest, ClientsOutsideTheClusterGetTheirReplies) {
  SimNetwork net(4);
  SimLoop* b = net.AddLoop("sim://b");
  Echo echo(b);
  b->SetHandler(&echo);
  wire::Request req;
  req.type = wire::MsgType::kPing;
  req.id = 9;
  net.ClientSend("client-1", "sim://b", req);
  EXPECT_TRUE(net.RunUntilIdle());
  auto replies = net.TakeReplies("client-1");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].id, 9u);
  EXPECT_EQ(replies[0].type, wire::MsgType::kAck);
}

}  // namespace
}  // namespace dynamo
