// dynamoctl: the command-line client and admin tool (DESIGN.md 3.2).
//
// Exit codes: 0 success; 2 usage error; 3 key not found; 4 quorum not
// reached or timeout; 5 rejected input; 6 not authorized; 1 any other
// error. Every error is one line on stderr.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dynamo/client.h"
#include "dynamo/transport/curve.h"
#include "util/base64.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitOther = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNotFound = 3;
constexpr int kExitUnavailable = 4;
constexpr int kExitRejected = 5;
constexpr int kExitNotAuthorized = 6;

constexpr long kMaxTimeoutMs = 24L * 3600 * 1000;  // a day
constexpr long kMaxQuorum = 1000;                  // the node checks against N

const char* kUsage =
    "Usage: dynamoctl [--node ENDPOINT]... [--json] [--timeout-ms MS] COMMAND ...\n"
    "\n"
    "Commands:\n"
    "  put KEY VALUE [--context CTX] [--w W]   write a new version (VALUE - reads stdin)\n"
    "  get KEY [--r R] [--local]               read every sibling and the context\n"
    "  del KEY [--context CTX] [--w W]         write a tombstone\n"
    "  status                                  this node's view of the cluster\n"
    "  ring                                    partition ownership and preference lists\n"
    "  join SEED_ENDPOINT                      make --node join the cluster SEED belongs to\n"
    "  leave                                   make --node hand its partitions off and leave\n"
    "  remove NODE_ID                          remove a dead node from the cluster\n"
    "  migrate --backend NAME|PATH [--backend-opt KEY=VALUE]... [--no-wait]\n"
    "                                          move --node's data into a new engine while\n"
    "                                          it serves, then switch to it; waits until\n"
    "                                          it is done unless --no-wait (progress in\n"
    "                                          status)\n"
    "  keygen [--out PREFIX]                   make a CURVE key pair: PREFIX.key (mode\n"
    "                                          0600) and PREFIX.pub; without --out, print it\n"
    "\n"
    "Options:\n"
    "  --node ENDPOINT   node to talk to (default tcp://127.0.0.1:7101); repeat it\n"
    "                    to fail over: a request goes to the next node only when\n"
    "                    the one before could not be reached (it was never sent),\n"
    "                    never twice (join, leave and get --local take one node)\n"
    "  --json            machine-readable output\n"
    "  --timeout-ms MS   how long to wait for the reply (default 5000)\n"
    "  --curve-secret-key-file FILE   this client's CURVE key pair (dynamoctl keygen)\n"
    "  --server-public-key KEY|FILE   the node's public key (with the option above);\n"
    "                    one for every node, or one per --node in the same order\n"
    "\n"
    "Exit codes: 0 ok, 2 usage, 3 not found, 4 quorum not reached or timeout,\n"
    "5 rejected input (too large, bad context), 6 not authorized, 1 other error.\n";

struct Args {
  std::vector<std::string> nodes;  // --node, in order; empty: the default
  bool json = false;
  long timeout_ms = 5000;
  std::optional<std::string> context;
  std::optional<uint32_t> r, w;
  bool local = false;
  std::string curve_secret_key_file, out;
  std::vector<std::string> server_public_keys;  // --server-public-key, in order
  std::vector<std::string> positional;
  std::optional<std::string> backend;                             // migrate
  std::vector<std::pair<std::string, std::string>> backend_opts;  // migrate
  bool no_wait = false;                                           // migrate
};

struct UsageError {
  std::string message;
};

uint32_t ParseCount(const std::string& flag, const std::string& v, long max) {
  try {
    size_t pos = 0;
    long n = std::stol(v, &pos);
    if (pos == v.size() && n >= 1 && n <= max) return static_cast<uint32_t>(n);
  } catch (const std::exception&) {
  }
  throw UsageError{flag + " needs a number from 1 to " + std::to_string(max) + ", got '" + v + "'"};
}

Args Parse(int argc, char** argv) {
  Args a;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (options_done || arg == "-" || arg.rfind("--", 0) != 0) {
      a.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    std::string name = arg, value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    auto need_value = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= argc) throw UsageError{name + " needs a value"};
      return argv[++i];
    };
    if (name == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(kExitOk);
    } else if (name == "--no-wait") {
      if (has_value) throw UsageError{name + " takes no value"};
      a.no_wait = true;
    } else if (name == "--backend") {
      a.backend = need_value();
      if (a.backend->empty()) throw UsageError{"--backend needs an engine name or a path"};
    } else if (name == "--backend-opt") {
      const std::string kv = need_value();
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        throw UsageError{"--backend-opt '" + kv + "' is not KEY=VALUE"};
      }
      a.backend_opts.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    } else if (name == "--json" || name == "--local") {
      if (has_value) throw UsageError{name + " takes no value"};
      (name == "--json" ? a.json : a.local) = true;
    } else if (name == "--node") {
      std::string node = need_value();
      if (!dynamo::IsValidEndpoint(node)) {
        throw UsageError{"--node needs tcp://HOST:PORT or ipc://PATH, got '" + node + "'"};
      }
      if (std::find(a.nodes.begin(), a.nodes.end(), node) != a.nodes.end()) {
        throw UsageError{"--node " + node + " is given twice"};
      }
      a.nodes.push_back(std::move(node));
    } else if (name == "--timeout-ms") {
      a.timeout_ms = ParseCount(name, need_value(), kMaxTimeoutMs);
    } else if (name == "--context") {
      a.context = need_value();
    } else if (name == "--r") {
      a.r = ParseCount(name, need_value(), kMaxQuorum);
    } else if (name == "--w") {
      a.w = ParseCount(name, need_value(), kMaxQuorum);
    } else if (name == "--curve-secret-key-file") {
      a.curve_secret_key_file = need_value();
    } else if (name == "--server-public-key") {
      a.server_public_keys.push_back(need_value());
    } else if (name == "--out") {
      a.out = need_value();
      if (a.out.empty()) throw UsageError{"--out needs a file name prefix"};
    } else {
      throw UsageError{"unknown option " + name};
    }
  }
  return a;
}

int ExitFor(const dynamo::Status& s) {
  using C = dynamo::Status::Code;
  switch (s.code()) {
    case C::kOk:
      return kExitOk;
    case C::kNotFound:
      return kExitNotFound;
    case C::kUnavailable:
    case C::kTimeout:
      return kExitUnavailable;
    case C::kInvalidArgument:
      return kExitRejected;
    case C::kNotAuthorized:
      return kExitNotAuthorized;
    default:
      return kExitOther;
  }
}

int Fail(const dynamo::Status& s) {
  std::fprintf(stderr, "dynamoctl: %s\n", s.ToString().c_str());
  return ExitFor(s);
}

// Administration: 4 when the node did not answer, else 1 for any refusal,
// which says "refused" (an "invalid argument" goes with exit 5 elsewhere).
int AdminDone(const Args& a, const dynamo::Status& s) {
  if (!s.ok()) {
    using C = dynamo::Status::Code;
    const std::string line =
        s.code() == C::kInvalidArgument ? "refused: " + s.message() : s.ToString();
    std::fprintf(stderr, "dynamoctl: %s\n", line.c_str());
    if (s.code() == C::kNotAuthorized) return kExitNotAuthorized;
    return s.code() == C::kTimeout || s.code() == C::kUnavailable ? kExitUnavailable : kExitOther;
  }
  std::cout << (a.json ? "{\"ok\": true}" : "ok") << "\n";
  return kExitOk;
}

void Expect(const Args& a, const std::string& cmd, size_t n, const char* shape) {
  if (a.positional.size() != n + 1) throw UsageError{"usage: dynamoctl " + cmd + " " + shape};
}

void Allow(const Args& a, const std::string& cmd, bool context, bool w, bool r, bool local) {
  if ((a.context && !context) || (a.w && !w) || (a.r && !r) || (a.local && !local)) {
    throw UsageError{"option not accepted by '" + cmd + "'"};
  }
}

// The context token on the command line is base64 of the context bytes.
std::optional<std::string> DecodeContextArg(const Args& a) {
  if (!a.context) return std::string();
  return dynamo::Base64Decode(*a.context);
}

int PrintContext(const Args& a, const std::string& ctx) {
  std::string token = dynamo::Base64Encode(ctx);
  if (a.json) {
    std::cout << nlohmann::json{{"context", token}}.dump() << "\n";
  } else {
    std::cout << token << "\n";
  }
  return kExitOk;
}

// keygen: a new pair, written to PREFIX.key and PREFIX.pub, or printed.
int Keygen(const Args& a) {
  Expect(a, "keygen", 0, "[--out PREFIX]");
  auto pair = dynamo::curve::Generate();
  if (!pair.ok()) return Fail(pair.status());
  if (a.out.empty()) {
    if (a.json) {
      std::cout << nlohmann::json{{"public_key", pair->public_key},
                                  {"secret_key", pair->secret_key}}
                       .dump()
                << "\n";
    } else {
      std::cout << dynamo::curve::KeyPairFileText(*pair);
    }
    return kExitOk;
  }
  if (dynamo::Status s = dynamo::curve::WriteKeyFiles(*pair, a.out); !s.ok()) {
    std::fprintf(stderr, "dynamoctl: keygen: %s\n", s.message().c_str());
    return kExitOther;
  }
  if (a.json) {
    std::cout << nlohmann::json{{"public_key", pair->public_key},
                                {"secret_file", a.out + ".key"},
                                {"public_file", a.out + ".pub"}}
                     .dump()
              << "\n";
  } else {
    std::cout << "wrote " << a.out << ".key (the key pair, mode 0600) and " << a.out
              << ".pub\npublic key: " << pair->public_key << "\n";
  }
  return kExitOk;
}

int Run(const Args& a) {
  if (a.positional.empty()) throw UsageError{"no command given"};
  const std::string& cmd = a.positional[0];
  if (cmd != "migrate" && (a.backend || !a.backend_opts.empty() || a.no_wait)) {
    throw UsageError{"option not accepted by '" + cmd + "'"};
  }
  if (!a.out.empty() && cmd != "keygen") throw UsageError{"option not accepted by '" + cmd + "'"};
  if (cmd == "keygen") {
    Allow(a, cmd, false, false, false, false);
    return Keygen(a);
  }
  dynamo::ClientOptions co;
  if (!a.nodes.empty()) co.endpoints = a.nodes;
  // What acts on one node in particular does not fail over.
  if (co.endpoints.size() > 1 && (cmd == "join" || cmd == "leave" || a.local)) {
    throw UsageError{"'" + cmd + (a.local ? " --local" : "") +
                     "' acts on one node: give one --node"};
  }
  co.timeout = std::chrono::milliseconds(a.timeout_ms);
  // One node: wait for its connection as long as asked. Several: a node
  // not connected within a second (down, paused, cut off) gives the
  // request, unsent, to the next.
  if (co.endpoints.size() == 1) co.connect_timeout = co.timeout;
  if (a.curve_secret_key_file.empty() != a.server_public_keys.empty()) {
    throw UsageError{"--curve-secret-key-file and --server-public-key go together"};
  }
  if (a.server_public_keys.size() > 1 && a.server_public_keys.size() != co.endpoints.size()) {
    throw UsageError{"--server-public-key: give one for every node or one per --node (" +
                     std::to_string(co.endpoints.size()) + "), got " +
                     std::to_string(a.server_public_keys.size())};
  }
  if (!a.curve_secret_key_file.empty()) {
    auto pair = dynamo::curve::ReadKeyPairFile(a.curve_secret_key_file);
    if (!pair.ok()) {
      throw UsageError{"--curve-secret-key-file: " + pair.status().message()};
    }
    co.curve_public_key = pair->public_key;
    co.curve_secret_key = pair->secret_key;
    for (const std::string& key : a.server_public_keys) {
      auto server = dynamo::curve::ReadPublicKey(key);
      if (!server.ok()) throw UsageError{"--server-public-key: " + server.status().message()};
      if (a.server_public_keys.size() == 1) {
        co.server_public_key = *server;
      } else {
        co.server_public_keys.push_back(*server);
      }
    }
  }

  if (cmd == "put") {
    Expect(a, cmd, 2, "KEY VALUE [--context CTX] [--w W]");
    Allow(a, cmd, true, true, false, false);
    auto ctx = DecodeContextArg(a);
    if (!ctx) return Fail(dynamo::Status::InvalidArgument("bad context: not a context token"));
    std::string value = a.positional[2];
    if (value == "-") {
      value.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    }
    dynamo::Client client(co);
    auto r = client.Put(a.positional[1], value, *ctx, a.w.value_or(0));
    if (!r.ok()) return Fail(r.status());
    return PrintContext(a, *r);
  }
  if (cmd == "del") {
    Expect(a, cmd, 1, "KEY [--context CTX] [--w W]");
    Allow(a, cmd, true, true, false, false);
    auto ctx = DecodeContextArg(a);
    if (!ctx) return Fail(dynamo::Status::InvalidArgument("bad context: not a context token"));
    dynamo::Client client(co);
    auto r = client.Del(a.positional[1], *ctx, a.w.value_or(0));
    if (!r.ok()) return Fail(r.status());
    return PrintContext(a, *r);
  }
  if (cmd == "get") {
    Expect(a, cmd, 1, "KEY [--r R] [--local]");
    Allow(a, cmd, false, false, true, true);
    dynamo::Client client(co);
    dynamo::GetOptions go;
    go.r = a.r.value_or(0);
    go.local = a.local;
    auto r = client.Get(a.positional[1], go);
    if (!r.ok()) return Fail(r.status());
    const std::string token = dynamo::Base64Encode(r->context);
    if (a.json) {
      nlohmann::json j;
      j["found"] = r->found;
      j["values_b64"] = nlohmann::json::array();
      for (const auto& v : r->values) j["values_b64"].push_back(dynamo::Base64Encode(v));
      j["context"] = token;
      std::cout << j.dump() << "\n";
    } else if (r->found) {
      for (const auto& v : r->values) {
        std::cout.write(v.data(), static_cast<std::streamsize>(v.size()));
        std::cout << "\n";
      }
      std::cout << "context: " << token << "\n";
    }
    if (!r->found) {
      std::cout.flush();
      std::fprintf(stderr, "dynamoctl: not found: %s\n", a.positional[1].c_str());
      return kExitNotFound;
    }
    return kExitOk;
  }
  if (cmd == "status") {
    Expect(a, cmd, 0, "");
    Allow(a, cmd, false, false, false, false);
    dynamo::Client client(co);
    auto r = client.StatusJson();
    if (!r.ok()) return Fail(r.status());
    if (a.json) {
      std::cout << *r << "\n";
      return kExitOk;
    }
    auto j = nlohmann::json::parse(*r);
    std::cout << "node      " << j.value("node_id", "?") << " at " << j.value("endpoint", "?")
              << "\n"
              << "engine    " << j.value("backend", "?") << "\n"
              << "ring      " << j.value("partitions", 0) << " partitions, "
              << j.value("partitions_owned", 0) << " owned here; N=" << j.value("replicas", 0)
              << " R=" << j.value("read_quorum", 0) << " W=" << j.value("write_quorum", 0)
              << (j.value("under_replicated", false) ? " (under-replicated)" : "") << "\n"
              << "hints     " << j.value("hints_pending", 0) << " pending";
    const auto by_target = j.value("hints_pending_by_target", nlohmann::json::object());
    for (const auto& [target, count] : by_target.items()) {
      std::cout << " " << target << ":" << count.get<uint64_t>();
    }
    const auto ae = j.value("anti_entropy", nlohmann::json::object());
    std::cout << "\n"
              << "repair    " << ae.value("keys_repaired", 0) << " keys by anti-entropy in "
              << ae.value("exchanges", 0) << " exchanges, " << j.value("read_repairs", 0)
              << " read repairs; " << j.value("transfers_pending", 0)
              << " partition transfers pending\n";
    const auto mig = j.value("migration", nlohmann::json::object());
    if (mig.value("state", "idle") != "idle") {
      std::cout << "migration " << mig.value("state", "?") << " to " << mig.value("to", "?") << ": "
                << mig.value("partitions_copied", 0) << "/" << mig.value("partitions_total", 0)
                << " partitions copied (" << mig.value("keys_copied", 0) << " keys), "
                << mig.value("partitions_checked", 0) << " checked (" << mig.value("keys_mended", 0)
                << " keys mended)";
      const auto error = mig.find("error");
      if (error != mig.end() && error->is_string() && !error->get<std::string>().empty()) {
        std::cout << "; " << error->get<std::string>();
      }
      std::cout << "\n";
    }
    std::cout << "members\n";
    for (const auto& m : j.value("members", nlohmann::json::array())) {
      std::cout << "  " << m.value("node_id", "?") << "  " << m.value("endpoint", "?") << "  "
                << m.value("state", "?") << "\n";
    }
    return kExitOk;
  }
  if (cmd == "ring") {
    Expect(a, cmd, 0, "");
    Allow(a, cmd, false, false, false, false);
    dynamo::Client client(co);
    auto r = client.RingJson();
    if (!r.ok()) return Fail(r.status());
    if (a.json) {
      std::cout << *r << "\n";
      return kExitOk;
    }
    auto j = nlohmann::json::parse(*r);
    std::cout << "ring version " << j.value("version", 0) << ": " << j.value("partitions", 0)
              << " partitions, N=" << j.value("replicas", 0) << "\n";
    // Partitions owned and replicated per node, then each preference list.
    std::map<std::string, std::pair<int, int>> per_node;
    for (const auto& pref : j["owners"]) {
      for (size_t i = 0; i < pref.size(); ++i) {
        auto& c = per_node[pref[i].get<std::string>()];
        if (i == 0) ++c.first;
        ++c.second;
      }
    }
    std::cout << "node  owned  replicated\n";
    for (const auto& [node, c] : per_node) {
      std::cout << node << "  " << c.first << "  " << c.second << "\n";
    }
    std::cout << "partition  preference list\n";
    size_t p = 0;
    for (const auto& pref : j["owners"]) {
      std::cout << p++ << " ";
      for (const auto& n : pref) std::cout << " " << n.get<std::string>();
      std::cout << "\n";
    }
    return kExitOk;
  }
  if (cmd == "join") {
    Expect(a, cmd, 1, "SEED_ENDPOINT");
    Allow(a, cmd, false, false, false, false);
    const std::string& seed = a.positional[1];
    if (!dynamo::IsValidEndpoint(seed)) {
      throw UsageError{"join needs tcp://HOST:PORT or ipc://PATH, got '" + seed + "'"};
    }
    dynamo::Client client(co);
    return AdminDone(a, client.Join(seed));
  }
  if (cmd == "leave") {
    Expect(a, cmd, 0, "");
    Allow(a, cmd, false, false, false, false);
    dynamo::Client client(co);
    return AdminDone(a, client.Leave());
  }
  if (cmd == "remove") {
    Expect(a, cmd, 1, "NODE_ID");
    Allow(a, cmd, false, false, false, false);
    dynamo::Client client(co);
    return AdminDone(a, client.Remove(a.positional[1]));
  }
  if (cmd == "migrate") {
    Expect(a, cmd, 0, "--backend NAME|PATH [--backend-opt KEY=VALUE]... [--no-wait]");
    Allow(a, cmd, false, false, false, false);
    if (!a.backend) throw UsageError{"migrate needs --backend NAME|PATH"};
    dynamo::Client client(co);
    dynamo::Status s = client.Migrate(*a.backend, a.backend_opts);
    if (!s.ok() || a.no_wait) return AdminDone(a, s);
    // Until the node says it is over (each poll within --timeout-ms).
    std::string last;
    while (true) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      auto st = client.StatusJson();
      if (!st.ok()) return AdminDone(a, st.status());
      auto j = nlohmann::json::parse(*st, nullptr, false);
      if (j.is_discarded() || !j.contains("migration")) {
        return AdminDone(a, dynamo::Status::Corruption("status shows no migration"));
      }
      const auto& m = j["migration"];
      const std::string state = m.value("state", "");
      if (state == "done") break;
      if (state == "failed" || state == "idle") {
        return AdminDone(a, dynamo::Status::IOError("migration failed: " +
                                                    (m["error"].is_string()
                                                         ? m["error"].get<std::string>()
                                                         : std::string("(no reason given)"))));
      }
      const std::string now = state + " " + std::to_string(m.value("partitions_copied", 0)) + "/" +
                              std::to_string(m.value("partitions_total", 0));
      if (!a.json && now != last) std::fprintf(stderr, "migration: %s\n", now.c_str());
      last = now;
    }
    return AdminDone(a, dynamo::Status::OK());
  }
  throw UsageError{"unknown command '" + cmd + "'"};
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(Parse(argc, argv));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "dynamoctl: %s (see dynamoctl --help)\n", e.message.c_str());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dynamoctl: %s\n", e.what());
    return kExitOther;
  }
}
