// RedisFrontEnd: the Redis protocol (RESP2, DESIGN.md 3.6) as a way into the
// node, for redis-cli, redis-benchmark and any Redis client library.
//
// The TCP side is transport's RespListener, on the node's own loop. Each
// command becomes one or more GET/PUT/DEL requests handed to the node as if
// they had arrived from the network (same checks, same coordinator), with
// identities that mark them as local; their replies come back through
// NodeContext::local_reply and are turned into RESP, in request order per
// connection. SET and DEL carry the overwrite flag, so the coordinating
// replica supersedes every version it holds (SETs through one node never
// make siblings). AUTH and protected mode (3.7) are enforced here.
//
// Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dynamo/status.h"
#include "dynamo/transport/message.h"
#include "dynamo/transport/resp_listener.h"
#include "node/node_context.h"

namespace dynamo {

class RedisFrontEnd : private RespListener::Handler {
 public:
  struct Hooks {
    // Checks and dispatches a request as the node does a network one.
    std::function<void(const std::string& identity, const wire::RequestView& req)> submit;
  };
  RedisFrontEnd(NodeContext& ctx, ZmqLoop& loop, Hooks hooks);
  ~RedisFrontEnd() override;

  // Listens on --redis-listen. The error is one line.
  Status Open();
  // A reply to one of our requests (NodeContext::local_reply).
  void OnReply(const std::string& identity, const wire::Reply& reply);
  size_t clients() const { return listener_->clients(); }
  uint16_t port() const { return listener_->port(); }

 private:
  using Client = RespListener::Client;
  using Args = std::vector<std::string_view>;
  using Done = std::function<void(const wire::Reply&)>;
  // Where one command's reply goes.
  struct Target {
    uint64_t conn;
    uint64_t slot;
  };

  struct Fan;

  void OnCommand(Client& client, uint64_t slot, const Args& args) override;
  // The reply of request k of a command of several (MGET, MSET, EXISTS,
  // DEL): the command is answered when the last arrives, with the first
  // error if any failed.
  Done Part(Target t, const std::shared_ptr<Fan>& fan, size_t k);
  // False (and the error sent) unless min <= args.size() <= max.
  bool Arity(Target t, const Args& args, size_t min, size_t max);
  bool PasswordMatches(std::string_view user, std::string_view password) const;
  void Send(Target t, std::string bytes) { listener_->Reply(t.conn, t.slot, std::move(bytes)); }
  void SendError(Target t, std::string_view message);
  // Submits req; done runs with its reply.
  void Issue(const wire::RequestView& req, Done done);
  void Read(std::string_view key, Done done);
  void Write(wire::MsgType type, std::string_view key, std::string_view value,
             std::string_view context, uint32_t flags, Done done);

  void Get(Target t, const Args& args);
  void Set(Target t, const Args& args);
  void Del(Target t, const Args& args);
  void Exists(Target t, const Args& args);
  void MGet(Target t, const Args& args);
  void MSet(Target t, const Args& args);
  void DynGet(Target t, const Args& args);
  void DynWrite(Target t, const Args& args, bool tombstone);
  void Connection(Client& client, Target t, const std::string& cmd, const Args& args);
  // INFO's sections named in `wanted` (lower case; empty: every one).
  std::string Info(const std::vector<std::string>& wanted) const;

  NodeContext& ctx_;
  Hooks hooks_;
  std::unique_ptr<RespListener> listener_;
  uint64_t next_request_ = 1;
  std::unordered_map<uint64_t, Done> pending_;
};

}  // namespace dynamo
