// LocalStore: this node's replica of the keys it holds, as sibling sets,
// on top of one storage engine.
//
// Every read-modify-write of a key (a coordinated write, a merge of versions
// from elsewhere) runs under a lock striped by key hash, so concurrent writes
// to one key from several worker threads never lose a version. Thread-safe.
// Calls block on the engine: run them on worker threads unless the engine is
// non-blocking, or, for single keys, inside a NoWaitScope (dynamo/no_wait.h),
// where a read that would wait for the disk makes the call answer WouldBlock
// before it changed anything.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "dynamo/backend.h"
#include "dynamo/key_hash.h"
#include "dynamo/merkle.h"
#include "dynamo/status.h"
#include "dynamo/versioning.h"

namespace dynamo {

// The name a node's new versions carry in their dots (node/incarnation.h).
// Thread-safe: writes on workers read it, the loop renames.
class ActorName {
 public:
  std::string Get() const {
    std::lock_guard<std::mutex> l(mu_);
    return name_;
  }
  void Set(std::string name) {
    std::lock_guard<std::mutex> l(mu_);
    name_ = std::move(name);
  }

 private:
  mutable std::mutex mu_;
  std::string name_;
};

class LocalStore {
 public:
  LocalStore(std::unique_ptr<Backend> backend, size_t max_clock_entries)
      : max_clock_entries_(max_clock_entries) {
    engines_.push_back(std::move(backend));
    backend_.store(engines_.back().get());
  }

  // The key's sibling set; empty when the engine holds nothing for it.
  Result<SiblingSet> Read(std::string_view key);

  struct Written {
    std::string encoded;    // what the key holds now, as stored: replicas get these bytes
    CausalContext history;  // the new version's causal history: the writer's
                            // next context (it has not seen concurrent siblings)
  };
  // Creates a new version of key, coordinated by `node` from the client's
  // `context`, and stores the resulting set. With supersede_current the
  // context is widened to every version stored now (a delete without a
  // context deletes what is there, as Riak's does).
  Result<Written> Write(std::string_view key, const CausalContext& context, std::string_view node,
                        std::string value, bool tombstone, bool supersede_current = false);
  // The same with the key's KeyHash, for a caller that computed it already,
  // and the coordinator's name read under the key's lock (a node renames
  // itself before it drops keys: a write after the drop must carry the new
  // name; node/incarnation.h). now_ms stamps the version. value is taken
  // only once the stored set was read: a call that answers WouldBlock (on
  // the loop, NoWaitScope) leaves it for the retry. With `dot` (a forwarded
  // write's, fixed by the node that forwarded it) the version takes that
  // dot and timestamp instead of node's next one (SiblingSet::ApplyAt).
  Result<Written> Write(std::string_view key, uint64_t key_hash, const CausalContext& context,
                        const ActorName& node, std::string&& value, bool tombstone,
                        bool supersede_current, uint64_t now_ms, const Dot* dot = nullptr);

  // Reconciles versions received from another node into the stored set.
  // Returns the stored set after the merge; *changed (when given) says
  // whether the merge added anything.
  Result<SiblingSet> Merge(std::string_view key, const SiblingSet& incoming,
                           bool* changed = nullptr);

  // As Merge for each item in order (a key may come more than once), with
  // the changed sets stored by one Backend::PutBatch per hold of a lock
  // stripe (up to 16 keys) rather than one Put each: how a partition
  // streamed in (TRANSFER) is taken.
  // Stops at the first failure; the items before it may have been merged.
  struct Incoming {
    std::string_view key;
    const SiblingSet* set;
  };
  Status MergeBatch(const std::vector<Incoming>& items);

  // Removes key (of a handed-off partition being dropped) only if it still
  // holds exactly `expected`, the bytes that were handed off: a version
  // merged in since stays.
  Status RemoveIfUnchanged(std::string_view key, std::string_view expected);

  // The engine. After SwitchToMirror, the new one; a caller still using the
  // old one may finish (it stays open until the store is destroyed).
  Backend& backend() { return *backend_.load(); }

  // ---- live engine migration (DESIGN.md 3.10, node/migration.h)
  //
  // From now on every write that reaches the engine (under its key's lock)
  // reaches `target` too. A write to the target that fails does not fail
  // the write (the engine took it): it is counted (mirror_failures), and
  // the migration gives up. Reads keep using the engine.
  void StartMirror(std::unique_ptr<Backend> target);
  // Stops mirroring and closes the target (a migration abandoned).
  void StopMirror();
  Backend* mirror() { return mirror_.load(); }
  uint64_t mirror_failures() const { return mirror_failures_.load(); }
  // Why the first mirror write since StartMirror failed ("" when none did).
  std::string mirror_error() const {
    std::lock_guard<std::mutex> l(mirror_mu_);
    return mirror_error_;
  }
  // Copies the keys of [lo, hi] from the engine to the mirror, each read
  // and written under its lock (a write racing the copy is mirrored after
  // it, or was copied by it). Adds the keys and bytes copied.
  Status CopyToMirror(uint64_t lo, uint64_t hi, uint64_t* keys, uint64_t* bytes);
  // Compares [lo, hi] in the engine and the mirror. A key that differs
  // (a value, or present in only one) is compared again under its lock, and
  // when it still differs the mirror is made to hold what the engine does
  // (counted in *mended). Adds the keys compared.
  Status CheckMirror(uint64_t lo, uint64_t hi, uint64_t* compared, uint64_t* mended);
  // Makes the mirror the engine, with every lock held: no write is half on
  // one side. Under the locks, and in this order: refuses if a write to the
  // mirror failed since StartMirror, syncs the mirror (every write so far is
  // durable there), runs `record` (the switch made durable), then switches.
  // Mirroring stops. On an error nothing is switched.
  Status SwitchToMirror(const std::function<Status()>& record);
  // Makes every completed write durable: in the engine, and in the mirror
  // while there is one (a sender deletes what it handed over once this
  // returns, and the mirror may be the engine after a crash).
  Status Sync();

  // ---- anti-entropy trees (paper 4.7), one per partition this node
  // replicates, kept up to date by every Write, Merge and RemoveIfUnchanged.
  //
  // Sets the partition count (once the ring is known); trees are per
  // partition of that many.
  void ConfigureTrees(uint32_t partitions);
  // Makes partition p's tree: an empty tree that writes update from now on,
  // then a scan of the engine fills in what writes did not touch. Blocking.
  // OK at once when the tree exists.
  Status BuildTree(uint32_t partition);
  // Forgets a tree (the partition is no longer replicated here).
  void DropTree(uint32_t partition);
  // Runs fn on partition p's tree under the trees' lock, when the tree is
  // built; false when it is not.
  bool WithTree(uint32_t partition, const std::function<void(MerkleTree&)>& fn);

 private:
  struct TreeSlot {
    MerkleTree tree;
    bool built = false;
  };
  void NoteWrite(std::string_view key, uint64_t key_hash, const SiblingSet* set);

  std::mutex& StripeFor(uint64_t key_hash) { return stripes_[key_hash % stripes_.size()]; }
  Status Store(std::string_view key, uint64_t key_hash, const std::string& encoded);

  // Writes to the mirror, when there is one, after the engine took them
  // (under the key's lock).
  void MirrorPut(std::string_view key, uint64_t key_hash, std::string_view value);
  void MirrorPutBatch(const std::vector<Backend::Item>& items);
  void MirrorRemove(std::string_view key);
  void MirrorFailed(const Status& s);

  // Every engine this store used (the current one last but for a mirror
  // being filled, which is mirror_); none is closed before the store is,
  // as a worker may still be in a call to an engine switched away from.
  std::vector<std::unique_ptr<Backend>> engines_;
  std::atomic<Backend*> backend_{nullptr};
  std::atomic<Backend*> mirror_{nullptr};
  std::unique_ptr<Backend> mirror_owned_;  // guarded by holding every stripe
  std::atomic<uint64_t> mirror_failures_{0};
  mutable std::mutex mirror_mu_;
  std::string mirror_error_;  // guarded by mirror_mu_
  const size_t max_clock_entries_;
  std::array<std::mutex, 64> stripes_;

  std::mutex trees_mu_;
  uint32_t tree_partitions_ = 0;                         // guarded by trees_mu_
  std::map<uint32_t, std::unique_ptr<TreeSlot>> trees_;  // guarded by trees_mu_
};

}  // namespace dynamo
