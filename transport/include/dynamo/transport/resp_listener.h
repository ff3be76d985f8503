// RespListener: the TCP side of the Redis-protocol front end (DESIGN.md
// 3.6), on the node's own ZmqLoop: no thread between a client's socket and
// the coordinator.
//
// A readable connection is read until EAGAIN, every whole command in its
// buffer goes to the Handler, and the replies (which may complete in any
// order) are written in request order with one write per connection at the
// end of the loop turn. Arguments handed to the Handler are views into the
// connection's buffer, valid during the call only.
//
// Bounds: --redis-max-clients connections (more are told so and closed); a
// command's buffered bytes, an argument (longer ones are skipped and
// answered with an error), declared lengths and counts (resp::Limits); a
// connection whose replies pile up (a client that does not read) runs no
// further command and is not read until they drain. Loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "dynamo/status.h"
#include "dynamo/transport/resp.h"
#include "dynamo/transport/zmq_loop.h"

namespace dynamo {

class RespListener {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    uint16_t port = 0;
    size_t max_clients = 10000;
    resp::Limits limits;
    // A connection with this many reply bytes unwritten is not read further.
    size_t max_unwritten = 64u << 20;
  };
  // What the front end keeps per connection.
  struct Client {
    uint64_t id = 0;
    bool loopback = false;  // the peer is 127.0.0.1 or ::1
    bool authenticated = false;
    std::string name;  // CLIENT SETNAME
  };
  class Handler {
   public:
    virtual ~Handler() = default;
    // One command (args non-empty) of `client`; answer with Reply(client.id,
    // slot, bytes), now or later.
    virtual void OnCommand(Client& client, uint64_t slot,
                           const std::vector<std::string_view>& args) = 0;
  };

  RespListener(ZmqLoop& loop, Handler& handler);
  ~RespListener();
  RespListener(const RespListener&) = delete;
  RespListener& operator=(const RespListener&) = delete;

  // Binds and listens; the error is one line.
  Status Open(const Options& options);
  uint16_t port() const { return port_; }
  size_t clients() const { return conns_.size(); }

  // The reply (whole RESP bytes) of command `slot` of connection `conn`;
  // dropped when the connection is gone.
  void Reply(uint64_t conn, uint64_t slot, std::string bytes);
  // Closes conn once the replies before `slot` (and slot's own) are written.
  void CloseAfter(uint64_t conn, uint64_t slot);

 private:
  struct Conn;
  void Accept();
  void OnReadable(Conn& c);
  void Process(Conn& c);
  // A new reply slot of c, in request order.
  uint64_t NewSlot(Conn& c);
  // Answers c with an error of its own slot (and closes it after, if asked).
  void ReplyError(Conn& c, std::string_view message, bool close);
  // Whether c may be read: not closing, and its replies not piled up.
  bool WantsInput(const Conn& c) const;
  void Flush();
  // Runs the commands that waited for this turn (Process's per-turn share).
  void RunBacklog();
  bool Write(Conn& c);  // false: the connection failed
  void Watch(Conn& c);
  void Drop(uint64_t id);

  ZmqLoop& loop_;
  Handler& handler_;
  Options options_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::unordered_set<uint64_t> dirty_;    // connections with something to write or close
  std::unordered_set<uint64_t> backlog_;  // connections with commands left for the next turn
  bool backlog_scheduled_ = false;
  Loop::TimerId backlog_timer_ = 0;
  std::vector<char> read_buf_ =
      std::vector<char>(64u << 10);  // each read lands here, then in a buffer
};

}  // namespace dynamo
