// Anti-entropy (paper 4.7): replicas of a partition compare Merkle trees
// top-down (root and inner nodes, then the leaves under differing inner
// nodes, then the keys under differing leaves) and exchange only the keys
// whose version sets differ, both ways, reconciled by their clocks.
//
// A background task on the loop: one partition exchange at a time, a pause
// of --anti-entropy-interval-ms between exchanges, repairs paced to
// --anti-entropy-rate keys per second, and none while the moving average
// of client request latency is above --anti-entropy-yield-ms (paper 6.5).
// The TREE payloads are in antientropy/tree_messages.h.
#include "node/anti_entropy.h"

#include <algorithm>
#include <map>
#include <set>

#include "antientropy/tree_messages.h"
#include "dynamo/key_hash.h"
#include "dynamo/log.h"
#include "dynamo/merkle.h"
#include "dynamo/msgpack_io.h"
#include "node/local_store.h"

namespace dynamo {

using wire::MsgType;
using wire::Reply;
using wire::Request;
using wire::RequestView;

AntiEntropy::AntiEntropy(NodeContext& ctx, Hooks hooks) : ctx_(ctx), hooks_(std::move(hooks)) {}

void AntiEntropy::Start() { Schedule(std::chrono::milliseconds(0)); }

void AntiEntropy::Schedule(std::chrono::milliseconds delay) {
  if (!enabled()) return;
  ctx_.loop.Cancel(timer_);
  timer_ = ctx_.loop.After(delay, [this] {
    timer_ = 0;
    Tick();
  });
}

void AntiEntropy::NoteForegroundLatency(double ms) {
  fg_latency_ms_ = fg_samples_++ == 0 && fg_latency_ms_ == 0 ? ms : 0.8 * fg_latency_ms_ + 0.2 * ms;
}

void AntiEntropy::SyncTreesWithRing() {
  const Ring& ring = ctx_.cluster.ring();
  if (ring.empty()) return;
  ctx_.store.ConfigureTrees(ring.partitions());
  for (uint32_t p = 0; p < ring.partitions(); ++p) {
    const auto pref = ring.PreferenceList(p);
    if (std::find(pref.begin(), pref.end(), ctx_.options.node_id) == pref.end())
      ctx_.store.DropTree(p);
  }
}

void AntiEntropy::Tick() {
  const Ring& ring = ctx_.cluster.ring();
  if (running_) return;
  if (ring.empty() || !ring.Contains(ctx_.options.node_id)) {
    // Not a replica of anything (joining, or out of the cluster): look again later.
    Schedule(std::chrono::milliseconds(ctx_.options.anti_entropy_interval_ms));
    return;
  }
  // No client request finished since the last look: nobody to yield to.
  if (fg_samples_ == 0) fg_latency_ms_ = 0;
  fg_samples_ = 0;
  if (fg_latency_ms_ > 0 && fg_latency_ms_ >= ctx_.options.anti_entropy_yield_ms) {
    // Clients are waiting longer than allowed: stay out of their way.
    ++stats_.yields;
    Schedule(std::chrono::milliseconds(ctx_.options.anti_entropy_interval_ms));
    return;
  }
  // The next partition replicated here with a healthy peer replica.
  const uint32_t q = ring.partitions();
  for (uint32_t tries = 0; tries < q; ++tries) {
    const uint32_t p = next_partition_;
    next_partition_ = (next_partition_ + 1) % q;
    if (next_partition_ == 0) {
      ++stats_.rounds;
      if (hooks_.on_round) hooks_.on_round();  // and once a round, stray keys go home
    }
    const auto pref = ring.PreferenceList(p);
    if (std::find(pref.begin(), pref.end(), ctx_.options.node_id) == pref.end()) continue;
    if (hooks_.rebuilding && hooks_.rebuilding(p)) continue;
    std::vector<std::string> peers;
    for (const auto& n : pref) {
      if (n != ctx_.options.node_id && !ctx_.IsDownNode(n)) peers.push_back(n);
    }
    if (peers.empty()) continue;
    auto ex = std::make_shared<Exchange>();
    ex->started = ctx_.loop.Now();
    ex->partition = p;
    ex->peer = peers[(stats_.rounds + p) % peers.size()];
    ex->endpoint = ctx_.EndpointOf(ex->peer);
    ex->ring_version = ring.version();
    running_ = true;
    ctx_.loop.OnEngineBulk<Status>([this, p] { return ctx_.store.BuildTree(p); },
                                   [this, ex](Status s) {
                                     if (!s.ok())
                                       return Done(ex, "cannot build the tree: " + s.ToString());
                                     CompareRoot(ex);
                                   });
    return;
  }
  Schedule(std::chrono::milliseconds(ctx_.options.anti_entropy_interval_ms));
}

void AntiEntropy::CompareRoot(std::shared_ptr<Exchange> ex) {
  Request req;
  req.type = MsgType::kTree;
  req.payload = EncodeTreeRequest({kOpRoot, ex->partition, ex->ring_version, {}, {}});
  ctx_.loop.Call(
      ex->endpoint, std::move(req), ctx_.RequestTimeout(), [this, ex](Result<Reply> rep) {
        Status s = rep.ok() ? rep->ToStatus() : rep.status();
        if (!s.ok()) return Done(ex, s.ToString());
        msgpack::object_handle h;
        std::vector<uint64_t> inner;
        uint64_t root = 0;
        if (!mp::Unpack(rep->payload, &h, kMaxTreeDepth) || h.get().type != msgpack::type::ARRAY ||
            h.get().via.array.size != 2 || !mp::ReadU64(h.get().via.array.ptr[0], &root) ||
            !ReadU64Array(h.get().via.array.ptr[1], &inner) || inner.size() != MerkleTree::kInner) {
          return Done(ex, "malformed root reply");
        }
        std::vector<uint32_t> differing;
        bool same = false;
        if (!ctx_.store.WithTree(ex->partition, [&](MerkleTree& t) {
              same = t.Root() == root;
              for (uint32_t i = 0; i < MerkleTree::kInner && !same; ++i) {
                if (t.Inner(i) != inner[i]) differing.push_back(i);
              }
            })) {
          return Done(ex, "tree dropped");
        }
        if (same || differing.empty()) return Done(ex, "");
        ++stats_.partitions_differing;
        CompareLeaves(ex, std::move(differing));
      });
}

void AntiEntropy::CompareLeaves(std::shared_ptr<Exchange> ex, std::vector<uint32_t> inner) {
  Request req;
  req.type = MsgType::kTree;
  req.payload = EncodeTreeRequest({kOpLeaves, ex->partition, ex->ring_version, inner, {}});
  ctx_.loop.Call(
      ex->endpoint, std::move(req), ctx_.RequestTimeout(), [this, ex, inner](Result<Reply> rep) {
        Status s = rep.ok() ? rep->ToStatus() : rep.status();
        if (!s.ok()) return Done(ex, s.ToString());
        msgpack::object_handle h;
        if (!mp::Unpack(rep->payload, &h, kMaxTreeDepth) || h.get().type != msgpack::type::ARRAY ||
            h.get().via.array.size != inner.size()) {
          return Done(ex, "malformed leaves reply");
        }
        std::vector<uint32_t> leaves;
        bool ok = true;
        ctx_.store.WithTree(ex->partition, [&](MerkleTree& t) {
          for (size_t j = 0; j < inner.size() && ok; ++j) {
            std::vector<uint64_t> theirs;
            if (!ReadU64Array(h.get().via.array.ptr[j], &theirs) ||
                theirs.size() != MerkleTree::kFanout) {
              ok = false;
              break;
            }
            for (uint32_t c = 0; c < MerkleTree::kFanout; ++c) {
              const uint32_t leaf = inner[j] * MerkleTree::kFanout + c;
              if (t.Leaf(leaf) != theirs[c]) leaves.push_back(leaf);
            }
          }
        });
        if (!ok) return Done(ex, "malformed leaves reply");
        if (leaves.empty()) return Done(ex, "");
        CompareEntries(ex, std::move(leaves));
      });
}

void AntiEntropy::CompareEntries(std::shared_ptr<Exchange> ex, std::vector<uint32_t> leaves) {
  Request req;
  req.type = MsgType::kTree;
  req.payload = EncodeTreeRequest({kOpEntries, ex->partition, ex->ring_version, leaves, {}});
  ctx_.loop.Call(ex->endpoint, std::move(req), ctx_.RequestTimeout(),
                 [this, ex, leaves](Result<Reply> rep) {
                   Status s = rep.ok() ? rep->ToStatus() : rep.status();
                   if (!s.ok()) return Done(ex, s.ToString());
                   std::vector<std::pair<std::string, uint64_t>> theirs;
                   if (!ReadPairs(rep->payload, false, &theirs, nullptr)) {
                     return Done(ex, "malformed entries reply");
                   }
                   Repair(ex, leaves, std::move(theirs));
                 });
}

// theirs: the peer's (key, digest) under the differing leaves. Keys whose
// digests differ are fetched from the peer and merged here, then this
// node's merged sets go to the peer, so both end with the union.
void AntiEntropy::Repair(std::shared_ptr<Exchange> ex, std::vector<uint32_t> leaves,
                         std::vector<std::pair<std::string, uint64_t>> theirs) {
  auto peer = std::make_shared<std::map<std::string, uint64_t>>(theirs.begin(), theirs.end());
  std::map<std::string, uint64_t> mine;
  ctx_.store.WithTree(ex->partition, [&](MerkleTree& t) {
    for (uint32_t leaf : leaves) {
      for (auto& [k, d] : t.Entries(leaf)) mine.emplace(std::move(k), d);
    }
  });
  auto differing = std::make_shared<std::vector<std::string>>();
  std::vector<std::string> fetch;
  for (const auto& [k, d] : *peer) {
    auto it = mine.find(k);
    if (it == mine.end() || it->second != d) {
      differing->push_back(k);
      fetch.push_back(k);
    }
  }
  for (const auto& [k, d] : mine) {
    if (!peer->count(k)) differing->push_back(k);
  }
  if (differing->size() > kMaxKeysPerExchange) {
    // The rest shows up again in a later round.
    differing->resize(kMaxKeysPerExchange);
    std::set<std::string> keep(differing->begin(), differing->end());
    std::erase_if(fetch, [&](const std::string& k) { return !keep.count(k); });
  }
  if (differing->empty()) return Done(ex, "");

  // Merges what the peer sent, then collects the sets the peer lacks.
  auto merge_and_push = [this, ex, peer,
                         differing](std::vector<std::pair<std::string, std::string>> fetched) {
    using Outcome = std::pair<uint64_t, std::vector<std::pair<std::string, std::string>>>;
    ctx_.loop.OnEngineBulk<Result<Outcome>>(
        [this, peer, differing, fetched = std::move(fetched)]() -> Result<Outcome> {
          Outcome out{0, {}};
          size_t bytes = 0;
          for (const auto& [k, set_bytes] : fetched) {
            if (set_bytes.empty()) continue;
            auto set = SiblingSet::Decode(set_bytes);
            if (!set.ok()) return set.status();
            bool changed = false;
            Status s = ctx_.store.Merge(k, *set, &changed).status();
            if (!s.ok()) return s;
            out.first += changed;
          }
          for (const auto& k : *differing) {
            Result<SiblingSet> now = ctx_.store.Read(k);
            if (!now.ok()) return now.status();
            if (now->empty()) continue;
            auto it = peer->find(k);
            if (it != peer->end() && it->second == now->Digest()) continue;
            out.second.emplace_back(k, now->Encode());
            bytes += k.size() + out.second.back().second.size();
            if (bytes >= kMaxBytesPerMessage) break;
          }
          return out;
        },
        [this, ex](Result<Outcome> out) {
          if (!out.ok()) return Done(ex, out.status().ToString());
          ex->repaired += out->first;
          if (out->second.empty()) return Done(ex, "");
          const size_t pushed = out->second.size();
          Request push;
          push.type = MsgType::kTransfer;
          push.batch = std::move(out->second);
          ctx_.loop.Call(ex->endpoint, std::move(push), ctx_.RequestTimeout() * 5,
                         [this, ex, pushed](Result<Reply> rep) {
                           Status s = rep.ok() ? rep->ToStatus() : rep.status();
                           if (!s.ok()) return Done(ex, "push failed: " + s.ToString());
                           ex->repaired += pushed;
                           Done(ex, "");
                         });
        });
  };
  if (fetch.empty()) return merge_and_push({});
  TreeRequest tr{kOpFetch, ex->partition, ex->ring_version, {}, std::move(fetch)};
  Request req;
  req.type = MsgType::kTree;
  req.payload = EncodeTreeRequest(tr);
  ctx_.loop.Call(ex->endpoint, std::move(req), ctx_.RequestTimeout() * 5,
                 [this, ex, merge_and_push](Result<Reply> rep) {
                   Status s = rep.ok() ? rep->ToStatus() : rep.status();
                   if (!s.ok()) return Done(ex, s.ToString());
                   std::vector<std::pair<std::string, std::string>> sets;
                   if (!ReadPairs(rep->payload, true, nullptr, &sets)) {
                     return Done(ex, "malformed fetch reply");
                   }
                   merge_and_push(std::move(sets));
                 });
}

void AntiEntropy::Done(const std::shared_ptr<Exchange>& ex, const std::string& problem) {
  ++stats_.exchanges;
  if (!problem.empty()) {
    log::Debug("anti-entropy of partition " + std::to_string(ex->partition) + " with " + ex->peer +
               " stopped: " + problem);
  }
  if (ex->repaired > 0) {
    stats_.keys_repaired += ex->repaired;
    log::Info("anti-entropy: partition " + std::to_string(ex->partition) + " with " + ex->peer +
              ": " + std::to_string(ex->repaired) + " keys repaired");
  }
  // Pace repairs to the configured rate, and take no more than the
  // background share of the time (admission control).
  const auto pause =
      std::chrono::milliseconds(ctx_.options.anti_entropy_interval_ms) +
      std::chrono::milliseconds(ex->repaired * 1000 / ctx_.options.anti_entropy_rate);
  Schedule(ctx_.background.PauseAfter(ctx_.loop.Now() - ex->started, pause));
  running_ = false;
}

void AntiEntropy::ServeTree(std::string identity, const RequestView& req) {
  auto tr = std::make_shared<TreeRequest>();
  if (Status s = DecodeTreeRequest(req.payload, tr.get()); !s.ok()) {
    ++ctx_.malformed;
    return ctx_.Reply(identity, Reply::Error(req.id, s));
  }
  const Ring& ring = ctx_.cluster.ring();
  const auto pref = ring.empty() ? std::vector<std::string>() : ring.PreferenceList(tr->partition);
  if (std::find(pref.begin(), pref.end(), ctx_.options.node_id) == pref.end()) {
    return ctx_.Reply(
        identity,
        Reply::Error(req.id, Status::Unavailable(
                                 "not a replica of partition " + std::to_string(tr->partition) +
                                 " in ring version " + std::to_string(ring.version()))));
  }
  if (hooks_.rebuilding && hooks_.rebuilding(tr->partition)) {
    return ctx_.Reply(
        identity,
        Reply::Error(req.id, Status::Unavailable("partition " + std::to_string(tr->partition) +
                                                 " is being rebuilt here")));
  }
  const uint64_t id = req.id;
  if (tr->op == kOpFetch) {
    ctx_.loop.OnEngineBulk<Result<msgpack::sbuffer*>>(
        [this, tr]() -> Result<msgpack::sbuffer*> {
          auto buf = std::make_unique<msgpack::sbuffer>(256);
          mp::Packer pk(*buf);
          std::vector<std::pair<std::string, std::string>> found;
          size_t bytes = 0;
          for (const auto& k : tr->keys) {
            Result<std::string> v = ctx_.store.backend().Get(k);
            if (!v.ok() && !v.status().IsNotFound()) return v.status();
            found.emplace_back(k, v.ok() ? std::move(v).value() : std::string());
            bytes += k.size() + found.back().second.size();
            if (bytes >= kMaxBytesPerMessage) break;  // the rest in a later exchange
          }
          pk.pack_array(static_cast<uint32_t>(found.size()));
          for (const auto& [k, v] : found) {
            pk.pack_array(2);
            mp::PackBin(pk, k);
            mp::PackBin(pk, v);
          }
          return buf.release();
        },
        [this, identity, id](Result<msgpack::sbuffer*> buf) {
          if (!buf.ok()) return ctx_.Reply(identity, Reply::Error(id, buf.status()));
          std::unique_ptr<msgpack::sbuffer> owned(*buf);
          ctx_.Reply(identity, TreeReply(id, *owned));
        });
    return;
  }
  // The tree may not exist yet here: build it (a scan), then answer.
  ctx_.loop.OnEngineBulk<Status>(
      [this, p = tr->partition] { return ctx_.store.BuildTree(p); },
      [this, identity, id, tr](Status s) {
        if (!s.ok()) return ctx_.Reply(identity, Reply::Error(id, s));
        msgpack::sbuffer buf(256);
        mp::Packer pk(buf);
        const bool built = ctx_.store.WithTree(tr->partition, [&](MerkleTree& t) {
          if (tr->op == kOpRoot) {
            pk.pack_array(2);
            pk.pack_uint64(t.Root());
            pk.pack_array(MerkleTree::kInner);
            for (uint32_t i = 0; i < MerkleTree::kInner; ++i) pk.pack_uint64(t.Inner(i));
          } else if (tr->op == kOpLeaves) {
            pk.pack_array(static_cast<uint32_t>(tr->indices.size()));
            for (uint32_t i : tr->indices) {
              pk.pack_array(MerkleTree::kFanout);
              for (uint32_t c = 0; c < MerkleTree::kFanout; ++c) {
                pk.pack_uint64(t.Leaf(i * MerkleTree::kFanout + c));
              }
            }
          } else {
            std::vector<std::pair<std::string, uint64_t>> all;
            for (uint32_t leaf : tr->indices) {
              auto e = t.Entries(leaf);
              all.insert(all.end(), std::make_move_iterator(e.begin()),
                         std::make_move_iterator(e.end()));
            }
            pk.pack_array(static_cast<uint32_t>(all.size()));
            for (const auto& [k, d] : all) {
              pk.pack_array(2);
              mp::PackBin(pk, k);
              pk.pack_uint64(d);
            }
          }
        });
        if (!built) {
          return ctx_.Reply(identity, Reply::Error(id, Status::Unavailable("tree not ready")));
        }
        ctx_.Reply(identity, TreeReply(id, buf));
      });
}

}  // namespace dynamo
