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
#include "node/peers.h"
#include "util/log.h"

namespace dynamo {

using wire::MsgType;
using wire::Reply;
using wire::Request;

namespace {
constexpr size_t kHintBatchKeys = 256;
constexpr size_t kHintBatchBytes = 1u << 20;
using Delivered = std::vector<std::pair<std::string, uint64_t>>;
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
  workers_->Submit([this, identity = std::move(identity), id = req.id, owner = req.node_id,
                    key = std::move(req.key), set = std::move(incoming).value()]() mutable {
    Status s = hints_->Add(owner, key, set);
    Post([this, identity = std::move(identity), id, s] {
      if (s.ok()) {
        ++hints_stored_;
      } else {
        log::Warn("hinted write refused: " + s.ToString());
      }
      SendReply(identity, s.ok() ? Reply::Ack(id) : Reply::Error(id, s));
    });
  });
}

void Node::HandoffTick() {
  if (cluster_.ring().empty()) return;
  for (const auto& [target, count] : hints_->PendingByTarget()) {
    if (handoff_busy_.count(target)) continue;
    const Member* m = cluster_.Find(target);
    if (m == nullptr || !cluster_.ring().Contains(target) || m->state == MemberState::kRemoved) {
      RerouteHints(target);
      continue;
    }
    if (peers_->IsDown(m->endpoint)) continue;  // probes tell when it is back
    DeliverHints(target);
  }
}

void Node::DeliverHints(const std::string& target) {
  std::vector<HintStore::Hint> hints = hints_->Peek(target, kHintBatchKeys, kHintBatchBytes);
  if (hints.empty()) return;
  Request batch;
  batch.type = MsgType::kTransfer;
  auto delivered = std::make_shared<Delivered>();
  for (auto& h : hints) {
    delivered->emplace_back(h.key, h.seq);
    batch.batch.emplace_back(std::move(h.key), std::move(h.encoded));
  }
  handoff_busy_.insert(target);
  peers_->Call(EndpointOf(target), std::move(batch), RequestTimeout() * 5,
               [this, target, delivered](Result<Reply> rep) {
                 Status s = rep.ok() ? rep->ToStatus() : rep.status();
                 if (!s.ok()) {
                   log::Debug("hint delivery to " + target + " failed: " + s.ToString());
                   handoff_busy_.erase(target);
                   return;
                 }
                 // Deleted only now that the owner has them (durably).
                 workers_->Submit([this, target, delivered] {
                   Result<size_t> removed = hints_->Remove(target, *delivered);
                   Post([this, target, removed]() mutable {
                     handoff_busy_.erase(target);
                     if (!removed.ok()) {
                       log::Warn("cannot delete delivered hints: " + removed.status().ToString());
                       return;
                     }
                     hints_delivered_ += *removed;
                     log::Debug("delivered " + std::to_string(*removed) + " hints to " + target);
                     // More waiting: go on without waiting for the next tick.
                     if (hints_->PendingByTarget().count(target)) DeliverHints(target);
                   });
                 });
               });
}

void Node::RerouteHints(const std::string& target) {
  std::vector<HintStore::Hint> hints = hints_->Peek(target, kHintBatchKeys, kHintBatchBytes);
  if (hints.empty()) return;
  handoff_busy_.insert(target);
  struct Pending {
    size_t outstanding = 0;
    Delivered done;
    bool failed_any = false;
  };
  auto pending = std::make_shared<Pending>();
  auto finish = [this, target, pending] {
    if (--pending->outstanding > 0) return;
    workers_->Submit([this, target, pending] {
      Result<size_t> removed = hints_->Remove(target, pending->done);
      Post([this, target, removed]() mutable {
        handoff_busy_.erase(target);
        if (removed.ok()) {
          hints_delivered_ += *removed;
          log::Info("hints for " + target + ", no longer in the ring: " + std::to_string(*removed) +
                    " handed to the keys' replicas");
        }
      });
    });
  };
  pending->outstanding = 1;  // released at the end of this function
  for (auto& h : hints) {
    const auto pref = PreferenceListFor(h.key);
    auto left = std::make_shared<size_t>(pref.size());
    auto ok = std::make_shared<bool>(true);
    ++pending->outstanding;
    auto one_done = [this, pending, left, ok, key = h.key, seq = h.seq, finish](Status s) {
      if (!s.ok()) *ok = false;
      if (--*left > 0) return;
      if (*ok) pending->done.emplace_back(key, seq);
      finish();
    };
    auto set = SiblingSet::Decode(h.encoded);
    if (!set.ok() || pref.empty()) {
      *left = 1;
      one_done(set.ok() ? Status::Unavailable("no ring") : set.status());
      continue;
    }
    for (const std::string& n : pref) {
      if (n == options_.node_id) {
        OnEngine<Status>([this, key = h.key, s = *set] { return store_->Merge(key, s).status(); },
                         one_done);
        continue;
      }
      Request rp;
      rp.type = MsgType::kReplicaPut;
      rp.key = h.key;
      rp.payload = h.encoded;
      rp.ring_version = cluster_.ring().version();
      peers_->Call(EndpointOf(n), std::move(rp), RequestTimeout(), [one_done](Result<Reply> rep) {
        one_done(rep.ok() ? rep->ToStatus() : rep.status());
      });
    }
  }
  finish();
}

}  // namespace dynamo
