// HintStore: the versions this node holds on behalf of other nodes (hinted
// handoff, paper 4.6).
//
// When a replica of a key is unreachable, a write goes to another node with
// a hint naming the intended owner ("target"). That node keeps the hinted
// sibling set here, apart from its own replica, until the target is back and
// has acknowledged it. Hints count toward a write quorum, so every change is
// on disk (fdatasync'ed) before a call returns OK, and survives kill -9.
//
// On disk: dir/hints.log, an append-only log of records
//   [u32 crc32 of body][u32 body length][body]   (little-endian)
// whose body is the msgpack array [op, target, key, set]: op 1 (add) holds
// the full merged set of (target, key), op 2 (remove) an empty set. Replay
// keeps the last add of each pair unless a later remove erases it. When the
// log grows past twice the live records plus 4 MiB, it is rewritten with
// only the live hints (through dir/hints.log.tmp, renamed over it).
// dir/LOCK is flock'ed while the store is open: one process, one store.
//
// Hints are few (they exist only while nodes fail), so the encoded sets are
// kept in memory. Thread-safe: every call takes one mutex; calls that change
// the store block on the disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dynamo/status.h"
#include "dynamo/versioning.h"

namespace dynamo {

// One hint as read from the store.
struct HintStoreHint {
  std::string key;
  std::string encoded;  // SiblingSet::Encode() of the held set
  uint64_t seq = 0;     // changes whenever the held set changes (not durable)
};

class HintStore {
 public:
  struct Options {
    std::string dir;                // created if missing; holds hints.log and LOCK
    size_t max_keys = 100000;       // distinct (target, key) pairs held at most
    size_t max_bytes = 256u << 20;  // encoded sets held at most, in bytes
  };

  // Opens (creating) the store in options.dir and replays hints.log. A torn
  // last record (a crash mid-append: no intact record follows it) is dropped
  // and the file truncated to the last good record; a bad record with an
  // intact one after it is Corruption naming the file and offset. IOError
  // when dir is locked by another open store (in this process or another).
  static Result<std::unique_ptr<HintStore>> Open(Options options);

  ~HintStore();
  HintStore(const HintStore&) = delete;
  HintStore& operator=(const HintStore&) = delete;

  // Merges `set` into the hint for (target, key) and appends the merged set
  // to the log, fdatasync'ed before returning OK. A merge that changes
  // nothing (an empty set included) appends nothing. When (target, key) is
  // new and the store holds max_keys hints, or the set would take the held
  // bytes past max_bytes: Unavailable("hint store full: ..."), counted in
  // dropped(), nothing stored. Merging into a held hint is never refused for
  // size. IOError on a failed write, the store unchanged.
  Status Add(const std::string& target, std::string_view key, const SiblingSet& set);

  using Hint = HintStoreHint;
  // Up to max_keys hints for target, by key, whose encodings total at most
  // max_bytes -- but at least one when target has any and max_keys > 0.
  std::vector<Hint> Peek(const std::string& target, size_t max_keys, size_t max_bytes) const;

  // Removes each delivered (key, seq) whose hint still has that seq (a hint
  // merged again since it was peeked stays), durably. Returns how many were
  // removed.
  Result<size_t> Remove(const std::string& target,
                        const std::vector<std::pair<std::string, uint64_t>>& delivered);

  // Drops every hint for target, durably (e.g. a member removed from the
  // cluster). Returns how many were dropped.
  Result<size_t> DropTarget(const std::string& target);

  // Number of hints per target, for targets with at least one.
  std::map<std::string, size_t> PendingByTarget() const;
  size_t pending() const;    // hints held, all targets
  uint64_t dropped() const;  // Adds refused because the store was full, since Open
  uint64_t bytes() const;    // encoded bytes of the held sets

  // The hints held for key, for any target, merged; empty when none.
  SiblingSet ForKey(std::string_view key) const;

  uint64_t log_bytes() const;    // size of hints.log now
  uint64_t compactions() const;  // log rewrites since Open

 private:
  struct Entry {
    std::string encoded;
    uint64_t seq = 0;
    uint64_t record_bytes = 0;  // size of its add record in the log
  };
  using KeyMap = std::map<std::string, Entry, std::less<>>;

  HintStore(Options options, int lock_fd, int log_fd);

  Status Replay();  // at Open, before the store is shared
  // Writes records at the end of the log and fdatasyncs it; on error the log
  // is cut back to its old size and IOError returned.
  Status AppendLocked(const std::string& records);
  Status CheckUsableLocked() const;
  void MaybeCompactLocked();
  Status CompactLocked();
  // Forgets one held hint (the caller drops the target's map once empty).
  void EraseLocked(KeyMap& keys, KeyMap::iterator entry);

  const Options options_;
  const std::string log_path_;
  const std::string tmp_path_;
  const int lock_fd_;

  mutable std::mutex mu_;
  int log_fd_;     // guarded by mu_
  Status broken_;  // set when the log can no longer be trusted to be durable
  std::map<std::string, KeyMap, std::less<>> hints_;  // target -> key -> entry
  size_t pending_ = 0;
  uint64_t bytes_ = 0;
  uint64_t live_record_bytes_ = 0;
  uint64_t log_size_ = 0;
  uint64_t next_seq_ = 0;
  uint64_t dropped_ = 0;
  uint64_t compactions_ = 0;
  uint64_t compact_retry_at_ = 0;  // after a failed rewrite: no retry before the log reaches this
};

}  // namespace dynamo
