#include "simulation.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "dynamo/log.h"
#include "dynamo/transport/sim_loop.h"
#include "node/anti_entropy.h"
#include "node/handoff.h"
#include "node/local_store.h"
#include "node/node.h"
#include "node/node_context.h"
#include "node/transfer.h"

namespace dynamo::sim {
namespace {

using namespace std::chrono_literals;
using Clock = Loop::Clock;
using std::chrono::milliseconds;
namespace fs = std::filesystem;

constexpr int kKeys = 6;
constexpr int kClients = 3;
constexpr int kMaxNodes = 7;
constexpr auto kStep = 5ms;          // how often clients and faults act
constexpr auto kFaultPhase = 20s;    // faults and client load
constexpr auto kClientTimeout = 3s;  // a client gives up on a request
constexpr auto kSettleLimit = 300s;  // healing must converge within this

uint64_t Fnv(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h ^ 0xff;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + v[i];
  return out + "}";
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<std::string> LiveValues(const SiblingSet& set) {
  std::vector<std::string> out;
  for (std::string_view v : set.LiveValues()) out.emplace_back(v);
  return out;
}

class Simulation {
 public:
  explicit Simulation(const Config& config)
      : config_(config), net_(config.seed), rng_(config.seed * 0x9E3779B97F4A7C15ull + 7) {}

  Outcome Run();

 private:
  enum class State { kUp, kCrashed, kRemoved };
  struct SimNode {
    std::string id, endpoint, dir;
    SimLoop* loop = nullptr;
    std::unique_ptr<Node> node;
    State state = State::kUp;
    bool leave_sent = false;  // an administrator asked it to leave
    bool leaving = false;     // and the node acknowledged it
    bool paused = false;
    Clock::time_point resume_at{}, restart_at{};
  };
  // A write a client sent (acknowledged or not), by its value.
  struct Write {
    std::string key;
    std::set<std::string> past;  // values it superseded, transitively
    bool acked = false;
  };
  struct Client {
    std::string name;
    enum class Phase { kIdle, kGetting, kPutting } phase = Phase::kIdle;
    uint64_t id = 0;  // of the request in flight
    Clock::time_point deadline{}, next{};
    std::string key, value;
    int node = 0;
  };
  struct AdminCall {
    std::string client;
    uint64_t id = 0;
    wire::MsgType type;
    int node = 0;  // leave: the leaving node
    Clock::time_point deadline{};
  };

  // ---- drawing
  uint64_t Draw(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  bool Chance(double p) { return static_cast<double>(rng_() >> 11) * 0x1.0p-53 < p; }
  milliseconds DrawMs(int64_t lo, int64_t hi) {
    return milliseconds(lo + static_cast<int64_t>(Draw(static_cast<uint64_t>(hi - lo + 1))));
  }

  // ---- the cluster
  void Log(const std::string& line);
  void Fail(const std::string& line);
  NodeOptions OptionsFor(int i, const std::vector<std::string>& seeds);
  bool StartNode(int i);
  int AddNode();
  void CrashNode(int i, bool power_loss);
  void LosePageCache(int i);
  Clock::time_point Now() const { return net_.Now(); }
  std::vector<int> Live() const;     // up (started) nodes, paused ones included
  std::vector<int> Members() const;  // nodes clients use: not removed, not leaving
  std::vector<std::string> PreferenceList(const std::string& key);
  SiblingSet LocalSet(int i, const std::string& key);

  // ---- faults and clients
  void Faults();
  void FaultAction();
  void Clients();
  void ClientStart(Client& c);
  void ClientReply(Client& c, const wire::Reply& r);
  void ClientFinish(Client& c);
  void CheckSiblings(const std::string& where, const std::vector<std::string>& values);
  void SendAdmin(wire::MsgType type, int to, int subject);
  void AdminReplies();
  void Step();
  void Trace();

  // ---- the end
  void Settle();
  std::vector<std::string> Unsettled();
  void FinalChecks();

  Config config_;
  SimNetwork net_;
  std::mt19937_64 rng_;
  Outcome out_;
  fs::path dir_;
  std::vector<SimNode> nodes_;  // index i-1 is node i
  std::vector<Client> clients_;
  std::vector<AdminCall> admin_;
  std::map<std::string, Write> writes_;  // by value
  std::vector<std::string> keys_;
  uint64_t next_request_ = 0;
  uint64_t next_value_ = 0;
  int data_loss_budget_ = 1;   // crashes that lose an engine's data, and removes
  std::string last_ack_node_;  // the coordinator of the latest acknowledged put
  Clock::time_point next_fault_{};
  bool settling_ = false;
  NodeOptions base_;
  std::string traced_;
};

void Simulation::Log(const std::string& line) {
  out_.digest = Fnv(out_.digest, line);
  if (config_.verbose) {
    const double t =
        std::chrono::duration<double>(Now() - Clock::time_point(std::chrono::hours(1))).count();
    std::fprintf(stderr, "[%9.3f] %s\n", t, line.c_str());
  }
}

void Simulation::Fail(const std::string& line) {
  Log("FAILED: " + line);
  if (out_.failures.size() < 20) out_.failures.push_back(line);
}

NodeOptions Simulation::OptionsFor(int i, const std::vector<std::string>& seeds) {
  NodeOptions o = base_;
  o.node_id = "node" + std::to_string(i);
  o.listen = "tcp://127.0.0.1:" + std::to_string(21000 + i);
  o.data_dir = (dir_ / o.node_id).string();
  o.seeds = seeds;
  return o;
}

bool Simulation::StartNode(int i) {
  SimNode& n = nodes_[i - 1];
  std::vector<std::string> seeds;
  for (int j : Live()) {
    if (j != i) seeds.push_back(nodes_[j - 1].endpoint);
  }
  n.node = std::make_unique<Node>(OptionsFor(i, seeds));
  Status s = n.node->Start(n.loop);
  if (!s.ok()) {
    Fail(n.id + " cannot start: " + s.ToString());
    n.loop->Crash();
    n.node.reset();
    return false;
  }
  n.node->StartActors();
  n.state = State::kUp;
  return true;
}

int Simulation::AddNode() {
  const int i = static_cast<int>(nodes_.size()) + 1;
  SimNode n;
  n.id = "node" + std::to_string(i);
  n.endpoint = "tcp://127.0.0.1:" + std::to_string(21000 + i);
  n.dir = (dir_ / n.id).string();
  n.loop = net_.AddLoop(n.endpoint, Loop::EngineCalls::kAll);
  nodes_.push_back(std::move(n));
  StartNode(i);
  return i;
}

// A crash of the process: what the node held in memory is gone (the memory
// engine's data with it), its files stay as written. With power_loss the
// file engine's newest segment also loses an unsynced tail.
void Simulation::CrashNode(int i, bool power_loss) {
  SimNode& n = nodes_[i - 1];
  n.loop->Crash();
  n.node.reset();
  n.state = State::kCrashed;
  n.paused = false;
  if (power_loss) LosePageCache(i);
}

// What a power loss does to a file engine that does not fsync every write:
// the newest segment ends somewhere in its last pages, and its tail may be
// garbage.
void Simulation::LosePageCache(int i) {
  SimNode& n = nodes_[i - 1];
  const fs::path engine_dir = fs::path(n.dir) / "file";
  std::error_code ec;
  fs::path newest;
  for (const auto& e : fs::directory_iterator(engine_dir, ec)) {
    if (e.path().extension() == ".log" && e.path() > newest) newest = e.path();
  }
  if (newest.empty()) return;
  const auto size = fs::file_size(newest, ec);
  if (ec || size == 0) return;
  const uint64_t cut = std::min<uint64_t>(size, 1 + Draw(4096));
  fs::resize_file(newest, size - cut, ec);
  if (Chance(0.5) && size - cut > 16) {
    // A page that reached the disk half written.
    FILE* f = std::fopen(newest.c_str(), "r+b");
    if (f != nullptr) {
      std::fseek(f, static_cast<long>(size - cut - 1 - Draw(16)), SEEK_SET);
      std::fputc(static_cast<int>(Draw(256)), f);
      std::fclose(f);
    }
  }
  Log(n.id + " loses the last " + std::to_string(cut) + " bytes of " + newest.filename().string());
}

std::vector<int> Simulation::Live() const {
  std::vector<int> out;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].state == State::kUp) out.push_back(static_cast<int>(i) + 1);
  }
  return out;
}

std::vector<int> Simulation::Members() const {
  std::vector<int> out;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].state != State::kRemoved && !nodes_[i].leave_sent)
      out.push_back(static_cast<int>(i) + 1);
  }
  return out;
}

// The key's replicas in the ring of the first running member.
std::vector<std::string> Simulation::PreferenceList(const std::string& key) {
  for (int i : Members()) {
    if (nodes_[i - 1].node) return nodes_[i - 1].node->context().PreferenceListFor(key);
  }
  return {};
}

SiblingSet Simulation::LocalSet(int i, const std::string& key) {
  auto set = nodes_[i - 1].node->context().store.Read(key);
  if (!set.ok()) {
    Fail(nodes_[i - 1].id + " cannot read " + key + ": " + set.status().ToString());
    return SiblingSet();
  }
  return std::move(set).value();
}

// ---- faults

void Simulation::Faults() {
  // Pauses end and crashed nodes restart when their time comes.
  for (size_t k = 0; k < nodes_.size(); ++k) {
    SimNode& n = nodes_[k];
    const int i = static_cast<int>(k) + 1;
    if (n.paused && Now() >= n.resume_at) {
      n.paused = false;
      n.loop->Resume();
      Log("resume " + n.id);
    }
    if (n.state == State::kCrashed && n.restart_at != Clock::time_point{} &&
        Now() >= n.restart_at) {
      n.restart_at = {};
      Log("restart " + n.id);
      StartNode(i);
    }
  }
  if (Now() < next_fault_) return;
  next_fault_ = Now() + DrawMs(200, 2000);
  FaultAction();
  ++out_.faults;
}

void Simulation::FaultAction() {
  std::vector<int> live = Live();
  std::vector<int> members = Members();
  auto pick = [&](const std::vector<int>& from) { return from[Draw(from.size())]; };
  const uint64_t what = Draw(100);
  if (what < 15) {
    net_.Heal();
    ++out_.heals;
    Log("heal the network");
  } else if (what < 30) {
    // Two sides, each node on one at random.
    std::vector<int> a, b;
    for (size_t i = 1; i <= nodes_.size(); ++i)
      (Chance(0.5) ? a : b).push_back(static_cast<int>(i));
    const bool one_way = Chance(0.3);
    for (int x : a) {
      for (int y : b) {
        net_.Cut(nodes_[x - 1].endpoint, nodes_[y - 1].endpoint);
        if (!one_way) net_.Cut(nodes_[y - 1].endpoint, nodes_[x - 1].endpoint);
      }
    }
    std::vector<std::string> as, bs;
    for (int x : a) as.push_back(nodes_[x - 1].id);
    for (int y : b) bs.push_back(nodes_[y - 1].id);
    ++out_.partitions;
    Log(std::string("partition ") + Join(as) + (one_way ? " -> " : " | ") + Join(bs));
  } else if (what < 42) {
    // One node cut off from every other (sometimes only one way).
    const int x = static_cast<int>(1 + Draw(nodes_.size()));
    const int mode = static_cast<int>(Draw(3));  // 0 both, 1 in, 2 out
    for (size_t y = 1; y <= nodes_.size(); ++y) {
      if (static_cast<int>(y) == x) continue;
      if (mode != 1) net_.Cut(nodes_[x - 1].endpoint, nodes_[y - 1].endpoint);
      if (mode != 2) net_.Cut(nodes_[y - 1].endpoint, nodes_[x - 1].endpoint);
    }
    ++out_.isolations;
    Log("isolate " + nodes_[x - 1].id +
        (mode == 0   ? ""
         : mode == 1 ? " (inbound)"
                     : " (outbound)"));
  } else if (what < 57) {
    std::vector<int> runnable;
    for (int i : live) {
      if (!nodes_[i - 1].paused) runnable.push_back(i);
    }
    if (runnable.empty()) return;
    const int x = pick(runnable);
    nodes_[x - 1].paused = true;
    nodes_[x - 1].resume_at = Now() + DrawMs(100, 4000);
    nodes_[x - 1].loop->Pause();
    ++out_.pauses;
    Log("pause " + nodes_[x - 1].id);
  } else if (what < 75) {
    // A crash, and a restart a little later. Often of the node that
    // coordinated the latest acknowledged write: the moment its replicas'
    // copies matter most.
    std::vector<int> candidates;
    for (int i : live) {
      if (!nodes_[i - 1].leave_sent) candidates.push_back(i);
    }
    if (candidates.size() <= 1) return;
    int x = pick(candidates);
    if (Chance(0.5)) {
      for (int i : candidates) {
        if (nodes_[i - 1].id == last_ack_node_) x = i;
      }
    }
    bool power_loss = false;
    if (config_.engine == "memory") {
      if (data_loss_budget_ == 0) return;
      --data_loss_budget_;
    } else if (data_loss_budget_ > 0 && Chance(0.25)) {
      --data_loss_budget_;
      power_loss = true;
    }
    ++out_.crashes;
    if (power_loss) ++out_.power_losses;
    Log("crash " + nodes_[x - 1].id + (power_loss ? " (power loss)" : ""));
    CrashNode(x, power_loss);
    if (Chance(0.9)) nodes_[x - 1].restart_at = Now() + DrawMs(100, 4000);
  } else if (what < 82) {
    if (nodes_.size() >= kMaxNodes) return;
    const int x = AddNode();
    ++out_.joins;
    Log("join " + nodes_[x - 1].id);
  } else if (what < 90) {
    // A leave, while enough members stay for N replicas and a stand-in.
    if (members.size() <= 4) return;
    std::vector<int> candidates;
    for (int i : members) {
      if (nodes_[i - 1].state == State::kUp) candidates.push_back(i);
    }
    if (candidates.empty()) return;
    const int x = pick(candidates);
    nodes_[x - 1].leave_sent = true;
    ++out_.leaves;
    SendAdmin(wire::MsgType::kAdminLeave, x, x);
  } else {
    // The remove of a crashed node that will not come back.
    if (data_loss_budget_ == 0 || members.size() <= 4) return;
    std::vector<int> crashed;
    for (int i : members) {
      if (nodes_[i - 1].state == State::kCrashed) crashed.push_back(i);
    }
    if (crashed.empty() || live.empty()) return;
    const int x = pick(crashed);
    --data_loss_budget_;
    nodes_[x - 1].state = State::kRemoved;
    nodes_[x - 1].restart_at = {};
    ++out_.removes;
    SendAdmin(wire::MsgType::kAdminRemove, pick(live), x);
  }
}

void Simulation::SendAdmin(wire::MsgType type, int to, int subject) {
  AdminCall call;
  call.client = "admin";
  call.id = ++next_request_;
  call.type = type;
  call.node = subject;
  call.deadline = Now() + kClientTimeout;
  wire::Request req;
  req.type = type;
  req.id = call.id;
  if (type == wire::MsgType::kAdminRemove) req.node_id = nodes_[subject - 1].id;
  net_.ClientSend(call.client, nodes_[to - 1].endpoint, req);
  Log(std::string(type == wire::MsgType::kAdminLeave ? "leave " : "remove ") +
      nodes_[subject - 1].id + " through " + nodes_[to - 1].id);
  admin_.push_back(call);
}

void Simulation::AdminReplies() {
  for (const wire::Reply& r : net_.TakeReplies("admin")) {
    for (auto it = admin_.begin(); it != admin_.end(); ++it) {
      if (it->id != r.id) continue;
      const bool ok = r.type != wire::MsgType::kError;
      Log(std::string(it->type == wire::MsgType::kAdminLeave ? "leave " : "remove ") +
          nodes_[it->node - 1].id + (ok ? ": accepted" : ": refused: " + r.error_message));
      if (it->type == wire::MsgType::kAdminLeave && ok) nodes_[it->node - 1].leaving = true;
      if (it->type == wire::MsgType::kAdminRemove && !ok &&
          r.error_code != static_cast<uint8_t>(Status::Code::kNotFound)) {
        // Not removed after all: it comes back.
        nodes_[it->node - 1].state = State::kCrashed;
        nodes_[it->node - 1].restart_at = Now() + 100ms;
        ++data_loss_budget_;
      }
      admin_.erase(it);
      break;
    }
  }
  std::vector<AdminCall> open;
  for (AdminCall& a : admin_) {
    if (Now() < a.deadline) {
      open.push_back(a);
      continue;
    }
    Log("no answer to the " +
        std::string(a.type == wire::MsgType::kAdminLeave ? "leave" : "remove") + " of " +
        nodes_[a.node - 1].id);
    // A remove that nobody answered may have happened or not: its node stays
    // removed (dead) either way, and is sent again at settling.
  }
  admin_ = std::move(open);
}

// ---- clients

void Simulation::Clients() {
  for (Client& c : clients_) {
    for (const wire::Reply& r : net_.TakeReplies(c.name)) {
      if (c.phase != Client::Phase::kIdle && r.id == c.id) ClientReply(c, r);
    }
    if (c.phase != Client::Phase::kIdle && Now() >= c.deadline) {
      Log(c.name + (c.phase == Client::Phase::kGetting ? " get " : " put ") + c.key + " " +
          c.value + " through " + nodes_[c.node - 1].id + ": no reply");
      if (c.phase == Client::Phase::kGetting) {
        ++out_.gets_failed;
      } else {
        ++out_.puts_failed;
      }
      ClientFinish(c);
    }
    if (c.phase == Client::Phase::kIdle && !settling_ && Now() >= c.next) ClientStart(c);
  }
}

void Simulation::ClientStart(Client& c) {
  std::vector<int> targets;
  for (int i : Members()) {
    if (nodes_[i - 1].state == State::kUp) targets.push_back(i);
  }
  if (targets.empty()) return;
  c.key = keys_[Draw(keys_.size())];
  c.node = targets[Draw(targets.size())];
  c.id = ++next_request_;
  c.deadline = Now() + kClientTimeout;
  wire::Request req;
  req.id = c.id;
  req.key = c.key;
  if (Chance(0.8)) {
    c.phase = Client::Phase::kGetting;
    c.value.clear();
    req.type = wire::MsgType::kGet;
    Log(c.name + " get " + c.key + " through " + nodes_[c.node - 1].id);
  } else {
    // A write without a context: concurrent with everything there is.
    c.phase = Client::Phase::kPutting;
    c.value = "v" + std::to_string(++next_value_);
    writes_[c.value].key = c.key;
    req.type = wire::MsgType::kPut;
    req.value = c.value;
    Log(c.name + " put " + c.key + " " + c.value + " (no context) through " +
        nodes_[c.node - 1].id);
  }
  net_.ClientSend(c.name, nodes_[c.node - 1].endpoint, req);
}

void Simulation::ClientReply(Client& c, const wire::Reply& r) {
  if (c.phase == Client::Phase::kGetting) {
    if (r.type != wire::MsgType::kGetReply) {
      ++out_.gets_failed;
      Log(c.name + " get " + c.key + ": " + r.error_message);
      return ClientFinish(c);
    }
    ++out_.gets_ok;
    Log(c.name + " get " + c.key + ": " + Join(Sorted(r.values)));
    CheckSiblings(c.name + "'s get of " + c.key + " through " + nodes_[c.node - 1].id, r.values);
    // Read, modify, write: the new value supersedes what was read.
    std::set<std::string> past;
    for (const std::string& v : r.values) {
      past.insert(v);
      auto it = writes_.find(v);
      if (it != writes_.end()) past.insert(it->second.past.begin(), it->second.past.end());
    }
    std::vector<int> targets;
    for (int i : Members()) {
      if (nodes_[i - 1].state == State::kUp) targets.push_back(i);
    }
    if (targets.empty()) return ClientFinish(c);
    c.phase = Client::Phase::kPutting;
    c.value = "v" + std::to_string(++next_value_);
    c.node = targets[Draw(targets.size())];
    c.id = ++next_request_;
    c.deadline = Now() + kClientTimeout;
    Write& w = writes_[c.value];
    w.key = c.key;
    w.past = std::move(past);
    wire::Request req;
    req.type = wire::MsgType::kPut;
    req.id = c.id;
    req.key = c.key;
    req.value = c.value;
    req.context = r.context;
    Log(c.name + " put " + c.key + " " + c.value + " through " + nodes_[c.node - 1].id);
    net_.ClientSend(c.name, nodes_[c.node - 1].endpoint, req);
    return;
  }
  if (r.type == wire::MsgType::kPutReply) {
    ++out_.puts_acked;
    writes_[c.value].acked = true;
    last_ack_node_ = nodes_[c.node - 1].id;
    Log(c.name + " put " + c.key + " " + c.value + ": acknowledged");
  } else {
    ++out_.puts_failed;
    Log(c.name + " put " + c.key + " " + c.value + ": " + r.error_message);
  }
  ClientFinish(c);
}

void Simulation::ClientFinish(Client& c) {
  c.phase = Client::Phase::kIdle;
  c.next = Now() + DrawMs(0, 300);
}

// Siblings must be writes no client ordered: neither written after reading
// the other (directly or through later writes), and each write once.
void Simulation::CheckSiblings(const std::string& where, const std::vector<std::string>& values) {
  std::set<std::string> seen;
  for (const std::string& v : values) {
    if (!seen.insert(v).second) {
      Fail(where + ": write " + v + " is two siblings");
      continue;
    }
    if (!writes_.count(v)) Fail(where + ": value '" + v + "' was never written");
  }
  for (const std::string& a : values) {
    auto wa = writes_.find(a);
    if (wa == writes_.end()) continue;
    for (const std::string& b : values) {
      if (a != b && wa->second.past.count(b)) {
        Fail(where + ": siblings " + a + " and " + b + ", but " + a + " was written after " + b +
             " was read");
      }
    }
  }
}

void Simulation::Step() {
  net_.RunFor(kStep);
  AdminReplies();
  Clients();
  if (!config_.trace.empty()) Trace();
}

// Which nodes hold the traced value, in their engine or as a hint.
void Simulation::Trace() {
  auto w = writes_.find(config_.trace);
  if (w == writes_.end()) return;
  std::string holders;
  for (int i : Live()) {
    Node& node = *nodes_[i - 1].node;
    auto set = node.context().store.Read(w->second.key);
    if (set.ok()) {
      for (const Version& v : set->versions()) {
        if (!v.tombstone && v.value == config_.trace) {
          holders +=
              " " + nodes_[i - 1].id + "(" + v.dot_node + ":" + std::to_string(v.dot_counter) + ")";
        }
      }
    }
    for (std::string_view v : node.context().hints.ForKey(w->second.key).LiveValues()) {
      if (v == config_.trace) holders += " " + nodes_[i - 1].id + "(hint)";
    }
  }
  if (holders != traced_) {
    traced_ = holders;
    Log("trace " + config_.trace + ":" + (holders.empty() ? " nowhere" : holders));
  }
}

// ---- the end

std::vector<std::string> Simulation::Unsettled() {
  std::vector<std::string> problems;
  // Rings: the same on every member, holding the members that were not
  // removed or asked to leave; one whose leave got no answer may be in or
  // out.
  std::set<std::string> required, optional;
  for (const SimNode& n : nodes_) {
    if (n.state == State::kRemoved || n.leaving) continue;
    (n.leave_sent ? optional : required).insert(n.id);
  }
  const Ring* first = nullptr;
  std::string first_id;
  for (int i : Live()) {
    const Ring& ring = nodes_[i - 1].node->context().ring();
    if (!required.count(nodes_[i - 1].id)) continue;
    if (first == nullptr) {
      first = &ring;
      first_id = nodes_[i - 1].id;
      const auto names = ring.nodes();
      const std::set<std::string> in_ring(names.begin(), names.end());
      bool fits = std::includes(in_ring.begin(), in_ring.end(), required.begin(), required.end());
      for (const std::string& name : in_ring) {
        fits = fits && (required.count(name) || optional.count(name));
      }
      if (!fits) {
        problems.push_back(
            first_id + "'s ring holds " + Join(Sorted(names)) + ", expected " +
            Join({required.begin(), required.end()}) +
            (optional.empty() ? "" : " and maybe " + Join({optional.begin(), optional.end()})));
      }
    } else if (!(ring == *first)) {
      problems.push_back(nodes_[i - 1].id + "'s ring differs from " + first_id + "'s");
    }
  }
  // Nodes that left are out of their own ring.
  for (size_t k = 0; k < nodes_.size(); ++k) {
    const SimNode& n = nodes_[k];
    if (n.leaving && n.node && n.node->context().ring().Contains(n.id)) {
      problems.push_back(n.id + " has not finished leaving");
    }
  }
  // Hints and transfers: none left on any live node.
  for (int i : Live()) {
    Node& node = *nodes_[i - 1].node;
    if (node.handoff().snapshot().pending > 0) {
      problems.push_back(nodes_[i - 1].id + " still holds " +
                         std::to_string(node.handoff().snapshot().pending) + " hints");
    }
    if (node.transfer().pending() > 0) {
      problems.push_back(nodes_[i - 1].id + " has " + std::to_string(node.transfer().pending()) +
                         " transfers left");
    }
  }
  if (!problems.empty()) return problems;
  // Replicas: every key the same on its N replicas.
  for (const std::string& key : keys_) {
    const auto pref = PreferenceList(key);
    std::string first_id;
    SiblingSet first_set;
    for (const std::string& id : pref) {
      const int i = std::stoi(id.substr(4));
      if (!nodes_[i - 1].node) {
        problems.push_back(id + " (a replica of " + key + ") is not running");
        continue;
      }
      SiblingSet set = LocalSet(i, key);
      if (first_id.empty()) {
        first_id = id;
        first_set = std::move(set);
      } else if (!(set == first_set)) {
        problems.push_back("replicas of " + key + " differ: " + first_id + " " +
                           Join(Sorted(LiveValues(first_set))) + ", " + id + " " +
                           Join(Sorted(LiveValues(set))));
      }
    }
  }
  return problems;
}

void Simulation::Settle() {
  settling_ = true;
  Log("heal everything");
  net_.Heal();
  net_.SetFaults(SimNetwork::Faults{});
  for (size_t k = 0; k < nodes_.size(); ++k) {
    SimNode& n = nodes_[k];
    if (n.paused) {
      n.paused = false;
      n.loop->Resume();
    }
    if (n.state == State::kCrashed) {
      Log("restart " + n.id);
      n.restart_at = {};
      StartNode(static_cast<int>(k) + 1);
    }
  }
  // Removes that got no answer are asked again.
  for (size_t k = 0; k < nodes_.size(); ++k) {
    if (nodes_[k].state != State::kRemoved) continue;
    for (int i : Live()) {
      const Member* m = nodes_[i - 1].node->context().cluster.Find(nodes_[k].id);
      if (m != nullptr && m->state != MemberState::kRemoved) {
        SendAdmin(wire::MsgType::kAdminRemove, i, static_cast<int>(k) + 1);
        break;
      }
    }
  }
  // Clients finish what they sent.
  for (auto waited = 0ms; waited < kClientTimeout + 1s; waited += kStep) Step();

  std::map<int, uint64_t> rounds;
  auto rounds_done = [&] {
    for (int i : Members()) {
      if (nodes_[i - 1].node->anti_entropy().stats().rounds <= rounds[i]) return false;
    }
    return true;
  };
  for (int i : Members()) rounds[i] = nodes_[i - 1].node->anti_entropy().stats().rounds;
  std::vector<std::string> problems;
  for (auto waited = 0ms;; waited += 1s) {
    problems = Unsettled();
    if (problems.empty() && rounds_done()) break;
    if (waited >= kSettleLimit) break;
    for (int s = 0; s < 200; ++s) Step();
  }
  if (problems.empty() && !rounds_done()) {
    problems.push_back("some member finished no anti-entropy round in " +
                       std::to_string(kSettleLimit.count()) + " s");
  }
  for (const std::string& p : problems) Fail("not settled after healing: " + p);
  Log("settled");
}

void Simulation::FinalChecks() {
  for (const std::string& key : keys_) {
    // The final state: what the key's replicas hold.
    SiblingSet merged;
    for (const std::string& id : PreferenceList(key)) {
      const int i = std::stoi(id.substr(4));
      if (nodes_[i - 1].node) merged.Merge(LocalSet(i, key));
    }
    const std::vector<std::string> live = LiveValues(merged);
    Log("final " + key + ": " + Join(Sorted(live)));
    out_.digest = Fnv(out_.digest, merged.Encode());
    CheckSiblings("the final state of " + key, live);
    const std::set<std::string> present(live.begin(), live.end());
    for (const auto& [value, w] : writes_) {
      if (w.key != key || !w.acked || present.count(value)) continue;
      bool superseded = false;
      for (const std::string& p : live) {
        auto it = writes_.find(p);
        if (it != writes_.end() && it->second.past.count(value)) superseded = true;
      }
      if (!superseded) {
        // Where it still is, if anywhere: a node that is no replica.
        std::vector<std::string> holders;
        for (int i : Live()) {
          for (const std::string& v : LiveValues(LocalSet(i, key))) {
            if (v == value) holders.push_back(nodes_[i - 1].id);
          }
        }
        Fail("acknowledged write " + key + "=" + value + " is lost: its replicas " +
             Join(PreferenceList(key)) + " hold " + Join(Sorted(live)) +
             ", none written after reading it" +
             (holders.empty() ? "" : "; held by " + Join(holders)));
      }
    }
    // A client reads the same at R=N, through any member.
    const std::vector<int> members = Members();
    if (members.empty()) continue;
    const int through = members[Draw(members.size())];
    wire::Request req;
    req.type = wire::MsgType::kGet;
    req.id = ++next_request_;
    req.key = key;
    req.quorum = base_.replicas;
    net_.ClientSend("checker", nodes_[through - 1].endpoint, req);
    std::vector<wire::Reply> got;
    for (auto waited = 0ms; waited < kClientTimeout && got.empty(); waited += kStep) {
      net_.RunFor(kStep);
      for (auto& r : net_.TakeReplies("checker")) {
        if (r.id == req.id) got.push_back(std::move(r));
      }
    }
    if (got.empty()) {
      Fail("a get of " + key + " at R=" + std::to_string(base_.replicas) + " through " +
           nodes_[through - 1].id + " after healing: no reply");
    } else if (got[0].type != wire::MsgType::kGetReply) {
      Fail("a get of " + key + " at R=" + std::to_string(base_.replicas) + " through " +
           nodes_[through - 1].id + " after healing: " + got[0].error_message);
    } else if (Sorted(got[0].values) != Sorted(live)) {
      Fail("a get of " + key + " at R=" + std::to_string(base_.replicas) + " through " +
           nodes_[through - 1].id + " returned " + Join(Sorted(got[0].values)) +
           ", the replicas hold " + Join(Sorted(live)));
    }
  }
}

Outcome Simulation::Run() {
  log::SetLevel(config_.debug_log ? log::Level::kDebug
                : config_.verbose ? log::Level::kWarn
                                  : log::Level::kError);
  net_.TagLogs(config_.verbose || config_.debug_log);
  const fs::path parent =
      config_.work_dir.empty() ? fs::temp_directory_path() : fs::path(config_.work_dir);
  dir_ = parent / ("dynamo-sim-" + std::to_string(::getpid()) + "-" + std::to_string(config_.seed));
  std::error_code ec;
  fs::remove_all(dir_, ec);
  fs::create_directories(dir_, ec);
  if (ec) {
    out_.failures.push_back("cannot create " + dir_.string() + ": " + ec.message());
    return out_;
  }

  // What this seed draws.
  const int initial = 4 + static_cast<int>(Draw(2));
  SimNetwork::Faults faults;
  const double losses[] = {0, 0, 0.01, 0.05};
  faults.loss = losses[Draw(4)];
  faults.duplicate = Chance(0.5) ? 0.02 : 0;
  faults.slow = Chance(0.5) ? 0.05 : 0;
  faults.slow_max = 1000ms;
  net_.SetFaults(faults);
  base_.backend = config_.engine;
  base_.plugin_dir = config_.plugin_dir;
  if (config_.engine == "file") base_.backend_opts = {{"sync", "never"}, {"cache_bytes", "0"}};
  base_.partitions = 16;
  // Clocks are not truncated here: a context cut to the default 10 entries
  // can, by design (paper 4.4, docs/design.md), let a stale replica's old
  // version come back as a sibling, and a run has many coordinators (each
  // crash and each hand-off gives a node a new name for its dots).
  base_.max_clock_entries = 64;
  base_.gossip_interval_ms = 100;
  base_.failure_timeout_ms = Chance(0.5) ? 500 : 1500;
  base_.request_timeout_ms = 200;
  base_.handoff_interval_ms = 200;
  base_.anti_entropy_interval_ms = Chance(0.5) ? 50 : 500;
  std::ostringstream profile;
  profile << "seed " << config_.seed << ": " << config_.engine << " engine, " << initial
          << " nodes, loss " << faults.loss << ", duplicates " << faults.duplicate << ", slow "
          << faults.slow << ", failure timeout " << base_.failure_timeout_ms
          << " ms, anti-entropy every " << base_.anti_entropy_interval_ms << " ms";
  out_.profile = profile.str();
  Log(out_.profile);

  for (int k = 0; k < kKeys; ++k) keys_.push_back("key" + std::to_string(k));
  for (int k = 0; k < kClients; ++k) {
    Client c;
    c.name = "client" + std::to_string(k + 1);
    clients_.push_back(c);
  }
  // The cluster forms without faults.
  for (int k = 0; k < initial; ++k) AddNode();
  const auto start = Now();
  for (auto waited = 0ms; waited < 30s; waited += kStep) {
    bool formed = true;
    for (int i : Live())
      formed = formed &&
               nodes_[i - 1].node->context().ring().nodes().size() == static_cast<size_t>(initial);
    if (formed) break;
    net_.RunFor(kStep);
  }
  Log("formed");
  next_fault_ = Now() + DrawMs(0, 1000);
  while (Now() - start < kFaultPhase) {
    Faults();
    Step();
  }
  Settle();
  FinalChecks();

  out_.events = net_.events_run();
  out_.messages_lost = net_.counts().lost;
  out_.messages_duplicated = net_.counts().duplicated;
  out_.virtual_secs = std::chrono::duration<double>(Now() - start).count();
  for (SimNode& n : nodes_) {
    n.loop->Crash();
    n.node.reset();
  }
  fs::remove_all(dir_, ec);
  return out_;
}

}  // namespace

Outcome Run(const Config& config) {
  Simulation sim(config);
  return sim.Run();
}

std::string ReplayCommand(const Config& config) {
  return "dynamo-sim --seed " + std::to_string(config.seed) + " --engine " + config.engine +
         " --verbose";
}

}  // namespace dynamo::sim
