// Hinted handoff (paper 4.6): a node standing in for a down replica keeps
// the write in its hint store (durable, apart from its own data) and hands
// it to the owner once the owner answers again, deleting it only after the
// owner acknowledged. Hints for a node that left the ring go to the key's
// current replicas instead.
#include "node/handoff.h"

#include <algorithm>

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
constexpr size_t kHintBatchKeys = 256;
constexpr size_t kHintBatchBytes = 1u << 20;

}  // namespace

Handoff::Handoff(NodeContext& ctx) : ctx_(ctx) {}

Handoff::Snapshot Handoff::ReadSnapshot() const {
  Snapshot s;
  s.by_target = ctx_.hints.PendingByTarget();
  s.pending = ctx_.hints.pending();
  s.bytes = ctx_.hints.bytes();
  s.dropped = ctx_.hints.dropped();
  return s;
}

void Handoff::LoadSnapshot() {
  snapshot_ = ReadSnapshot();
  if (snapshot_.pending > 0) {
    log::Info(std::to_string(snapshot_.pending) + " hints waiting for delivery");
  }
}

void Handoff::Start() {
  ctx_.loop.After(std::chrono::milliseconds(0), [this] { Timer(); });
}

void Handoff::Timer() {
  Tick();
  ctx_.loop.After(std::chrono::milliseconds(ctx_.options.handoff_interval_ms), [this] { Timer(); });
}

void Handoff::OnHintStored() {
  ++stored_;
  Tick(/*plan=*/false);
}

void Handoff::ServeHintedPut(std::string identity, const RequestView& req) {
  const RequestStart started = ctx_.Started(req);
  auto incoming = SiblingSet::Decode(req.payload);
  if (!incoming.ok()) {
    return ctx_.Answer(started, identity,
                       Reply::Error(req.id, Status::InvalidArgument(incoming.status().message())));
  }
  if (req.node_id.size() > Ring::kMaxNodeName) {
    return ctx_.Answer(started, identity,
                       Reply::Error(req.id, Status::InvalidArgument("hint names no valid node")));
  }
  // The hint store syncs every add: worker work, whatever the engine.
  ctx_.loop.OnWorker<Status>(
      [this, owner = std::string(req.node_id), key = std::string(req.key),
       set = std::move(incoming).value()] { return ctx_.hints.Add(owner, key, set); },
      [this, started, identity = std::move(identity), id = req.id](Status s) {
        if (s.ok()) {
          OnHintStored();  // status shows it at once
        } else {
          log::Warn("hinted write refused: " + s.ToString());
        }
        ctx_.Answer(started, identity, s.ok() ? Reply::Ack(id) : Reply::Error(id, s));
      });
}

// Every --handoff-interval-ms: the hint store is read on a worker (its
// appends fsync under its lock, which the loop must never wait for), then
// each owner's hints are handled on the loop.
void Handoff::Tick(bool plan) {
  if (scan_running_) {
    scan_again_ = true;  // a hint was stored while the store was being read
    return;
  }
  scan_running_ = true;
  ctx_.loop.OnWorker<Snapshot>([this] { return ReadSnapshot(); },
                               [this, plan](Snapshot snapshot) {
                                 scan_running_ = false;
                                 snapshot_ = std::move(snapshot);
                                 if (plan) Plan();
                                 if (scan_again_) {
                                   scan_again_ = false;
                                   Tick(false);
                                 }
                               });
}

void Handoff::Plan() {
  if (ctx_.cluster.ring().empty()) return;
  // A node leaving (or gone from the ring) cannot wait for owners to come
  // back: it hands their hints to the keys' live replicas instead.
  const bool self_out = !ctx_.cluster.ring().Contains(ctx_.options.node_id);
  for (const auto& [target, count] : snapshot_.by_target) {
    if (busy_.count(target)) continue;
    const Member* m = ctx_.cluster.Find(target);
    if (m == nullptr || !ctx_.cluster.ring().Contains(target) ||
        m->state == MemberState::kRemoved) {
      ReadHints(target, /*reroute_all=*/true);
    } else if (ctx_.IsDownEndpoint(m->endpoint)) {
      if (self_out) ReadHints(target, true);  // else wait: probes tell when it is back
    } else {
      ReadHints(target, false);
    }
  }
}

// Peeks a batch of target's hints on a worker, then delivers them: to the
// target the keys it still replicates, to the keys' current replicas the
// rest (or all of them, with reroute_all).
void Handoff::ReadHints(const std::string& target, bool reroute_all) {
  busy_.insert(target);
  step_started_[target] = ctx_.loop.Now();
  ctx_.loop.OnWorker<std::vector<HintStore::Hint>>(
      [this, target] { return ctx_.hints.Peek(target, kHintBatchKeys, kHintBatchBytes); },
      [this, target, reroute_all](std::vector<HintStore::Hint> hints) {
        std::vector<HintStore::Hint> own, stray;
        for (auto& h : hints) {
          const auto pref = ctx_.PreferenceListFor(h.key);
          const bool owner = std::find(pref.begin(), pref.end(), target) != pref.end();
          (owner && !reroute_all ? own : stray).push_back(std::move(h));
        }
        if (!stray.empty()) return RerouteHints(target, std::move(stray));
        if (!own.empty()) return DeliverHints(target, std::move(own));
        busy_.erase(target);
      });
}

void Handoff::DeliverHints(const std::string& target, std::vector<HintStore::Hint> hints) {
  Request batch;
  batch.type = MsgType::kTransfer;
  auto delivered = std::make_shared<Delivered>();
  for (auto& h : hints) {
    delivered->emplace_back(h.key, h.seq);
    batch.batch.emplace_back(std::move(h.key), std::move(h.encoded));
  }
  ctx_.loop.Call(ctx_.EndpointOf(target), std::move(batch), ctx_.RequestTimeout() * 5,
                 [this, target, delivered](Result<Reply> rep) {
                   Status s = rep.ok() ? rep->ToStatus() : rep.status();
                   if (!s.ok()) {
                     log::Debug("hint delivery to " + target + " failed: " + s.ToString());
#ifdef DYNAMO_MUTATION_HINT_DROPPED
                     // A deliberate bug, built only for the simulator's
                     // tests (tests/sim).
                     return ForgetHints(target, delivered, "");
#endif
                     busy_.erase(target);
                     return;
                   }
                   // Deleted only now that the owner has them (durably).
                   ForgetHints(target, delivered, "");
                 });
}

// Deletes the handed-over hints (a worker: the store fsyncs), then looks
// for more without waiting for the next tick.
void Handoff::ForgetHints(const std::string& target, std::shared_ptr<Delivered> done,
                          const std::string& how) {
  ctx_.loop.OnWorker<Result<size_t>>(
      [this, target, done] { return ctx_.hints.Remove(target, *done); },
      [this, target, how](Result<size_t> removed) {
        busy_.erase(target);
        if (!removed.ok()) {
          log::Warn("cannot delete delivered hints: " + removed.status().ToString());
          return;
        }
        delivered_ += *removed;
        if (!how.empty() && *removed > 0) {
          log::Info(std::to_string(*removed) + " hints for " + target + " " + how);
        }
        auto it = snapshot_.by_target.find(target);
        if (it == snapshot_.by_target.end()) return;
        it->second -= std::min(it->second, *removed);
        snapshot_.pending -= std::min(snapshot_.pending, *removed);
        if (it->second == 0) {
          snapshot_.by_target.erase(it);
        } else if (*removed > 0) {
          Continue(target);  // more waiting (the split is made again)
        }
        // Else nothing of this batch could go: the next handoff tick tries
        // again, rather than reading the same batch back at once, forever.
      });
}

// The next batch for target, after the pause admission control asks for
// (target stays busy meanwhile: no tick starts it again).
void Handoff::Continue(const std::string& target) {
  const auto pause = ctx_.background.PauseAfter(ctx_.loop.Now() - step_started_[target]);
  if (pause.count() == 0) return ReadHints(target, false);
  busy_.insert(target);
  ctx_.loop.After(pause, [this, target] { ReadHints(target, false); });
}

// Hints whose owner no longer replicates the key (or is gone, or this node
// is leaving) go to the key's current replicas that answer; each hint is
// deleted once every one of them acknowledged it, and at least one did.
void Handoff::RerouteHints(const std::string& target, std::vector<HintStore::Hint> hints) {
  struct Pending {
    size_t outstanding = 1;  // released at the end of this function
    Delivered done;
  };
  auto pending = std::make_shared<Pending>();
  auto finish = [this, target, pending] {
    if (--pending->outstanding > 0) return;
    ForgetHints(target, std::make_shared<Delivered>(std::move(pending->done)),
                "handed on (to the keys' replicas, or as hints to a live node)");
  };
  const Ring& ring = ctx_.cluster.ring();
  for (auto& h : hints) {
    std::vector<std::string> recipients;
    const auto pref = ctx_.PreferenceListFor(h.key);
    // A target that still replicates the key (this node is leaving) is owed
    // a copy of its own: the hint goes on, as a hint for it, to another live
    // node. Handing it to the key's other replicas instead would leave one
    // copy fewer of the write than the quorum made (found by the simulator,
    // docs/testing.md: the only other copy was then lost in a crash).
    std::string hint_for;
    if (std::find(pref.begin(), pref.end(), target) != pref.end()) {
      hint_for = target;
      for (const auto& n :
           ring.ExtendedPreferenceList(PartitionOf(KeyHash(h.key), ring.partitions()))) {
        if (n != target && n != ctx_.options.node_id && !ctx_.IsDownNode(n)) {
          recipients.push_back(n);
          break;
        }
      }
    } else {
      for (const auto& n : pref) {
        if (n != target && (n == ctx_.options.node_id || !ctx_.IsDownNode(n)))
          recipients.push_back(n);
      }
    }
    auto set = SiblingSet::Decode(h.encoded);
    if (!set.ok() || recipients.empty()) continue;  // kept: tried again later
    auto left = std::make_shared<size_t>(recipients.size());
    auto ok = std::make_shared<bool>(true);
    ++pending->outstanding;
    auto one_done = [pending, left, ok, key = h.key, seq = h.seq, finish](Status s) {
      if (!s.ok()) *ok = false;
      if (--*left > 0) return;
      if (*ok) pending->done.emplace_back(key, seq);
      finish();
    };
    for (const std::string& n : recipients) {
      if (n == ctx_.options.node_id) {
        ctx_.loop.OnEngine<Status>(
            [this, key = h.key, s = *set] { return ctx_.store.Merge(key, s).status(); }, one_done);
        continue;
      }
      RequestView rp;  // views of the hint, encoded by Call at once
      rp.type = MsgType::kReplicaPut;
      rp.key = h.key;
      rp.payload = h.encoded;
      rp.ring_version = ctx_.cluster.ring().version();
      rp.node_id = hint_for;
      ctx_.loop.Call(ctx_.EndpointOf(n), rp, ctx_.RequestTimeout(), [one_done](Result<Reply> rep) {
        one_done(rep.ok() ? rep->ToStatus() : rep.status());
      });
    }
  }
  finish();
}

}  // namespace dynamo
