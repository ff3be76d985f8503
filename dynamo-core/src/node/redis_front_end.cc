#include "node/redis_front_end.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "dynamo/log.h"
#include "util/base64.h"

namespace dynamo {

using wire::MsgType;
using wire::Reply;
using wire::RequestView;

namespace {

// What COMMAND tells clients of each command OnCommand serves, in Redis's
// six-field form: name, arity (negative: at least that many arguments,
// the name included), flags, and the first key, the last one (-1: through
// the end) and the step between keys, 0 when the command takes none.
struct CommandInfo {
  const char* name;
  int arity;
  std::initializer_list<const char*> flags;
  int first_key, last_key, step;
};
const CommandInfo kCommandTable[] = {
    {"get", 2, {"readonly", "fast"}, 1, 1, 1},
    {"set", -3, {"write", "denyoom"}, 1, 1, 1},
    {"del", -2, {"write"}, 1, -1, 1},
    {"exists", -2, {"readonly", "fast"}, 1, -1, 1},
    {"mget", -2, {"readonly", "fast"}, 1, -1, 1},
    {"mset", -3, {"write", "denyoom"}, 1, -1, 2},
    {"dyn.get", 2, {"readonly"}, 1, 1, 1},
    {"dyn.put", -3, {"write", "denyoom"}, 1, 1, 1},
    {"dyn.del", -2, {"write"}, 1, 1, 1},
    {"ping", -1, {"stale", "fast"}, 0, 0, 0},
    {"echo", 2, {"fast"}, 0, 0, 0},
    {"quit", -1, {"loading", "stale", "fast"}, 0, 0, 0},
    {"select", 2, {"loading", "stale", "fast"}, 0, 0, 0},
    {"info", -1, {"loading", "stale"}, 0, 0, 0},
    {"command", -1, {"loading", "stale"}, 0, 0, 0},
    {"client", -2, {"loading", "stale"}, 0, 0, 0},
    {"hello", -1, {"noscript", "fast", "no_auth"}, 0, 0, 0},
    {"auth", -2, {"noscript", "loading", "stale", "fast", "no_auth"}, 0, 0, 0},
};

void AppendCommandInfo(std::string* out, const CommandInfo& c) {
  resp::AppendArray(out, 6);
  resp::AppendBulk(out, c.name);
  resp::AppendInteger(out, c.arity);
  resp::AppendArray(out, c.flags.size());
  for (const char* f : c.flags) resp::AppendSimple(out, f);
  resp::AppendInteger(out, c.first_key);
  resp::AppendInteger(out, c.last_key);
  resp::AppendInteger(out, c.step);
}

std::string Upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u;
}

std::string Lower(std::string_view s) {
  std::string l(s);
  for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return l;
}

const CommandInfo* FindCommand(std::string_view name) {
  const std::string lower = Lower(name);
  for (const CommandInfo& c : kCommandTable) {
    if (lower == c.name) return &c;
  }
  return nullptr;
}

std::string Simple(std::string_view s) {
  std::string out;
  resp::AppendSimple(&out, s);
  return out;
}

std::string Bulk(std::string_view s) {
  std::string out;
  resp::AppendBulk(&out, s);
  return out;
}

std::string Integer(int64_t v) {
  std::string out;
  resp::AppendInteger(&out, v);
  return out;
}

// The RESP error for a failed request: quorum failures and timeouts as
// UNAVAILABLE (dynamoctl's exit 4), the rest as ERR.
std::string ErrorText(const Reply& r) {
  const Status s = r.ToStatus();
  if (s.code() == Status::Code::kUnavailable || s.code() == Status::Code::kTimeout) {
    return "UNAVAILABLE " + s.message();
  }
  return "ERR " + s.message();
}

std::string Conflict(size_t n) {
  return "CONFLICT " + std::to_string(n) + " versions; read them with DYN.GET";
}

// GET's answer for one key: nil, the value, or CONFLICT.
void AppendValue(std::string* out, const Reply& r) {
  if (!r.found || r.values.empty()) return resp::AppendNil(out);
  if (r.values.size() > 1) return resp::AppendError(out, Conflict(r.values.size()));
  resp::AppendBulk(out, r.values.front());
}

std::string WrongArity(std::string_view command) {
  std::string name(command);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return "ERR wrong number of arguments for '" + name + "' command";
}

}  // namespace

// The replies of a command's several requests, and how to answer once all
// arrived without an error.
struct RedisFrontEnd::Fan {
  Fan(size_t n, std::function<std::string(const std::vector<Reply>&)> answer)
      : replies(n), left(n), answer(std::move(answer)) {}
  std::vector<Reply> replies;
  size_t left;
  std::function<std::string(const std::vector<Reply>&)> answer;
};

RedisFrontEnd::Done RedisFrontEnd::Part(Target t, const std::shared_ptr<Fan>& fan, size_t k) {
  return [this, t, fan, k](const Reply& r) {
    fan->replies[k] = r;
    if (--fan->left > 0) return;
    for (const Reply& one : fan->replies) {
      if (one.type == MsgType::kError) return SendError(t, ErrorText(one));
    }
    Send(t, fan->answer(fan->replies));
  };
}

bool RedisFrontEnd::Arity(Target t, const Args& args, size_t min, size_t max) {
  if (args.size() >= min && args.size() <= max) return true;
  SendError(t, WrongArity(args[0]));
  return false;
}

bool RedisFrontEnd::PasswordMatches(std::string_view user, std::string_view password) const {
  const std::string& want = ctx_.options.redis_password;
  return !want.empty() && user == "default" && password == want;
}

RedisFrontEnd::RedisFrontEnd(NodeContext& ctx, ZmqLoop& loop, Hooks hooks)
    : ctx_(ctx),
      hooks_(std::move(hooks)),
      listener_(std::make_unique<RespListener>(loop, static_cast<RespListener::Handler&>(*this))) {}

RedisFrontEnd::~RedisFrontEnd() = default;

Status RedisFrontEnd::Open() {
  RespListener::Options o;
  o.host = ctx_.options.redis_host;
  o.port = ctx_.options.redis_port;
  o.max_clients = ctx_.options.redis_max_clients;
  o.limits.max_bulk = std::max(ctx_.options.max_key_bytes, ctx_.options.max_value_bytes);
  if (Status s = listener_->Open(o); !s.ok()) return s;
  log::Info("serving the Redis protocol on " + o.host + ":" + std::to_string(listener_->port()) +
            (ctx_.options.redis_password.empty()
                 ? " (no password: loopback clients only, protected mode)"
                 : " (AUTH required)"));
  return Status::OK();
}

void RedisFrontEnd::SendError(Target t, std::string_view message) {
  std::string out;
  resp::AppendError(&out, message);
  Send(t, std::move(out));
}

void RedisFrontEnd::Issue(const RequestView& req, Done done) {
  const uint64_t n = next_request_++;
  std::string identity(1 + sizeof(n), NodeContext::kLocalIdentity);
  std::memcpy(identity.data() + 1, &n, sizeof(n));
  pending_.emplace(n, std::move(done));
  hooks_.submit(identity, req);
}

void RedisFrontEnd::OnReply(const std::string& identity, const Reply& reply) {
  if (identity.size() != 1 + sizeof(uint64_t)) return;
  uint64_t n;
  std::memcpy(&n, identity.data() + 1, sizeof(n));
  auto it = pending_.find(n);
  if (it == pending_.end()) return;
  Done done = std::move(it->second);
  pending_.erase(it);
  done(reply);
}

void RedisFrontEnd::Read(std::string_view key, Done done) {
  RequestView req;
  req.type = MsgType::kGet;
  req.key = key;
  Issue(req, std::move(done));
}

void RedisFrontEnd::Write(MsgType type, std::string_view key, std::string_view value,
                          std::string_view context, uint32_t flags, Done done) {
  RequestView req;
  req.type = type;
  req.key = key;
  req.value = value;
  req.context = context;
  req.flags = flags;
  Issue(req, std::move(done));
}

void RedisFrontEnd::OnCommand(Client& client, uint64_t slot, const Args& args) {
  const Target t{client.id, slot};
  const std::string cmd = Upper(args[0]);
  const bool password = !ctx_.options.redis_password.empty();
  if (!password && !client.loopback) {
    SendError(t,
              "DENIED dynamo is in protected mode: no --redis-password-file is set, so only "
              "loopback clients (127.0.0.1, ::1) are served; set a password, or connect from "
              "this host");
    return listener_->CloseAfter(t.conn, t.slot);
  }
  if (password && !client.authenticated && cmd != "AUTH" && cmd != "HELLO" && cmd != "QUIT") {
    return SendError(t, "NOAUTH Authentication required.");
  }
  constexpr size_t kAny = SIZE_MAX;
  if (cmd == "GET") {
    if (Arity(t, args, 2, 2)) Get(t, args);
  } else if (cmd == "SET") {
    if (args.size() > 3) return SendError(t, "ERR syntax error");
    if (Arity(t, args, 3, 3)) Set(t, args);
  } else if (cmd == "DEL") {
    if (Arity(t, args, 2, kAny)) Del(t, args);
  } else if (cmd == "EXISTS") {
    if (Arity(t, args, 2, kAny)) Exists(t, args);
  } else if (cmd == "MGET") {
    if (Arity(t, args, 2, kAny)) MGet(t, args);
  } else if (cmd == "MSET") {
    if (args.size() % 2 == 0) return SendError(t, WrongArity(args[0]));
    if (Arity(t, args, 3, kAny)) MSet(t, args);
  } else if (cmd == "DYN.GET") {
    if (Arity(t, args, 2, 2)) DynGet(t, args);
  } else if (cmd == "DYN.PUT") {
    if (Arity(t, args, 3, 4)) DynWrite(t, args, false);
  } else if (cmd == "DYN.DEL") {
    if (Arity(t, args, 2, 3)) DynWrite(t, args, true);
  } else {
    Connection(client, t, cmd, args);
  }
}

void RedisFrontEnd::Get(Target t, const Args& args) {
  Read(args[1], [this, t](const Reply& r) {
    if (r.type == MsgType::kError) return SendError(t, ErrorText(r));
    std::string out;
    AppendValue(&out, r);
    Send(t, std::move(out));
  });
}

void RedisFrontEnd::Set(Target t, const Args& args) {
  Write(MsgType::kPut, args[1], args[2], {}, wire::kFlagOverwrite, [this, t](const Reply& r) {
    if (r.type == MsgType::kError) return SendError(t, ErrorText(r));
    Send(t, Simple("OK"));
  });
}

// Each key is read, and written a tombstone only when it has a live
// version: the count (as Redis's DEL gives it) is the tombstones written.
void RedisFrontEnd::Del(Target t, const Args& args) {
  auto fan = std::make_shared<Fan>(args.size() - 1, [](const std::vector<Reply>& replies) {
    return Integer(std::count_if(replies.begin(), replies.end(),
                                 [](const Reply& r) { return r.type == MsgType::kPutReply; }));
  });
  for (size_t i = 1; i < args.size(); ++i) {
    Read(args[i], [this, key = std::string(args[i]), done = Part(t, fan, i - 1)](const Reply& r) {
      if (r.type == MsgType::kError || !r.found) return done(r);
      Write(MsgType::kDel, key, {}, r.context, wire::kFlagOverwrite, done);
    });
  }
}

void RedisFrontEnd::Exists(Target t, const Args& args) {
  auto fan = std::make_shared<Fan>(args.size() - 1, [](const std::vector<Reply>& replies) {
    return Integer(
        std::count_if(replies.begin(), replies.end(), [](const Reply& r) { return r.found; }));
  });
  for (size_t i = 1; i < args.size(); ++i) Read(args[i], Part(t, fan, i - 1));
}

void RedisFrontEnd::MGet(Target t, const Args& args) {
  auto fan = std::make_shared<Fan>(args.size() - 1, [](const std::vector<Reply>& replies) {
    std::string out;
    resp::AppendArray(&out, replies.size());
    for (const Reply& one : replies) AppendValue(&out, one);
    return out;
  });
  for (size_t i = 1; i < args.size(); ++i) Read(args[i], Part(t, fan, i - 1));
}

void RedisFrontEnd::MSet(Target t, const Args& args) {
  auto fan = std::make_shared<Fan>((args.size() - 1) / 2,
                                   [](const std::vector<Reply>&) { return Simple("OK"); });
  for (size_t i = 1; i + 1 < args.size(); i += 2) {
    Write(MsgType::kPut, args[i], args[i + 1], {}, wire::kFlagOverwrite, Part(t, fan, (i - 1) / 2));
  }
}

void RedisFrontEnd::DynGet(Target t, const Args& args) {
  Read(args[1], [this, t](const Reply& r) {
    if (r.type == MsgType::kError) return SendError(t, ErrorText(r));
    std::string out;
    resp::AppendArray(&out, 1 + (r.found ? r.values.size() : 0));
    resp::AppendBulk(&out, Base64Encode(r.context));
    if (r.found) {
      for (const std::string& v : r.values) resp::AppendBulk(&out, v);
    }
    Send(t, std::move(out));
  });
}

void RedisFrontEnd::DynWrite(Target t, const Args& args, bool tombstone) {
  const size_t context_at = tombstone ? 2 : 3;
  std::string context;
  if (args.size() > context_at) {
    std::optional<std::string> bytes = Base64Decode(args[context_at]);
    if (!bytes) return SendError(t, "ERR bad context: not a context token");
    context = std::move(*bytes);
  }
  Write(tombstone ? MsgType::kDel : MsgType::kPut, args[1], tombstone ? "" : args[2], context, 0,
        [this, t](const Reply& r) {
          if (r.type == MsgType::kError) return SendError(t, ErrorText(r));
          Send(t, Bulk(Base64Encode(r.context)));
        });
}

// The commands clients send to set up and look at a connection.
void RedisFrontEnd::Connection(Client& client, Target t, const std::string& cmd, const Args& args) {
  const std::string sub = args.size() > 1 ? Upper(args[1]) : "";
  if (cmd == "PING") {
    if (!Arity(t, args, 1, 2)) return;
    return Send(t, args.size() == 2 ? Bulk(args[1]) : Simple("PONG"));
  }
  if (cmd == "ECHO") {
    if (!Arity(t, args, 2, 2)) return;
    return Send(t, Bulk(args[1]));
  }
  if (cmd == "QUIT") {
    Send(t, Simple("OK"));
    return listener_->CloseAfter(t.conn, t.slot);
  }
  if (cmd == "SELECT") {
    if (!Arity(t, args, 2, 2)) return;
    return args[1] == "0" ? Send(t, Simple("OK")) : SendError(t, "ERR DB index is out of range");
  }
  if (cmd == "AUTH") {
    if (!Arity(t, args, 2, 3)) return;
    if (ctx_.options.redis_password.empty()) {
      return SendError(t,
                       "ERR AUTH <password> called without any password configured for the "
                       "default user. Are you sure your configuration is correct?");
    }
    if (!PasswordMatches(args.size() == 2 ? "default" : args[1], args.back())) {
      client.authenticated = false;
      return SendError(t, "WRONGPASS invalid username-password pair or user is disabled.");
    }
    client.authenticated = true;
    return Send(t, Simple("OK"));
  }
  if (cmd == "HELLO") {
    size_t i = 1;
    if (args.size() > 1) {
      if (args[1] != "2")
        return SendError(t, "NOPROTO sorry, this protocol version is not supported");
      i = 2;
    }
    for (; i < args.size(); ++i) {
      const std::string opt = Upper(args[i]);
      if (opt == "AUTH" && i + 2 < args.size()) {
        if (!PasswordMatches(args[i + 1], args[i + 2])) {
          return SendError(t, "WRONGPASS invalid username-password pair or user is disabled.");
        }
        client.authenticated = true;
        i += 2;
      } else if (opt == "SETNAME" && i + 1 < args.size()) {
        client.name = std::string(args[++i]);
      } else {
        return SendError(t, "ERR syntax error in HELLO option '" + std::string(args[i]) + "'");
      }
    }
    if (!ctx_.options.redis_password.empty() && !client.authenticated) {
      return SendError(t,
                       "NOAUTH HELLO must be called with the client already authenticated, "
                       "otherwise the HELLO <proto> AUTH <user> <pass> option can be used");
    }
    std::string out;
    resp::AppendArray(&out, 14);
    for (const auto& [k, v] :
         std::vector<std::pair<std::string, std::string>>{{"server", "dynamo"},
                                                          {"version", DYNAMO_VERSION},
                                                          {"mode", "standalone"},
                                                          {"role", "master"}}) {
      resp::AppendBulk(&out, k);
      resp::AppendBulk(&out, v);
    }
    resp::AppendBulk(&out, "proto");
    resp::AppendInteger(&out, 2);
    resp::AppendBulk(&out, "id");
    resp::AppendInteger(&out, static_cast<int64_t>(client.id));
    resp::AppendBulk(&out, "modules");
    resp::AppendArray(&out, 0);
    return Send(t, std::move(out));
  }
  if (cmd == "CLIENT") {
    if (sub == "SETNAME" && args.size() == 3) {
      client.name = std::string(args[2]);
      return Send(t, Simple("OK"));
    }
    if (sub == "GETNAME" && args.size() == 2) {
      if (client.name.empty()) {
        std::string nil;
        resp::AppendNil(&nil);
        return Send(t, std::move(nil));
      }
      return Send(t, Bulk(client.name));
    }
    if (sub == "ID" && args.size() == 2) return Send(t, Integer(static_cast<int64_t>(client.id)));
    if (sub == "SETINFO" && args.size() == 4) return Send(t, Simple("OK"));
    return SendError(t, "ERR unknown subcommand or wrong number of arguments for 'CLIENT'");
  }
  if (cmd == "COMMAND") {
    if (sub == "DOCS") return Send(t, "*0\r\n");
    if (sub == "COUNT") return Send(t, Integer(std::size(kCommandTable)));
    if (args.size() == 1) {
      std::string out;
      resp::AppendArray(&out, std::size(kCommandTable));
      for (const CommandInfo& c : kCommandTable) AppendCommandInfo(&out, c);
      return Send(t, std::move(out));
    }
    if (sub == "INFO") {
      // A command not served is nil, as in Redis.
      std::string out;
      resp::AppendArray(&out, args.size() - 2);
      for (size_t i = 2; i < args.size(); ++i) {
        const CommandInfo* c = FindCommand(args[i]);
        if (c != nullptr) {
          AppendCommandInfo(&out, *c);
        } else {
          resp::AppendNil(&out);
        }
      }
      return Send(t, std::move(out));
    }
    return SendError(t, "ERR unknown subcommand '" + std::string(args[1]) + "'");
  }
  if (cmd == "INFO") {
    // INFO [section ...]: those named (any case), as Redis answers; none,
    // "all", "everything" or "default": every one. One this node does not
    // have adds nothing.
    std::vector<std::string> wanted;
    for (size_t i = 1; i < args.size(); ++i) {
      std::string w = Lower(args[i]);
      if (w == "all" || w == "everything" || w == "default") {
        wanted.clear();
        break;
      }
      wanted.push_back(std::move(w));
    }
    return Send(t, Bulk(Info(wanted)));
  }
  std::string message =
      "ERR unknown command '" + std::string(args[0]) + "', with args beginning with: ";
  for (size_t i = 1; i < args.size() && i < 4; ++i) {
    message += "'" + std::string(args[i].substr(0, 64)) + "' ";
  }
  SendError(t, message);
}

std::string RedisFrontEnd::Info(const std::vector<std::string>& wanted) const {
  const Ring& ring = ctx_.cluster.ring();
  const std::pair<const char*, std::string> sections[] = {
      {"Server", "redis_version:7.0.0\r\ndynamo_version:" DYNAMO_VERSION
                 "\r\nredis_mode:standalone\r\ntcp_port:" +
                     std::to_string(listener_->port()) + "\r\n"},
      {"Clients", "connected_clients:" + std::to_string(listener_->clients()) +
                      "\r\nmaxclients:" + std::to_string(ctx_.options.redis_max_clients) + "\r\n"},
      {"Cluster", "node_id:" + ctx_.options.node_id +
                      "\r\nring_nodes:" + std::to_string(ring.nodes().size()) +
                      "\r\nreplicas:" + std::to_string(ctx_.options.replicas) +
                      "\r\nread_quorum:" + std::to_string(ctx_.options.read_quorum) +
                      "\r\nwrite_quorum:" + std::to_string(ctx_.options.write_quorum) + "\r\n"},
      {"Stats", "requests:" + std::to_string(ctx_.requests.load()) +
                    "\r\nerrors:" + std::to_string(ctx_.errors.load()) + "\r\n"},
  };
  std::string out;
  for (const auto& [name, body] : sections) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), Lower(name)) == wanted.end()) {
      continue;
    }
    if (!out.empty()) out += "\r\n";
    out += std::string("# ") + name + "\r\n" + body;
  }
  return out;
}

}  // namespace dynamo
