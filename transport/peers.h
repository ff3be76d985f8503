// Peers: this node's request/reply conversations with other nodes (the
// ZeroMQ side of ZmqLoop::Call; internal to transport/).
//
// One DEALER socket per peer endpoint, connected from the host of our own
// --listen address (ZeroMQ source endpoint "tcp://SRC:0;DST"), so nodes on
// different loopback addresses can be cut apart by firewall rules. Every
// Call ends exactly once: with the peer's reply, or with Timeout when none
// came in time. Loop thread only: not thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>
#include <zmq.hpp>

#include "dynamo/status.h"
#include "dynamo/transport/curve.h"
#include "dynamo/transport/loop.h"
#include "dynamo/transport/message.h"
#include "dynamo/transport/zmq_readiness.h"

namespace dynamo {

// ZMQ_EVENTS shows a message on s (or asking failed: let the drain find out).
inline bool HasPollIn(zmq::socket_t& s) {
  try {
    return (s.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0;
  } catch (const zmq::error_t&) {
    return true;
  }
}

class Peers {
 public:
  using Clock = std::chrono::steady_clock;
  using Callback = std::function<void(Result<wire::Reply>)>;

  // listen: our own --listen endpoint (its host becomes the source address).
  // pair: this node's CURVE key pair (null: plain connections).
  Peers(zmq::context_t& ctx, const std::string& listen, const curve::KeyPair* pair);
  ~Peers();

  // Queues req (its id is replaced) for the peer at endpoint; Flush sends
  // it. done runs later, on the loop, never from inside Call.
  void Call(const std::string& endpoint, const wire::RequestView& req,
            std::chrono::milliseconds timeout, Callback done);

  // Sends what Call queued: one frame per peer, a BATCH when a peer has
  // several requests this loop turn (fewer messages, syscalls, wake-ups).
  void Flush();

  // Receives the replies of every peer socket that may have some (its
  // ZMQ_FD woke the loop, HasInput saw one, or the last drain stopped at its
  // bound), at most 1024 each; true when some socket may have more.
  bool Drain();
  // Before the loop sleeps: asks (ZMQ_EVENTS) each socket sent on since it
  // was last drained or asked (ZmqReadiness); true when one has a message
  // ready or a drain stopped at its bound.
  bool HasInput();
  // The ZMQ_FD fd woke the loop: true (and its socket is drained next) when
  // it is a peer socket's.
  bool OnReadable(int fd);
  // Called with the ZMQ_FD of each peer socket when it is created, so the
  // loop can wait on it.
  void SetSocketObserver(std::function<void(int fd)> observer) {
    socket_observer_ = std::move(observer);
  }

  // Fails the calls whose deadline passed and runs callbacks queued by Call
  // failures.
  void RunDue();
  // Milliseconds until RunDue has work (0: now, e.g. a send failed), or -1.
  long NextWait();

  // CURVE: the server key of each peer is the one listed for its endpoint.
  // A connection whose peer's key changed is made again; calls to a peer
  // with no listed key fail (NotAuthorized) without being sent.
  void SetServerKeys(std::shared_ptr<const curve::AuthorizedKeys> keys);

  // Told of every request sent and every answer received (late ones
  // included): the node's failure detector listens here.
  void SetObserver(Loop::PeerObserver observer) { observer_ = std::move(observer); }

  const Loop::PeerTraffic& traffic() const { return traffic_; }

 private:
  struct Pending {
    Callback done;
    Clock::time_point deadline;
    std::string endpoint;
  };
  struct PeerSocket {
    std::unique_ptr<zmq::socket_t> sock;
    ZmqReadiness readiness;
    std::string server_key;  // CURVE: the key it was made with
  };
  // The socket to endpoint, made when there is none; nullptr (and *why)
  // when CURVE knows no key for it.
  PeerSocket* SocketFor(const std::string& endpoint, Status* why);
  void Finish(uint64_t id, Result<wire::Reply> result);
  void OnReplyFrame(std::string_view frame, bool nested);
  Loop::PeerObserver observer_;

  zmq::context_t& ctx_;
  std::string source_host_;             // empty: let the kernel choose
  std::optional<curve::KeyPair> pair_;  // CURVE: ours
  std::shared_ptr<const curve::AuthorizedKeys> server_keys_;
  std::unordered_set<std::string> warned_no_key_;
  std::map<std::string, PeerSocket> sockets_;   // nodes never move
  std::unordered_map<int, PeerSocket*> by_fd_;  // ZMQ_FD -> its socket
  std::function<void(int fd)> socket_observer_;
  std::unordered_map<uint64_t, Pending> pending_;
  // Min-heap of (deadline, id). Entries of calls that already finished stay
  // until they reach the top and are skipped: no search on every reply.
  using Deadline = std::pair<Clock::time_point, uint64_t>;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<Deadline>> deadlines_;
  std::vector<std::pair<uint64_t, Status>> failed_now_;  // send failures, reported by RunDue
  // Requests of this loop turn per peer, encoded into one frame.
  struct Outgoing {
    wire::BatchWriter batch{wire::MsgType::kBatch};
    std::vector<uint64_t> ids;
  };
  std::map<std::string, Outgoing> outbox_;
  uint64_t next_id_ = 1;
  Loop::PeerTraffic traffic_;
};

}  // namespace dynamo
