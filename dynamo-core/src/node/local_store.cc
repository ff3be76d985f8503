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
  Result<std::string> bytes = backend().Get(key);
  if (!bytes.ok()) {
    if (bytes.status().IsNotFound()) return SiblingSet();
    return bytes.status();
  }
  return SiblingSet::Decode(*bytes);
}

Status LocalStore::Store(std::string_view key, uint64_t key_hash, const std::string& encoded) {
  Status s = backend().Put(key, key_hash, encoded);
  if (s.ok()) {
    MirrorPut(key, key_hash, encoded);
  } else if (mirror_.load() != nullptr) {
    // The engine may hold it anyway (a write that failed late): the mirror
    // cannot be trusted to match; the migration gives up.
    MirrorFailed(s);
  }
  return s;
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
      Status put = backend().PutBatch(puts);
      if (put.ok()) {
        MirrorPutBatch(puts);
      } else if (mirror_.load() != nullptr) {
        MirrorFailed(put);  // some may be stored (see Store)
      }
      if (Status s = put; !s.ok()) {
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
  Result<std::string> now = backend().Get(key);
  if (!now.ok()) return now.status().IsNotFound() ? Status::OK() : now.status();
  if (*now != expected) return Status::OK();
  Status s = backend().Remove(key);
  if (!s.ok() && !s.IsNotFound()) {
    if (mirror_.load() != nullptr) MirrorFailed(s);
    return s;
  }
  MirrorRemove(key);
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
      backend().Scan(range.lo, range.hi, [&](std::string_view k, uint64_t h, std::string_view v) {
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

// ---- live engine migration

void LocalStore::MirrorFailed(const Status& s) {
  if (mirror_failures_.fetch_add(1) == 0) {
    // The first says why; the migration gives up at its next step.
    std::lock_guard<std::mutex> l(mirror_mu_);
    mirror_error_ = s.ToString();
  }
}

void LocalStore::MirrorPut(std::string_view key, uint64_t key_hash, std::string_view value) {
  Backend* m = mirror_.load();
  if (m == nullptr) return;
  if (Status s = m->Put(key, key_hash, value); !s.ok()) MirrorFailed(s);
}

void LocalStore::MirrorPutBatch(const std::vector<Backend::Item>& items) {
  Backend* m = mirror_.load();
  if (m == nullptr || items.empty()) return;
  if (Status s = m->PutBatch(items); !s.ok()) MirrorFailed(s);
}

void LocalStore::MirrorRemove(std::string_view key) {
  Backend* m = mirror_.load();
  if (m == nullptr) return;
  if (Status s = m->Remove(key); !s.ok() && !s.IsNotFound()) MirrorFailed(s);
}

namespace {
// Every stripe, in order (one order everywhere: no deadlock).
template <size_t N>
std::vector<std::unique_lock<std::mutex>> LockAll(std::array<std::mutex, N>& stripes) {
  std::vector<std::unique_lock<std::mutex>> held;
  held.reserve(N);
  for (auto& m : stripes) held.emplace_back(m);
  return held;
}
}  // namespace

void LocalStore::StartMirror(std::unique_ptr<Backend> target) {
  auto held = LockAll(stripes_);
  mirror_failures_.store(0);
  {
    std::lock_guard<std::mutex> l(mirror_mu_);
    mirror_error_.clear();
  }
  mirror_owned_ = std::move(target);
  mirror_.store(mirror_owned_.get());
}

void LocalStore::StopMirror() {
  std::unique_ptr<Backend> closing;
  {
    auto held = LockAll(stripes_);
    mirror_.store(nullptr);
    closing = std::move(mirror_owned_);
  }
  // Closed outside the locks; no write uses it once mirror_ is null and
  // every stripe was held. Scans of the copy and the check run on the
  // migration's own worker, which calls this only between its steps.
}

Status LocalStore::SwitchToMirror(const std::function<Status()>& record) {
  auto held = LockAll(stripes_);
  if (!mirror_owned_) return Status::InvalidArgument("no engine to switch to");
  if (mirror_failures_.load() > 0) {
    return Status::IOError("a write to the new engine failed: " + mirror_error());
  }
  if (Status s = mirror_owned_->Sync(); !s.ok()) return s;
  if (Status s = record(); !s.ok()) return s;
  engines_.push_back(std::move(mirror_owned_));
  mirror_.store(nullptr);
  backend_.store(engines_.back().get());
  return Status::OK();
}

Status LocalStore::Sync() {
  if (Status s = backend().Sync(); !s.ok()) return s;
  Backend* m = mirror_.load();
  if (m == nullptr) return Status::OK();
  Status s = m->Sync();
  if (!s.ok()) MirrorFailed(s);
  return Status::OK();  // the engine's copy is durable; the migration gives up
}

Status LocalStore::CopyToMirror(uint64_t lo, uint64_t hi, uint64_t* keys, uint64_t* bytes) {
  Backend* m = mirror_.load();
  if (m == nullptr) return Status::InvalidArgument("no migration is running");
  // The keys first (a scan holds no lock), then each copied under its lock
  // as the engine holds it then.
  std::vector<std::pair<std::string, uint64_t>> found;
  Status s = backend().Scan(lo, hi, [&](std::string_view k, uint64_t h, std::string_view) {
    found.emplace_back(std::string(k), h);
    return true;
  });
  if (!s.ok()) return s;
  for (const auto& [k, h] : found) {
    std::lock_guard<std::mutex> l(StripeFor(h));
    Result<std::string> now = backend().Get(k);
    if (!now.ok()) {
      if (now.status().IsNotFound()) continue;  // removed since the scan: mirrored
      return now.status();
    }
    if (Status put = m->Put(k, h, *now); !put.ok()) return put;
    ++*keys;
    *bytes += k.size() + now->size();
  }
  return Status::OK();
}

Status LocalStore::CheckMirror(uint64_t lo, uint64_t hi, uint64_t* compared, uint64_t* mended) {
  Backend* m = mirror_.load();
  if (m == nullptr) return Status::InvalidArgument("no migration is running");
  // key -> (hash, digest of the value) on each side.
  using Seen = std::unordered_map<std::string, std::pair<uint64_t, uint64_t>>;
  auto scan = [&](Backend& b, Seen* seen) {
    return b.Scan(lo, hi, [&](std::string_view k, uint64_t h, std::string_view v) {
      seen->emplace(std::string(k), std::make_pair(h, KeyHash(v)));
      return true;
    });
  };
  Seen engine, mirror;
  if (Status s = scan(backend(), &engine); !s.ok()) return s;
  if (Status s = scan(*m, &mirror); !s.ok()) return s;
  std::vector<std::pair<std::string, uint64_t>> differing;
  for (const auto& [k, hv] : engine) {
    auto it = mirror.find(k);
    if (it == mirror.end() || it->second.second != hv.second) differing.emplace_back(k, hv.first);
  }
  for (const auto& [k, hv] : mirror) {
    if (!engine.count(k)) differing.emplace_back(k, hv.first);
  }
  *compared += engine.size();
  for (const auto& [k, h] : differing) {
    std::lock_guard<std::mutex> l(StripeFor(h));
    Result<std::string> want = backend().Get(k);
    if (!want.ok() && !want.status().IsNotFound()) return want.status();
    Result<std::string> got = m->Get(k);
    if (!got.ok() && !got.status().IsNotFound()) return got.status();
    if (want.ok() == got.ok() && (!want.ok() || *want == *got)) continue;  // a write raced the scan
    ++*mended;
    Status s = want.ok() ? m->Put(k, h, *want) : m->Remove(k);
    if (!s.ok() && !s.IsNotFound()) return s;
  }
  return Status::OK();
}

}  // namespace dynamo
