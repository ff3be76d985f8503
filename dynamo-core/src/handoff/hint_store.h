// HintStore: the versions this node holds on behalf of other nodes (hinted
// handoff, paper 4.6).
//
// When a replica of a key is unreachable, a write goes to another node with
// a hint naming the intended owner ("target"). That node keeps the hinted
// sibling set here, apart from its own replica, until the target is back and
// has acknowledged it. Hints count toward a write quorum, so every change is
// on disk (fdatasync'ed) before a call returns OK, and survives kill -9.
//
// On disk: dir/NNNNNNNNNN.log, numbered segments of the durable log library
// (dynamo/durable/segments.h), each a run of records
//   [u32 crc32 of body][u32 body length][body]   (little-endian)
// whose body is the msgpack array [op, target, key, set]: op 1 (add) holds
// the full merged set of (target, key), op 2 (remove) an empty set. Replay
// reads the segments oldest first and keeps the last add of each pair
// unless a later remove erases it. Only the newest segment may end in a
// torn record; it is cut off. When a segment reaches segment_bytes the next
// one starts. When the log grows past twice the live records plus 4 MiB,
// the live hints are written to a new segment and the older ones removed.
// A hints.log left by an older version becomes the first segment at open.
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

#include "dynamo/durable/file.h"
#include "dynamo/durable/record_log.h"
#include "dynamo/durable/segments.h"
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
    std::string dir;                     // created if missing; holds the segments and LOCK
    size_t max_keys = 100000;            // distinct (target, key) pairs held at most
    size_t max_bytes = 256u << 20;       // encoded sets held at most, in bytes
    uint64_t segment_bytes = 64u << 20;  // a segment is sealed past this size
  };

  // Opens (creating) the store in options.dir and replays its segments. A
  // torn last record of the newest segment (a crash mid-append: no intact
  // record follows it) is dropped and the file cut to the last good record;
  // any other bad record is Corruption naming the file and offset. IOError
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

  uint64_t log_bytes() const;    // size of the segments now
  uint64_t compactions() const;  // log rewrites since Open
  size_t segments() const;       // segment files now

 private:
  struct Entry {
    std::string encoded;
    uint64_t seq = 0;
    uint64_t record_bytes = 0;  // size of its add record in the log
  };
  using KeyMap = std::map<std::string, Entry, std::less<>>;

  explicit HintStore(Options options);

  // At Open, before the store is shared.
  Status Recover();
  Status MigrateLegacyLog(const std::vector<uint64_t>& seqs);
  Status ApplyRecord(std::string_view body, uint64_t record_bytes);
  // Writes records at the end of the log and fdatasyncs it; on error the log
  // is cut back to its old size and IOError returned.
  Status AppendLocked(const std::string& records);
  Status StartSegmentLocked();
  void MaybeCompactLocked();
  Status CompactLocked();
  // Forgets one held hint (the caller drops the target's map once empty).
  void EraseLocked(KeyMap& keys, KeyMap::iterator entry);

  const Options options_;
  const durable::SegmentDir segments_;
  const durable::CrcLengthFraming framing_;
  durable::DirLock lock_;

  mutable std::mutex mu_;
  Status broken_;  // set when the log can no longer be trusted to be durable
  std::shared_ptr<durable::LogFile> active_;  // the newest segment
  uint64_t active_seq_ = 0;
  uint64_t active_size_ = 0;
  std::map<uint64_t, uint64_t> sealed_;               // older segments: seq -> bytes
  std::map<std::string, KeyMap, std::less<>> hints_;  // target -> key -> entry
  size_t pending_ = 0;
  uint64_t bytes_ = 0;
  uint64_t live_record_bytes_ = 0;
  uint64_t log_size_ = 0;  // all segments
  uint64_t next_seq_ = 0;
  uint64_t dropped_ = 0;
  uint64_t compactions_ = 0;
  uint64_t compact_retry_at_ = 0;  // after a failed rewrite: no retry before the log reaches this
};

}  // namespace dynamo
