// Coordination of gets and puts (paper 4.5): preference lists, quorums,
// forwarding to a replica, and read repair.
#include "node/coordinator.h"

#include <algorithm>
#include <utility>

#include "dynamo/backend.h"
#include "dynamo/key_hash.h"
#include "dynamo/log.h"
#include "handoff/hint_store.h"
#include "node/local_store.h"

namespace dynamo {

using wire::MsgType;
using wire::Reply;
using wire::Request;
using wire::RequestView;

namespace {

Status NoRing() { return Status::Unavailable("this node has not joined a cluster yet (no ring)"); }

constexpr const char* kNotAReplica = "this node is not a replica of the key";

// The least a request waits for a replica before it treats it as down for
// that request, whatever its recent round trips (timer and scheduling noise).
constexpr std::chrono::milliseconds kDeadlineFloor{10};

// Keys whose forwarded writes' dots are remembered (ForwardDots): about
// 100 bytes each.
constexpr size_t kForwardDotKeys = 65536;

Status NotAReplica(uint64_t ring_version) {
  return Status::Unavailable(std::string(kNotAReplica) + " in ring version " +
                             std::to_string(ring_version));
}

// last_error: the last replica failure, so the client learns why (an engine
// that lost its database, say), not only how many answered.
Status QuorumFailed(bool write, size_t answered, size_t needed, size_t targets,
                    const std::string& last_error) {
  const char* what = write ? "acknowledged" : "answered";
  // A write the coordinator's own replica (or another) took stays there,
  // and spreads by hand-off and anti-entropy: not undone, not "failed".
  const bool partly_written = write && answered > 0;
  return Status::Unavailable(std::string("quorum not reached: ") + std::to_string(answered) +
                             " of " + std::to_string(needed) + " needed replicas " + what + " (" +
                             std::to_string(targets) + " asked)" +
                             (last_error.empty() ? "" : "; last failure: " + last_error) +
                             (partly_written ? "; the replicas that acknowledged it keep the "
                                               "write, and it may reach the others later"
                                             : ""));
}

}  // namespace

Coordinator::Coordinator(NodeContext& ctx, Hooks hooks)
    : ctx_(ctx),
      hooks_(std::move(hooks)),
      forward_dots_(ctx.loop.WallMillis() * 1000, kForwardDotKeys),
      standin_counter_(ctx.loop.WallMillis() * 1000) {}

// ---- get

void Coordinator::CoordinateGet(std::string identity, const RequestView& req) {
  const RequestStart started = ctx_.Started(req);
  auto targets = ctx_.PreferenceListFor(req.key);
  if (targets.empty()) return ctx_.Answer(started, identity, Reply::Error(req.id, NoRing()));
  auto op = std::make_shared<GetOp>();
  op->started = started;
  op->identity = std::move(identity);
  op->replicas = targets.size();
  op->targets = std::move(targets);
  op->owners.resize(op->replicas);
  op->answers.resize(op->replicas);
  op->done.resize(op->replicas);
  op->held_back.resize(op->replicas);
  const size_t r = req.quorum ? req.quorum : ctx_.options.read_quorum;
  op->needed = std::min(r, op->replicas);
  op->client_id = req.id;
  op->key = req.key;
  op->outstanding = op->replicas;
  for (size_t i = 0; i < op->replicas; ++i) SendReplicaGet(op, i);
  // With no node past the preference list there is no stand-in to ask:
  // nothing more to arm (the common case of a cluster of N nodes).
  if (ctx_.cluster.ring().node_count() <= op->replicas) return;
  // A replica taken for down is still asked (its answer counts if it
  // comes), and a stand-in at once.
  std::chrono::milliseconds deadline{0};
  for (size_t i = 0; i < op->replicas && !op->replied; ++i) {
    const std::string t = op->targets[i];  // a copy: AskStandIn grows targets
    if (t == ctx_.options.node_id) continue;
    deadline = std::max(deadline, DeadlineFor(t, PeerLatency::kHop));
    if (!op->done[i] && ctx_.IsDownNode(t)) AskStandIn(op, t);
  }
  if (!op->replied && op->outstanding > 0 && deadline.count() > 0) {
    op->deadline = ctx_.loop.After(deadline, [this, op] { OnGetDeadline(op); });
  }
}

void Coordinator::SendReplicaGet(const std::shared_ptr<GetOp>& op, size_t i) {
  const std::string& target = op->targets[i];
  const std::string& owner = op->owners[i];
  if (target == ctx_.options.node_id) {
    if (owner.empty()) {
      ctx_.loop.OnEngine<Result<SiblingSet>>(
          [this, key = op->key] { return ctx_.store.Read(key); },
          [this, op, i](Result<SiblingSet> set) { OnGetAnswer(op, i, std::move(set)); });
    } else {
      // This node stands in itself: its hint store (which syncs under its
      // lock) is read on a worker.
      ctx_.loop.OnWorker<SiblingSet>(
          [this, key = op->key] { return ctx_.hints.ForKey(key); },
          [this, op, i](SiblingSet set) { OnGetAnswer(op, i, std::move(set)); });
    }
    return;
  }
  RequestView rg;  // views of op's bytes: Call encodes at once
  rg.type = MsgType::kReplicaGet;
  rg.key = op->key;
  rg.node_id = owner;
  ctx_.loop.Call(ctx_.EndpointOf(target), rg, ctx_.RequestTimeout(),
                 [this, op, i, sent = ctx_.loop.Now()](Result<Reply> rep) {
                   if (!rep.ok()) return OnGetAnswer(op, i, rep.status());
                   latency_.Note(op->targets[i], PeerLatency::kHop, ctx_.loop.Now() - sent);
                   if (Status s = rep->ToStatus(); !s.ok()) return OnGetAnswer(op, i, s);
                   if (rep->type != MsgType::kReplicaGetReply) {
                     return OnGetAnswer(op, i, Status::Corruption("unexpected reply"));
                   }
                   if (rep->payload.empty()) return OnGetAnswer(op, i, SiblingSet());
                   OnGetAnswer(op, i, SiblingSet::Decode(rep->payload));
                 });
}

bool Coordinator::AskStandIn(const std::shared_ptr<GetOp>& op, std::string owner, bool again) {
  if (!again) {
    if (std::find(op->stood.begin(), op->stood.end(), owner) != op->stood.end()) return false;
    op->stood.push_back(owner);
  }
  if (op->extended.empty()) {
    const Ring& ring = ctx_.cluster.ring();
    op->extended = ring.ExtendedPreferenceList(PartitionOf(KeyHash(op->key), ring.partitions()));
  }
  for (const std::string& n : op->extended) {
    if (std::find(op->targets.begin(), op->targets.end(), n) != op->targets.end()) continue;
    if (n != ctx_.options.node_id && ctx_.IsDownNode(n)) continue;
    op->targets.push_back(n);
    op->owners.push_back(owner);
    op->answers.emplace_back();
    op->done.push_back(false);
    op->held_back.push_back(false);
    ++op->outstanding;
    ++stats_.standin_reads;
    SendReplicaGet(op, op->targets.size() - 1);
    return true;
  }
  return false;
}

void Coordinator::OnGetDeadline(const std::shared_ptr<GetOp>& op) {
  op->deadline = 0;
  for (size_t i = 0; i < op->replicas && !op->replied; ++i) {
    // This node's own copy is no peer's to stand in for (a read of it that
    // went to a worker is only slow).
    if (!op->done[i] && op->targets[i] != ctx_.options.node_id) AskStandIn(op, op->targets[i]);
  }
}

void Coordinator::OnGetAnswer(const std::shared_ptr<GetOp>& op, size_t i, Result<SiblingSet> set) {
  op->done[i] = true;
  const bool standin = i >= op->replicas;
  if (set.ok()) {
    // A stand-in's answer counts toward R when it holds hinted versions of
    // the key. One that holds nothing says only that no write came its way:
    // it counts once the replica it stands in for failed this read or is
    // taken for down (counted at once, it would let a read that reached one
    // slow replica of two miss what they acknowledged).
    if (!standin || !set->empty() || OwnerFailed(*op, op->owners[i])) {
      CountGetAnswer(op, i, std::move(set).value());
    } else {
      op->held_back[i] = true;
    }
  } else {
    const Status& failure = set.status();
    // A replica's failure is what the client hears of; a stand-in's only
    // when there is none.
    if (!standin || op->last_error.empty()) op->last_error = failure.ToString();
    log::Debug("replica get from " + op->targets[i] + " failed: " + failure.ToString());
    // Before this failure is counted: another node may answer in its place.
    // Not for a stand-in that could not read the request (a node of an
    // older version: the next would likely refuse too), nor once the
    // replica it stood in for answered.
    if (!op->replied && !standin) AskStandIn(op, op->targets[i]);
    if (!op->replied && standin && failure.code() != Status::Code::kInvalidArgument &&
        !OwnerAnswered(*op, op->owners[i])) {
      AskStandIn(op, op->owners[i], /*again=*/true);
    }
    if (!standin) {
      // Stand-ins for this replica that answered with nothing count now.
      for (size_t j = op->replicas; j < op->targets.size(); ++j) {
        if (op->held_back[j] && op->owners[j] == op->targets[i]) {
          op->held_back[j] = false;
          CountGetAnswer(op, j, SiblingSet());
        }
      }
    }
  }
  --op->outstanding;
  MaybeAnswerGet(op);
  if (op->outstanding == 0) {
    if (op->deadline != 0) ctx_.loop.Cancel(std::exchange(op->deadline, 0));
    ReadRepair(op);
  }
}

bool Coordinator::OwnerAnswered(const GetOp& op, const std::string& owner) const {
  for (size_t i = 0; i < op.replicas; ++i) {
    if (op.targets[i] == owner) return op.answers[i].has_value();
  }
  return false;
}

bool Coordinator::OwnerFailed(const GetOp& op, const std::string& owner) const {
  for (size_t i = 0; i < op.replicas; ++i) {
    if (op.targets[i] == owner) return (op.done[i] && !op.answers[i]) || ctx_.IsDownNode(owner);
  }
  return false;
}

void Coordinator::CountGetAnswer(const std::shared_ptr<GetOp>& op, size_t i, SiblingSet set) {
  const bool standin = i >= op->replicas;
  if (!standin && op->fastest == SIZE_MAX) op->fastest = i;
  if (standin && !op->replied) ++stats_.standin_answers;
  ++op->ok;
  op->merged.Merge(set);
  op->answers[i] = std::move(set);
}

void Coordinator::MaybeAnswerGet(const std::shared_ptr<GetOp>& op) {
  if (op->replied) return;
  if (op->ok >= op->needed) {
    op->replied = true;
    if (Resolve(op)) return;  // answered once the resolved value is written back
    std::vector<std::string> values;
    for (std::string_view v : op->merged.LiveValues()) values.emplace_back(v);
    AnswerGet(op, !op->merged.IsDeleted(), std::move(values),
              op->merged.empty() ? std::string() : ReadContext(*op));
  } else if (op->ok + op->outstanding < op->needed) {
    op->replied = true;
    ctx_.Answer(op->started, op->identity,
                Reply::Error(op->client_id, QuorumFailed(/*write=*/false, op->ok, op->needed,
                                                         op->targets.size(), op->last_error)));
  }
}

void Coordinator::AnswerGet(const std::shared_ptr<GetOp>& op, bool found,
                            std::vector<std::string> values, std::string context) {
  NoteLatency(op->started.at);
  Reply r;
  r.type = MsgType::kGetReply;
  r.id = op->client_id;
  r.found = found;
  r.values = std::move(values);
  r.context = std::move(context);
  ctx_.Answer(op->started, op->identity, r);
}

std::string Coordinator::ReadContext(const GetOp& op) const {
  return EncodeContext(op.merged.Context(), NextWriteCoordinator(op));
}

// A resolved value being written back, and the reads waiting for it.
struct Coordinator::WriteBack {
  std::string key;
  CausalContext covers;  // the read's context: every version it resolved
  Resolver::Resolved result;
  std::vector<std::shared_ptr<GetOp>> reads;
  bool answered = false;
};

// A read that found two versions or more of a key that has a resolver
// (DESIGN.md 3.8): the resolver makes one of them, which is written back
// with the read's context (a put, or a delete when it resolved to a
// tombstone), so that it supersedes every version read, and the read is
// answered with it and the write's context once the write is answered. A
// read of the same versions meanwhile waits for that write-back instead of
// making another (two write-backs of one value would be two siblings). A
// write-back that fails, or is not answered within the request timeout,
// still answers the resolved value, with the read's context. A resolver
// that fails, or whose value is over --max-value-bytes, leaves the read's
// answer as it was (the siblings); that is logged and counted. False when
// the read is left as it was.
bool Coordinator::Resolve(const std::shared_ptr<GetOp>& op) {
  const Resolver* resolver = ctx_.resolvers ? ctx_.resolvers->For(op->key) : nullptr;
  if (resolver == nullptr || op->merged.versions().size() < 2) return false;
  if (auto it = writing_back_.find(op->key); it != writing_back_.end()) {
    const CausalContext& covers = it->second->covers;
    if (std::all_of(op->merged.versions().begin(), op->merged.versions().end(),
                    [&](const Version& v) { return v.CoveredBy(covers); })) {
      it->second->reads.push_back(op);
      return true;
    }
  }
  // The node a version's write came from: its actor name without the
  // incarnation suffix (node/incarnation.h).
  std::vector<Resolver::Sibling> siblings;
  siblings.reserve(op->merged.versions().size());
  for (const Version& v : op->merged.versions()) {
    std::string_view node = v.dot_node;
    node = node.substr(0, std::min(node.size(), node.rfind('~')));
    siblings.push_back({v.value, v.tombstone, v.timestamp_ms, node});
  }
  auto resolved = resolver->Resolve(op->key, siblings);
  if (resolved.ok() && resolved->value.size() > ctx_.options.max_value_bytes) {
    resolved = Status::InvalidArgument("resolver '" + resolver->name() + "': its value of " +
                                       std::to_string(resolved->value.size()) +
                                       " bytes exceeds --max-value-bytes " +
                                       std::to_string(ctx_.options.max_value_bytes));
  }
  if (!resolved.ok()) {
    // Once per power of two: a resolver failing on every read must not
    // drown the log.
    const uint64_t n = ++stats_.resolver_errors;
    if ((n & (n - 1)) == 0) {
      log::Warn(resolved.status().message() + " (key of " + std::to_string(op->key.size()) +
                " bytes, " + std::to_string(siblings.size()) +
                " siblings left unresolved; failure " + std::to_string(n) + ")");
    }
    return false;
  }
  ++stats_.resolved;
  auto wb = std::make_shared<WriteBack>();
  wb->key = op->key;
  wb->covers = op->merged.Context();
  wb->result = std::move(resolved).value();
  wb->reads.push_back(op);
  writing_back_[op->key] = wb;
  const std::string read_context = ReadContext(*op);
  std::string identity = ctx_.LocalCall([this, wb](const Reply& rep) {
    const bool written = rep.type == MsgType::kPutReply;
    if (!written) ++stats_.write_back_failures;
    FinishWriteBack(wb, written ? rep.context : std::string());
  });
  // Not answered in time (the write waits for its replicas and stand-ins):
  // the reads get the value with their own contexts.
  ctx_.loop.After(ctx_.RequestTimeout(), [this, wb] { FinishWriteBack(wb, std::string()); });
  RequestView put;
  put.type = wb->result.tombstone ? MsgType::kDel : MsgType::kPut;
  put.key = wb->key;
  put.value = wb->result.value;
  put.context = read_context;
  CoordinatePut(std::move(identity), put);
  return true;
}

// Answers the reads waiting for a write-back: with its context when it was
// written, else each with its own read's.
void Coordinator::FinishWriteBack(const std::shared_ptr<WriteBack>& wb,
                                  const std::string& written_context) {
  if (wb->answered) return;
  wb->answered = true;
  if (auto it = writing_back_.find(wb->key); it != writing_back_.end() && it->second == wb) {
    writing_back_.erase(it);
  }
  for (const auto& op : wb->reads) {
    std::vector<std::string> values;
    if (!wb->result.tombstone) values.push_back(wb->result.value);
    AnswerGet(op, !wb->result.tombstone, std::move(values),
              written_context.empty() ? ReadContext(*op) : written_context);
  }
  wb->reads.clear();
}

// The replica that should coordinate a write following this read (paper
// 6.4): the first to answer, if its copy already held everything the read
// returned, else a replica (in preference-list order) whose copy did, else
// the first to answer.
const std::string& Coordinator::NextWriteCoordinator(const GetOp& op) const {
  // Only a replica coordinates a write: with none answering (every counted
  // answer a stand-in's), the first of the preference list.
  if (op.fastest == SIZE_MAX) return op.targets[0];
  if (op.ok <= 1) return op.targets[op.fastest];
  const uint64_t want = op.merged.Digest();
  if (op.answers[op.fastest]->Digest() != want) {
    for (size_t i = 0; i < op.replicas; ++i) {
      if (op.answers[i] && op.answers[i]->Digest() == want) return op.targets[i];
    }
  }
  return op.targets[op.fastest];
}

// After every node asked answered or timed out: replicas whose versions
// were stale or missing get the reconciled set (paper 4.5), without waiting.
// Stand-ins get nothing: they keep hints only until the owners are back.
void Coordinator::ReadRepair(const std::shared_ptr<GetOp>& op) {
  if (op->merged.empty()) return;
  std::string encoded;
  for (size_t i = 0; i < op->replicas; ++i) {
    if (!op->answers[i]) continue;  // failed: hinted handoff and anti-entropy's job
    SiblingSet probe = *op->answers[i];
    if (!probe.Merge(op->merged)) continue;  // already has everything
    ++stats_.read_repairs;
    if (op->targets[i] == ctx_.options.node_id) {
      ctx_.loop.OnEngine<Status>(
          [this, key = op->key, merged = op->merged] {
            return ctx_.store.Merge(key, merged).status();
          },
          [](Status s) {
            if (!s.ok()) log::Warn("local read repair failed: " + s.ToString());
          });
      continue;
    }
    if (encoded.empty()) encoded = op->merged.Encode();
    RequestView rp;
    rp.type = MsgType::kReplicaPut;
    rp.key = op->key;
    rp.payload = encoded;
    rp.ring_version = ctx_.cluster.ring().version();
    ctx_.loop.Call(ctx_.EndpointOf(op->targets[i]), rp, ctx_.RequestTimeout(),
                   [target = op->targets[i]](Result<Reply> rep) {
                     if (!rep.ok() || !rep->ToStatus().ok()) {
                       log::Debug("read repair of " + target + " failed");
                     }
                   });
  }
}

// ---- put and delete

void Coordinator::CoordinatePut(std::string identity, const RequestView& req) {
  // MD5 of the key, once per put: the preference lists and the engine's
  // index both come from it.
  const RequestStart started = ctx_.Started(req);
  const uint64_t key_hash = KeyHash(req.key);
  auto targets = ctx_.PreferenceListForHash(key_hash);
  if (targets.empty()) return ctx_.Answer(started, identity, Reply::Error(req.id, NoRing()));
  const bool replica =
      std::find(targets.begin(), targets.end(), ctx_.options.node_id) != targets.end();
  if (!replica) {
    if (req.flags & wire::kFlagForwarded) {
      // Forwarded by a node whose ring is older than ours: let it try the
      // next replica rather than leave a copy where it no longer belongs.
      return ctx_.Answer(started, identity,
                         Reply::Error(req.id, NotAReplica(ctx_.cluster.ring().version())));
    }
    // Only a replica coordinates a write (it must add its own dot). Those
    // this node takes for down are tried last.
    std::stable_partition(targets.begin(), targets.end(),
                          [this](const std::string& t) { return !ctx_.IsDownNode(t); });
    // The replica that answered the read behind this write fastest (or
    // coordinated the write before) goes first: it has the versions the
    // writer saw (paper 6.4, read-your-writes).
    std::string hint;
    if (DecodeContext(req.context, &hint).ok() && !hint.empty() && !ctx_.IsDownNode(hint)) {
      if (auto it = std::find(targets.begin(), targets.end(), hint); it != targets.end()) {
        std::rotate(targets.begin(), it, it + 1);
      }
    }
    return Forward(started, std::move(identity), req, std::move(targets));
  }
  Result<CausalContext> context = DecodeContext(req.context);
  if (!context.ok()) return ctx_.Answer(started, identity, Reply::Error(req.id, context.status()));

  auto op = NewPutOp(started, std::move(identity), req, key_hash, targets.size());
  const bool tombstone = req.type == MsgType::kDel;
  // A delete without a context removes what the key holds now; a put
  // without one is a write concurrent with everything (docs/design.md).
  const bool supersede = (tombstone && req.context.empty()) || (req.flags & wire::kFlagOverwrite);
  // A forwarded write may carry its dot (Forward): then every replica that
  // coordinates it makes the same version.
  std::optional<Dot> dot;
  if (!req.dot_node.empty()) {
    dot = Dot{std::string(req.dot_node), req.dot_counter, req.dot_timestamp_ms};
  }
  auto write = [this, key = std::string(req.key), key_hash, ctx = std::move(context).value(),
                value = tombstone ? std::string() : std::string(req.value), tombstone, supersede,
                dot = std::move(dot)]() mutable {
    return ctx_.store.Write(key, key_hash, ctx, ctx_.actor, std::move(value), tombstone, supersede,
                            ctx_.loop.WallMillis(), dot ? &*dot : nullptr);
  };
  ctx_.loop.OnEngine<Result<LocalStore::Written>>(
      std::move(write),
      [this, op, targets = std::move(targets)](Result<LocalStore::Written> written) {
        if (!written.ok()) {
          op->replied = true;
          return ctx_.Answer(op->started, op->identity,
                             Reply::Error(op->client_id, written.status()));
        }
        op->context = EncodeContext(written->history, ctx_.options.node_id);
        // The set as stored here goes to every replica: encoded once.
        op->encoded = std::move(written->encoded);
        op->written.push_back(ctx_.options.node_id);
        op->in_flight = 1;  // the coordinator's own write, acknowledged below
        for (const std::string& t : targets) {
          if (t != ctx_.options.node_id) op->written.push_back(t);
        }
        std::chrono::milliseconds deadline{0};
        for (const std::string& t : targets) {
          if (t == ctx_.options.node_id) continue;
          // A replica this node takes for down gets no request: its copy
          // goes to a stand-in with a hint at once (paper 4.6).
          if (ctx_.IsDownNode(t)) {
            HandOff(op, t);
          } else {
            op->waiting.push_back(t);
            deadline = std::max(deadline, DeadlineFor(t, PeerLatency::kHop));
            SendReplicaPut(op, t, std::string());
          }
        }
        OnPutAck(op, Status::OK());
        // Replicas that stay silent past their deadline are treated as down
        // for this write (a late answer still counts).
        if (!op->replied && !op->waiting.empty()) {
          op->deadline = ctx_.loop.After(deadline, [this, op] { OnPutDeadline(op); });
        }
      });
}

std::chrono::milliseconds Coordinator::DeadlineFor(const std::string& node,
                                                   PeerLatency::Kind kind) const {
  // At most a quarter of the request timeout: a replica that misses it
  // leaves the request time for a stand-in, or for the next replica.
  const auto cap = std::max(kDeadlineFloor, ctx_.RequestTimeout() / 4);
  return latency_.Deadline(node, kind, kDeadlineFloor, cap);
}

void Coordinator::OnPutDeadline(const std::shared_ptr<PutOp>& op) {
  op->deadline = 0;
  if (op->replied) return;
  const std::vector<std::string> silent = op->waiting;  // HandOff may not touch it, but copy
  for (const std::string& t : silent) {
    const size_t before = stats_.hints_sent;
    HandOff(op, t);
    if (stats_.hints_sent != before) ++stats_.hints_sent_early;
  }
}

void Coordinator::HandOff(const std::shared_ptr<PutOp>& op, const std::string& owner) {
  if (std::find(op->handed.begin(), op->handed.end(), owner) != op->handed.end()) return;
  op->handed.push_back(owner);
  SendHinted(op, owner);
}

std::shared_ptr<Coordinator::PutOp> Coordinator::NewPutOp(const RequestStart& started,
                                                          std::string identity,
                                                          const RequestView& req, uint64_t key_hash,
                                                          size_t replicas) {
  auto op = std::make_shared<PutOp>();
  op->started = started;
  op->identity = std::move(identity);
  op->client_id = req.id;
  const size_t w = req.quorum ? req.quorum : ctx_.options.write_quorum;
  op->needed = std::min(w, replicas);
  op->key = req.key;
  op->ring_version = ctx_.cluster.ring().version();
  const Ring& ring = ctx_.cluster.ring();
  op->extended = ring.ExtendedPreferenceList(PartitionOf(key_hash, ring.partitions()));
  return op;
}

void Coordinator::SendReplicaPut(const std::shared_ptr<PutOp>& op, const std::string& target,
                                 const std::string& hint) {
  RequestView rp;  // views of op's bytes, encoded by Call at once
  rp.type = MsgType::kReplicaPut;
  rp.key = op->key;
  rp.payload = op->encoded;
  rp.ring_version = op->ring_version;
  rp.node_id = hint;
  ++op->in_flight;
  if (!hint.empty()) ++stats_.hints_sent;
  ctx_.loop.Call(ctx_.EndpointOf(target), rp, ctx_.RequestTimeout(),
                 [this, op, target, hint, sent = ctx_.loop.Now()](Result<Reply> rep) {
                   if (rep.ok()) latency_.Note(target, PeerLatency::kHop, ctx_.loop.Now() - sent);
                   if (hint.empty()) std::erase(op->waiting, target);
                   Status s = rep.ok() ? rep->ToStatus() : rep.status();
                   if (!s.ok()) {
                     log::Debug("replica write to " + target + " failed: " + s.ToString());
                     // No answer, or an engine failure: the owner's copy goes
                     // to a stand-in (before this failure is counted, so the
                     // quorum is not given up meanwhile). A replica that
                     // refused (it is none in its newer ring, or the set was
                     // bad) gets no stand-in.
                     const bool refused = rep.ok() && (s.code() == Status::Code::kUnavailable ||
                                                       s.code() == Status::Code::kInvalidArgument);
                     if (!refused) {
                       // A replica's copy goes to a stand-in once (its
                       // deadline may have sent it already); a stand-in's
                       // failure passes the copy to the next.
                       if (hint.empty()) {
                         HandOff(op, target);
                       } else {
                         SendHinted(op, hint);
                       }
                     }
                   }
                   OnPutAck(op, s);
                 });
}

bool Coordinator::SendHinted(const std::shared_ptr<PutOp>& op, const std::string& owner) {
  for (const std::string& n : op->extended) {
    if (std::find(op->written.begin(), op->written.end(), n) != op->written.end()) continue;
    if (ctx_.IsDownNode(n)) continue;
    op->written.push_back(n);
    SendReplicaPut(op, n, owner);
    return true;
  }
  log::Debug("no healthy stand-in for " + owner + ": its copy is left to anti-entropy");
  return false;
}

void Coordinator::NoteLatency(Clock::time_point start) {
  if (!hooks_.on_latency) return;
  hooks_.on_latency(std::chrono::duration<double, std::milli>(ctx_.loop.Now() - start).count());
}

void Coordinator::OnPutAck(const std::shared_ptr<PutOp>& op, const Status& s) {
  --op->in_flight;
  if (s.ok()) {
    ++op->acks;
  } else {
    op->last_error = s.ToString();
  }
  if (op->replied) return;
#ifdef DYNAMO_MUTATION_EARLY_ACK
  // A deliberate bug, built only for the simulator's tests (tests/sim).
  if (op->acks + 1 >= op->needed) {
#else
  if (op->acks >= op->needed) {
#endif
    op->replied = true;
    if (op->deadline != 0) ctx_.loop.Cancel(std::exchange(op->deadline, 0));
    NoteLatency(op->started.at);
    Reply r;
    r.type = MsgType::kPutReply;
    r.id = op->client_id;
    r.context = op->context;
    ctx_.Answer(op->started, op->identity, r);
  } else if (op->acks + op->in_flight < op->needed) {
    op->replied = true;
    ctx_.Answer(op->started, op->identity,
                Reply::Error(op->client_id, QuorumFailed(/*write=*/true, op->acks, op->needed,
                                                         op->written.size(), op->last_error)));
  }
}

void Coordinator::Forward(const RequestStart& started, std::string identity, const RequestView& req,
                          std::vector<std::string> targets) {
  auto op = std::make_shared<ForwardOp>();
  op->started = started;
  op->identity = std::move(identity);
  op->req = Request(req);
  op->req.flags |= wire::kFlagForwarded;
  // The new version's dot is fixed here, so that the replicas this write
  // may go to in turn all make the same version (never two siblings from
  // one write). A write that supersedes what its coordinator holds (a
  // delete without a context, an overwrite) makes a version that depends on
  // that coordinator: it takes the replica's own dot and is never sent to a
  // second replica once the first may have applied it.
  const bool supersede =
      (req.type == MsgType::kDel && req.context.empty()) || (req.flags & wire::kFlagOverwrite);
  if (!supersede) {
    Result<CausalContext> context = DecodeContext(req.context);
    if (!context.ok()) {
      return ctx_.Answer(op->started, op->identity, Reply::Error(req.id, context.status()));
    }
    Dot dot = forward_dots_.Next(ctx_.actor.Get(), op->req.key, *context, ctx_.loop.WallMillis());
    op->req.dot_node = std::move(dot.node);
    op->req.dot_counter = dot.counter;
    op->req.dot_timestamp_ms = dot.timestamp_ms;
  }
  op->targets = std::move(targets);
  op->answered.assign(op->targets.size(), false);
  op->timers.assign(op->targets.size(), 0);
  ForwardNext(op);
}

void Coordinator::ForwardNext(const std::shared_ptr<ForwardOp>& op) {
  if (op->replied) return;
  // Replicas taken for down are not waited for (they were sorted last).
  while (op->next < op->targets.size() && ctx_.IsDownNode(op->targets[op->next])) ++op->next;
  if (op->next >= op->targets.size()) {
    if (op->outstanding == 0) FinishForward(op);
    return;  // else the last answer finishes it
  }
  const size_t attempt = op->next++;
  const std::string& target = op->targets[attempt];
  ++op->outstanding;
  ++stats_.forwarded;
  if (attempt > 0) ++stats_.forward_fallbacks;
  // A replica coordinating may wait a request timeout for its replicas and
  // another for a stand-in: the answer may take that long.
  ctx_.loop.Call(ctx_.EndpointOf(target), op->req, ctx_.RequestTimeout() * 3,
                 [this, op, attempt, sent = ctx_.loop.Now()](Result<Reply> rep) {
                   if (rep.ok()) {
                     latency_.Note(op->targets[attempt], PeerLatency::kForward,
                                   ctx_.loop.Now() - sent);
                   }
                   OnForwardAnswer(op, attempt, std::move(rep));
                 });
  if (op->req.dot_node.empty()) return;
  // Silent past its deadline: the next replica coordinates the same
  // version, and this one's answer still counts if it comes first.
  op->timers[attempt] =
      ctx_.loop.After(DeadlineFor(target, PeerLatency::kForward), [this, op, attempt] {
        op->timers[attempt] = 0;
        if (!op->answered[attempt]) ForwardNext(op);
      });
}

void Coordinator::OnForwardAnswer(const std::shared_ptr<ForwardOp>& op, size_t attempt,
                                  Result<Reply> rep) {
  --op->outstanding;
  op->answered[attempt] = true;
  if (op->timers[attempt] != 0) ctx_.loop.Cancel(std::exchange(op->timers[attempt], 0));
  if (op->replied) return;
  const bool fixed_dot = !op->req.dot_node.empty();
  if (!rep.ok()) {
    if (rep.status().code() == Status::Code::kTimeout) {
      if (!fixed_dot) {
        // The replica may have coordinated it and its answer be late or
        // lost: a second coordinator would make the one write two siblings
        // (found by the simulator, docs/testing.md). The client learns the
        // outcome is unknown.
        op->replied = true;
        return ctx_.Answer(
            op->started, op->identity,
            Reply::Error(op->req.id, Status::Timeout("replica " + op->targets[attempt] +
                                                     " did not answer this forwarded write in "
                                                     "time; it may have been applied")));
      }
      op->unknown = true;
    }
    return ForwardNext(op);  // not sent, or silent: the next replica
  }
  const Status s = rep->ToStatus();
  if (s.ok()) {
    op->replied = true;
    for (Loop::TimerId& t : op->timers) {
      if (t != 0) ctx_.loop.Cancel(std::exchange(t, 0));
    }
    rep->id = op->req.id;  // the client's id, not ours
    return ctx_.Answer(op->started, op->identity, *rep);
  }
  if (s.code() == Status::Code::kUnavailable && s.message().rfind(kNotAReplica, 0) == 0) {
    op->refused = true;  // no replica in its newer ring: the next one
    return ForwardNext(op);
  }
  // Another failure: a quorum that replica could not reach after writing
  // its own copy, say. With the dot fixed the next replica may do better
  // (the same version); otherwise it is the answer.
  rep->id = op->req.id;
  if (!fixed_dot || s.code() == Status::Code::kInvalidArgument ||
      s.code() == Status::Code::kNotAuthorized) {
    op->replied = true;
    return ctx_.Answer(op->started, op->identity, *rep);
  }
  op->answer = std::move(rep).value();
  ForwardNext(op);
}

void Coordinator::FinishForward(const std::shared_ptr<ForwardOp>& op) {
  op->replied = true;
  if (op->answer) return ctx_.Answer(op->started, op->identity, *op->answer);
  if (op->refused) {
    // Some replica is none in its newer ring: this node's ring is out of
    // date, and a stand-in write would name the wrong owners.
    return ctx_.Answer(
        op->started, op->identity,
        Reply::Error(op->req.id, Status::Unavailable("the key's replicas changed; this node's ring "
                                                     "is out of date (retry)")));
  }
  // No replica answered (all down, unreachable, or silent with the dot
  // fixed): stand in for them (sloppy quorum), with the same version.
  CoordinateAsStandIn(op->started, std::move(op->identity), op->req, std::move(op->targets));
}

// A write no replica of the key took (all down or cut off): this node
// coordinates it anyway, keeping the new version as a hint for the first
// replica and sending hinted copies for the others to healthy nodes of the
// extended list; W counts them all (paper 4.6, "always writeable").
void Coordinator::CoordinateAsStandIn(const RequestStart& started, std::string identity,
                                      const RequestView& req, std::vector<std::string> targets) {
  Result<CausalContext> context = DecodeContext(req.context);
  if (!context.ok()) return ctx_.Answer(started, identity, Reply::Error(req.id, context.status()));
  auto op = NewPutOp(started, std::move(identity), req, KeyHash(req.key), targets.size());
  op->written.push_back(ctx_.options.node_id);
  op->written.insert(op->written.end(), targets.begin(), targets.end());
  const bool tombstone = req.type == MsgType::kDel;
  if (tombstone && req.context.empty()) {
    // Such a delete removes what the replicas hold now, which a stand-in
    // cannot see: it would delete nothing.
    return ctx_.Answer(
        op->started, op->identity,
        Reply::Error(req.id,
                     Status::Unavailable("no replica of the key is reachable, and a delete "
                                         "without a context needs one (pass the context of a "
                                         "get)")));
  }
  // This node keeps no copy of the key, so it cannot see its own earlier
  // dots: it takes counters from a sequence it never reuses, under a name
  // of its own ("<actor>+h"), apart from the dots it makes as a replica,
  // whose counters follow what the key holds and could reach the same
  // numbers (found by the simulator, docs/testing.md).
  // A forwarded write's dot was fixed already (Forward): the same version
  // whichever of the replicas and this node made it.
  std::optional<Dot> dot;
  if (!req.dot_node.empty())
    dot = Dot{std::string(req.dot_node), req.dot_counter, req.dot_timestamp_ms};
  const uint64_t counter = dot ? 0 : ++standin_counter_;
  struct Written {
    Status status;
    std::string encoded;
    CausalContext history;
  };
  // The hint store syncs every add: worker work, whatever the engine.
  auto write = [this, op, owner = targets.front(), ctx = std::move(context).value(),
                value = tombstone ? std::string() : std::string(req.value), tombstone, counter,
                dot = std::move(dot)]() mutable {
    Written w;
    SiblingSet set = ctx_.hints.ForKey(op->key);
    if (dot) {
      w.history =
          set.ApplyAt(ctx, *dot, std::move(value), tombstone, ctx_.options.max_clock_entries);
      w.status = ctx_.hints.Add(owner, op->key, set);
      w.encoded = set.Encode();
      return w;
    }
    const Version& v =
        set.Apply(ctx, ctx_.actor.Get() + "+h", ctx_.loop.WallMillis(), std::move(value), tombstone,
                  ctx_.options.max_clock_entries, counter);
    w.history = v.History();
    // The context may have carried a higher counter of ours: never hand
    // out the one just used again.
    uint64_t seen = standin_counter_.load();
    while (seen < v.dot_counter && !standin_counter_.compare_exchange_weak(seen, v.dot_counter)) {
    }
    w.status = ctx_.hints.Add(owner, op->key, set);
    w.encoded = set.Encode();
    return w;
  };
  ctx_.loop.OnWorker<Written>(std::move(write), [this, op](Written w) {
    if (!w.status.ok()) {
      op->replied = true;
      return ctx_.Answer(op->started, op->identity, Reply::Error(op->client_id, w.status));
    }
    if (hooks_.on_hint_stored) hooks_.on_hint_stored();  // status shows the hint at once
    log::Debug("no replica of a key took its write: standing in for them");
    op->context = EncodeContext(w.history);
    op->encoded = std::move(w.encoded);
    op->in_flight = 1;
    // written: self, then the replicas; the first is covered here. A copy:
    // SendHinted appends to op->written.
    const std::vector<std::string> targets_left = op->written;
    for (size_t i = 2; i < targets_left.size(); ++i) SendHinted(op, targets_left[i]);
    OnPutAck(op, Status::OK());
  });
}

// ---- requests from peers and local reads

void Coordinator::ServeReplicaGet(std::string identity, const RequestView& req) {
  const RequestStart started = ctx_.Started(req);
  if (!req.node_id.empty()) {
    // Asked as a stand-in for that owner (a sloppy read): the versions of
    // the key this node holds as hints, for any owner.
    return ctx_.loop.OnWorker<std::string>(
        [this, key = std::string(req.key)] {
          SiblingSet set = ctx_.hints.ForKey(key);
          return set.empty() ? std::string() : set.Encode();
        },
        [this, started, identity = std::move(identity), id = req.id](std::string bytes) {
          Reply r;
          r.type = MsgType::kReplicaGetReply;
          r.id = id;
          r.payload = std::move(bytes);
          ctx_.Answer(started, identity, r);
        });
  }
  // The stored bytes are the encoded set: send them as they are.
  ctx_.loop.OnEngine<Result<std::string>>(
      [this, key = std::string(req.key)] { return ctx_.store.backend().Get(key); },
      [this, started, identity = std::move(identity), id = req.id](Result<std::string> bytes) {
        if (!bytes.ok() && !bytes.status().IsNotFound()) {
          return ctx_.Answer(started, identity, Reply::Error(id, bytes.status()));
        }
        Reply r;
        r.type = MsgType::kReplicaGetReply;
        r.id = id;
        if (bytes.ok()) r.payload = std::move(bytes).value();
        ctx_.Answer(started, identity, r);
      });
}

void Coordinator::ServeReplicaPut(std::string identity, const RequestView& req) {
  const RequestStart started = ctx_.Started(req);
  // A coordinator on an older ring may still count this node as a replica
  // of a partition it already handed off; storing the copy would leave it
  // here for good. Refuse: the coordinator's other replicas carry the write.
  const Ring& ring = ctx_.cluster.ring();
  if (req.ring_version != 0 && req.ring_version < ring.version()) {
    const auto pref = ctx_.PreferenceListFor(req.key);
    if (std::find(pref.begin(), pref.end(), ctx_.options.node_id) == pref.end()) {
      return ctx_.Answer(started, identity, Reply::Error(req.id, NotAReplica(ring.version())));
    }
  }
  auto incoming = SiblingSet::Decode(req.payload);
  if (!incoming.ok()) {
    return ctx_.Answer(started, identity,
                       Reply::Error(req.id, Status::InvalidArgument(incoming.status().message())));
  }
  ctx_.loop.OnEngine<Status>(
      [this, key = std::string(req.key), set = std::move(incoming).value()] {
        return ctx_.store.Merge(key, set).status();
      },
      [this, started, identity = std::move(identity), id = req.id](Status s) {
        ctx_.Answer(started, identity, s.ok() ? Reply::Ack(id) : Reply::Error(id, s));
      });
}

void Coordinator::ServeLocalGet(std::string identity, const RequestView& req) {
  const RequestStart started = ctx_.Started(req);
  ctx_.loop.OnEngine<Result<SiblingSet>>(
      [this, key = std::string(req.key)] { return ctx_.store.Read(key); },
      [this, started, identity = std::move(identity), id = req.id](Result<SiblingSet> set) {
        if (!set.ok()) return ctx_.Answer(started, identity, Reply::Error(id, set.status()));
        Reply r;
        r.type = MsgType::kGetReply;
        r.id = id;
        r.found = !set->IsDeleted();
        for (std::string_view v : set->LiveValues()) r.values.emplace_back(v);
        if (!set->empty()) r.context = EncodeContext(set->Context());
        ctx_.Answer(started, identity, r);
      });
}

}  // namespace dynamo
