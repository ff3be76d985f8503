// Hinted handoff (paper 4.6): a node standing in for a down replica keeps
// the write in its hint store (durable, apart from its own data) and hands
// it to the owner once the owner answers again, deleting it only after the
// owner acknowledged. Hints for a node that left the ring go to the key's
// current replicas instead.
#include <algorithm>

#include "dynamo/key_hash.h"
#include "handoff/hint_store.h"
#include "node/local_store.h"
#include "node/node_internal.h"
#include "util/log.h"

namespace dynamo {

using wire::MsgType;
using wire::Reply;
using wire::Request;

namespace {
constexpr size_t kHintBatchKeys = 256;
constexpr size_t kHintBatchBytes = 1u << 20;

}  // namespace

void Node::ServeHintedPut(std::string identity, Request req) {
  auto incoming = SiblingSet::Decode(req.payload);
  if (!incoming.ok()) {
    return SendReply(identity,
                     Reply::Error(req.id, Status::InvalidArgument(incoming.status().message())));
  }
  if (req.node_id.size() > Ring::kMaxNodeName) {
    return SendReply(identity,
                     Reply::Error(req.id, Status::InvalidArgument("hint names no valid node")));
  }
  // The hint store syncs every add: worker work, whatever the engine.
  loop_->RunOnWorker([this, identity = std::move(identity), id = req.id, owner = req.node_id,
                      key = std::move(req.key), set = std::move(incoming).value()]() mutable {
    Status s = hints_->Add(owner, key, set);
    loop_->Post([this, identity = std::move(identity), id, s] {
      if (s.ok()) {
        ++hints_stored_;
        HandoffTick(/*plan=*/false);  // status shows it at once
      } else {
        log::Warn("hinted write refused: " + s.ToString());
      }
      SendReply(identity, s.ok() ? Reply::Ack(id) : Reply::Error(id, s));
    });
  });
}

// Every --handoff-interval-ms: the hint store is read on a worker (its
// appends fsync under its lock, which the loop must never wait for), then
// each owner's hints are handled on the loop.
void Node::HandoffTick(bool plan) {
  if (handoff_scan_running_) {
    snapshot_again_ = true;  // a hint was stored while the store was being read
    return;
  }
  handoff_scan_running_ = true;
  loop_->RunOnWorker([this, plan] {
    auto snapshot = std::make_shared<HintSnapshot>();
    snapshot->by_target = hints_->PendingByTarget();
    snapshot->pending = hints_->pending();
    snapshot->bytes = hints_->bytes();
    snapshot->dropped = hints_->dropped();
    loop_->Post([this, snapshot, plan] {
      handoff_scan_running_ = false;
      hint_snapshot_ = *snapshot;
      if (plan) PlanHandoff();
      if (snapshot_again_) {
        snapshot_again_ = false;
        HandoffTick(false);
      }
    });
  });
}

void Node::PlanHandoff() {
  if (cluster_.ring().empty()) return;
  // A node leaving (or gone from the ring) cannot wait for owners to come
  // back: it hands their hints to the keys' live replicas instead.
  const bool self_out = !cluster_.ring().Contains(options_.node_id);
  for (const auto& [target, count] : hint_snapshot_.by_target) {
    if (handoff_busy_.count(target)) continue;
    const Member* m = cluster_.Find(target);
    if (m == nullptr || !cluster_.ring().Contains(target) || m->state == MemberState::kRemoved) {
      ReadHints(target, /*reroute_all=*/true);
    } else if (IsDownEndpoint(m->endpoint)) {
      if (self_out) ReadHints(target, true);  // else wait: probes tell when it is back
    } else {
      ReadHints(target, false);
    }
  }
}

// Peeks a batch of target's hints on a worker, then delivers them: to the
// target the keys it still replicates, to the keys' current replicas the
// rest (or all of them, with reroute_all).
void Node::ReadHints(const std::string& target, bool reroute_all) {
  handoff_busy_.insert(target);
  loop_->RunOnWorker([this, target, reroute_all] {
    auto hints = std::make_shared<std::vector<HintStore::Hint>>(
        hints_->Peek(target, kHintBatchKeys, kHintBatchBytes));
    loop_->Post([this, target, reroute_all, hints] {
      std::vector<HintStore::Hint> own, stray;
      for (auto& h : *hints) {
        const auto pref = PreferenceListFor(h.key);
        const bool owner = std::find(pref.begin(), pref.end(), target) != pref.end();
        (owner && !reroute_all ? own : stray).push_back(std::move(h));
      }
      if (!stray.empty()) return RerouteHints(target, std::move(stray));
      if (!own.empty()) return DeliverHints(target, std::move(own));
      handoff_busy_.erase(target);
    });
  });
}

void Node::DeliverHints(const std::string& target, std::vector<HintStore::Hint> hints) {
  Request batch;
  batch.type = MsgType::kTransfer;
  auto delivered = std::make_shared<Delivered>();
  for (auto& h : hints) {
    delivered->emplace_back(h.key, h.seq);
    batch.batch.emplace_back(std::move(h.key), std::move(h.encoded));
  }
  loop_->Call(EndpointOf(target), std::move(batch), RequestTimeout() * 5,
              [this, target, delivered](Result<Reply> rep) {
                Status s = rep.ok() ? rep->ToStatus() : rep.status();
                if (!s.ok()) {
                  log::Debug("hint delivery to " + target + " failed: " + s.ToString());
                  handoff_busy_.erase(target);
                  return;
                }
                // Deleted only now that the owner has them (durably).
                ForgetHints(target, delivered, "");
              });
}

// Deletes the handed-over hints (a worker: the store fsyncs), then looks
// for more without waiting for the next tick.
void Node::ForgetHints(const std::string& target, std::shared_ptr<Delivered> done,
                       const std::string& how) {
  loop_->RunOnWorker([this, target, done, how] {
    Result<size_t> removed = hints_->Remove(target, *done);
    loop_->Post([this, target, removed, how]() mutable {
      handoff_busy_.erase(target);
      if (!removed.ok()) {
        log::Warn("cannot delete delivered hints: " + removed.status().ToString());
        return;
      }
      hints_delivered_ += *removed;
      if (!how.empty() && *removed > 0) {
        log::Info(std::to_string(*removed) + " hints for " + target + " " + how);
      }
      auto it = hint_snapshot_.by_target.find(target);
      if (it == hint_snapshot_.by_target.end()) return;
      it->second -= std::min(it->second, *removed);
      hint_snapshot_.pending -= std::min(hint_snapshot_.pending, *removed);
      if (it->second == 0) {
        hint_snapshot_.by_target.erase(it);
      } else if (*removed > 0) {
        ReadHints(target, false);  // more waiting (the split is made again)
      }
      // Else nothing of this batch could go: the next handoff tick tries
      // again, rather than reading the same batch back at once, forever.
    });
  });
}

// Hints whose owner no longer replicates the key (or is gone, or this node
// is leaving) go to the key's current replicas that answer; each hint is
// deleted once every one of them acknowledged it, and at least one did.
void Node::RerouteHints(const std::string& target, std::vector<HintStore::Hint> hints) {
  struct Pending {
    size_t outstanding = 1;  // released at the end of this function
    Delivered done;
  };
  auto pending = std::make_shared<Pending>();
  auto finish = [this, target, pending] {
    if (--pending->outstanding > 0) return;
    ForgetHints(target, std::make_shared<Delivered>(std::move(pending->done)),
                "handed to the keys' current replicas");
  };
  for (auto& h : hints) {
    std::vector<std::string> recipients;
    for (const auto& n : PreferenceListFor(h.key)) {
      if (n != target && (n == options_.node_id || !IsDownNode(n))) recipients.push_back(n);
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
      if (n == options_.node_id) {
        loop_->OnEngine<Status>(
            [this, key = h.key, s = *set] { return store_->Merge(key, s).status(); }, one_done);
        continue;
      }
      Request rp;
      rp.type = MsgType::kReplicaPut;
      rp.key = h.key;
      rp.payload = h.encoded;
      rp.ring_version = cluster_.ring().version();
      loop_->Call(EndpointOf(n), std::move(rp), RequestTimeout(), [one_done](Result<Reply> rep) {
        one_done(rep.ok() ? rep->ToStatus() : rep.status());
      });
    }
  }
  finish();
}

}  // namespace dynamo
