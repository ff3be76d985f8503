#include "node/local_store.h"

#include <algorithm>
#include <chrono>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "dynamo/key_hash.h"

namespace dynamo {
namespace {
uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}
}  // namespace

Result<SiblingSet> LocalStore::Read(std::string_view key) {
  Result<std::string> bytes = backend_->Get(key);
  if (!bytes.ok()) {
    if (bytes.status().IsNotFound()) return SiblingSet();
    return bytes.status();
  }
  return SiblingSet::Decode(*bytes);
}

Status LocalStore::Store(std::string_view key, uint64_t key_hash, const std::string& encoded) {
  return backend_->Put(key, key_hash, encoded);
}

Result<LocalStore::Written> LocalStore::Write(std::string_view key, const CausalContext& context,
                                              std::string_view node, std::string value,
                                              bool tombstone, bool supersede_current) {
  ActorName name;
  name.Set(std::string(node));
  return Write(key, KeyHash(key), context, name, std::move(value), tombstone, supersede_current,
               NowMs());
}

Result<LocalStore::Written> LocalStore::Write(std::string_view key, uint64_t h,
                                              const CausalContext& context, const ActorName& node,
                                              std::string&& value, bool tombstone,
                                              bool supersede_current, uint64_t now_ms,
                                              const Dot* dot) {
  std::lock_guard<std::mutex> l(StripeFor(h));
  Result<SiblingSet> set = Read(key);
  if (!set.ok()) return set.status();
  CausalContext effective = context;
  if (supersede_current) effective.Merge(set->Context());
  Written w;
  if (dot != nullptr) {
    w.history = set->ApplyAt(effective, *dot, std::move(value), tombstone, max_clock_entries_);
  } else {
    w.history =
        set->Apply(effective, node.Get(), now_ms, std::move(value), tombstone, max_clock_entries_)
            .History();
  }
  w.encoded = set->Encode();
  if (Status s = Store(key, h, w.encoded); !s.ok()) return s;
  NoteWrite(key, h, &*set);
  return w;
}

Result<SiblingSet> LocalStore::Merge(std::string_view key, const SiblingSet& incoming,
                                     bool* changed) {
  const uint64_t h = KeyHash(key);
  std::lock_guard<std::mutex> l(StripeFor(h));
  Result<SiblingSet> set = Read(key);
  if (!set.ok()) return set.status();
  const bool grew = set->Merge(incoming);
  if (grew) {
    if (Status s = Store(key, h, set->Encode()); !s.ok()) return s;
    NoteWrite(key, h, &*set);
  }
  if (changed != nullptr) *changed = grew;
  return set;
}

Status LocalStore::MergeBatch(const std::vector<Incoming>& items) {
  // Keys merged under one hold of a stripe lock: a single-key write waits
  // (on the loop, with an inline engine) for at most this many reads and
  // one put_batch, not for a whole batch's share of the stripe.
  constexpr size_t kKeysPerHold = 16;
  std::vector<uint64_t> hashes(items.size());
  std::vector<std::vector<size_t>> by_stripe(stripes_.size());
  for (size_t i = 0; i < items.size(); ++i) {
    hashes[i] = KeyHash(items[i].key);
    by_stripe[hashes[i] % stripes_.size()].push_back(i);
  }
  struct Merged {
    size_t item;  // the key's first item
    SiblingSet set;
    bool grew = false;
    std::string encoded;
  };
  std::vector<Merged> merged;
  std::unordered_map<std::string_view, size_t> seen;  // key -> index in merged
  std::vector<Backend::Item> puts;
  for (size_t stripe = 0; stripe < by_stripe.size(); ++stripe) {
    const std::vector<size_t>& mine = by_stripe[stripe];
    for (size_t from = 0; from < mine.size(); from += kKeysPerHold) {
      merged.clear();
      seen.clear();
      puts.clear();
      std::lock_guard<std::mutex> l(stripes_[stripe]);
      for (size_t n = from; n < std::min(mine.size(), from + kKeysPerHold); ++n) {
        const size_t i = mine[n];
        auto [at, fresh] = seen.try_emplace(items[i].key, merged.size());
        if (fresh) {
          Result<SiblingSet> now = Read(items[i].key);
          if (!now.ok()) return now.status();
          merged.push_back({i, std::move(now).value(), false, {}});
        }
        Merged& m = merged[at->second];
        if (m.set.Merge(*items[i].set)) m.grew = true;
      }
      for (Merged& m : merged) {
        if (!m.grew) continue;
        m.encoded = m.set.Encode();
        puts.push_back({items[m.item].key, hashes[m.item], m.encoded});
      }
      if (Status s = backend_->PutBatch(puts); !s.ok()) {
        // Some may have been stored: the trees must show what is, or
        // anti-entropy would find these keys different every round (a
        // retry that finds them stored changes nothing, and notes nothing).
        for (const Merged& m : merged) {
          if (!m.grew) continue;
          Result<SiblingSet> now = Read(items[m.item].key);
          if (now.ok() && !now->empty()) NoteWrite(items[m.item].key, hashes[m.item], &*now);
        }
        return s;
      }
      for (const Merged& m : merged) {
        if (m.grew) NoteWrite(items[m.item].key, hashes[m.item], &m.set);
      }
    }
  }
  return Status::OK();
}

Status LocalStore::RemoveIfUnchanged(std::string_view key, std::string_view expected) {
  const uint64_t h = KeyHash(key);
  std::lock_guard<std::mutex> l(StripeFor(h));
  Result<std::string> now = backend_->Get(key);
  if (!now.ok()) return now.status().IsNotFound() ? Status::OK() : now.status();
  if (*now != expected) return Status::OK();
  Status s = backend_->Remove(key);
  if (!s.ok() && !s.IsNotFound()) return s;
  NoteWrite(key, h, nullptr);
  return Status::OK();
}

void LocalStore::NoteWrite(std::string_view key, uint64_t key_hash, const SiblingSet* set) {
  std::unique_lock<std::mutex> l(trees_mu_);
  if (tree_partitions_ == 0) return;
  auto it = trees_.find(PartitionOf(key_hash, tree_partitions_));
  if (it == trees_.end()) return;
  l.unlock();
  const uint64_t digest = set ? set->Digest() : 0;  // outside the lock
  l.lock();
  it = trees_.find(PartitionOf(key_hash, tree_partitions_));
  if (it != trees_.end()) it->second->tree.Set(key, key_hash, digest);
}

void LocalStore::ConfigureTrees(uint32_t partitions) {
  std::lock_guard<std::mutex> l(trees_mu_);
  if (partitions == tree_partitions_) return;
  trees_.clear();
  tree_partitions_ = partitions;
}

Status LocalStore::BuildTree(uint32_t partition) {
  HashRange range;
  TreeSlot* slot = nullptr;  // this build's tree: a drop and rebuild meanwhile is another
  {
    std::lock_guard<std::mutex> l(trees_mu_);
    if (tree_partitions_ == 0 || partition >= tree_partitions_) {
      return Status::InvalidArgument("no such partition");
    }
    if (trees_.count(partition)) return Status::OK();
    range = PartitionHashRange(partition, tree_partitions_);
    slot = trees_.emplace(partition, std::make_unique<TreeSlot>(TreeSlot{MerkleTree(range)}))
               .first->second.get();
  }
  // Writes from now on update the tree; the scan fills in the keys no
  // write touched since (a write is newer than what the scan read).
  std::vector<std::tuple<std::string, uint64_t, uint64_t>> seen;
  Status scan =
      backend_->Scan(range.lo, range.hi, [&](std::string_view k, uint64_t h, std::string_view v) {
        auto set = SiblingSet::Decode(v);
        seen.emplace_back(std::string(k), h, set.ok() ? set->Digest() : 1);
        if (seen.size() >= 1024) {
          std::lock_guard<std::mutex> l(trees_mu_);
          auto it = trees_.find(partition);
          if (it != trees_.end() && it->second.get() == slot) {
            for (const auto& [sk, sh, sd] : seen) {
              it->second->tree.SetIfAbsent(sk, sh, sd);
            }
          }
          seen.clear();
        }
        return true;
      });
  std::lock_guard<std::mutex> l(trees_mu_);
  auto it = trees_.find(partition);
  if (it == trees_.end() || it->second.get() != slot) return Status::OK();  // dropped meanwhile
  if (!scan.ok()) {
    trees_.erase(it);
    return scan;
  }
  for (const auto& [sk, sh, sd] : seen) it->second->tree.SetIfAbsent(sk, sh, sd);
  it->second->built = true;
  return Status::OK();
}

void LocalStore::DropTree(uint32_t partition) {
  std::lock_guard<std::mutex> l(trees_mu_);
  trees_.erase(partition);
}

bool LocalStore::WithTree(uint32_t partition, const std::function<void(MerkleTree&)>& fn) {
  std::lock_guard<std::mutex> l(trees_mu_);
  auto it = trees_.find(partition);
  if (it == trees_.end() || !it->second->built) return false;
  fn(it->second->tree);
  return true;
}

}  // namespace dynamo
