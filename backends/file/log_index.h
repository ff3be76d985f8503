// LogIndex: the file engine's in-memory picture of its log.
//
// It maps each live key to the location of its latest PUT record, orders the
// keys by key_hash for range scans, remembers the REMOVE records that must be
// kept ("needed tombstones"), and counts live bytes per segment so compaction
// knows which segments are mostly dead. Pure data structure, no I/O.
//
// Tombstones. A REMOVE record for key k in segment S is needed while some
// older segment may still hold a PUT of k: dropping it would resurrect k on
// the next replay. Each key carries min_put_seg, a lower bound of the
// segments holding a PUT of k (records only ever move to newer segments, so
// the bound stays true as segments come and go). The tombstone in S is needed
// iff a segment X with min_put_seg <= X < S still exists. Needed tombstones
// count as live bytes (so a segment of tombstones is not rewritten forever);
// unneeded ones are dead and vanish when their segment is compacted.
//
// Not thread-safe: FileEngine guards it (see file_engine.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace dynamo::file {

struct Location {
  uint64_t seg = 0;     // segment sequence number
  uint64_t offset = 0;  // of the record in the segment
  uint64_t size = 0;    // of the whole record
  bool operator==(const Location&) const = default;
};

class LogIndex {
 public:
  struct Entry {
    Location loc;
    uint64_t key_hash = 0;
    uint64_t min_put_seg = 0;
  };
  struct SegmentStat {
    uint64_t bytes = 0;       // size of the segment file
    uint64_t live_bytes = 0;  // bytes of live PUTs and needed tombstones
  };
  struct ScanItem {
    std::string key;
    uint64_t key_hash;
    Location loc;
  };

  void AddSegment(uint64_t seq, uint64_t bytes);
  void RemoveSegment(uint64_t seq);
  // Recovery cut a torn tail off segment seq.
  void SetSegmentBytes(uint64_t seq, uint64_t bytes) { segments_[seq].bytes = bytes; }
  void SetActive(uint64_t seq) { active_seq_ = seq; }
  uint64_t active() const { return active_seq_; }
  // A record of loc.size bytes was appended to segment loc.seg.
  void Appended(const Location& loc) { segments_[loc.seg].bytes += loc.size; }

  // Replays (or applies) one record in log order.
  void ApplyPut(std::string_view key, uint64_t key_hash, const Location& loc);
  void ApplyRemove(std::string_view key, uint64_t key_hash, const Location& loc);

  const Entry* Find(std::string_view key) const;
  const Entry* FindTombstone(std::string_view key) const;
  bool TombstoneNeeded(const Entry& t) const;

  // Compaction copied a live record to `to`.
  void MovePut(std::string_view key, const Location& to);
  void MoveTombstone(std::string_view key, const Location& to);
  // Forgets the tombstone of key (its REMOVE record becomes dead).
  void DropTombstone(std::string_view key);
  // Drops every tombstone that is no longer needed; returns how many.
  size_t DropUnneededTombstones();

  // Up to max keys with key_hash in [lo, hi], in (hash, key) order, starting
  // after (after_hash, after_key) when `resume`, else at lo.
  void CollectRange(uint64_t lo, uint64_t hi, bool resume, uint64_t after_hash,
                    std::string_view after_key, size_t max, std::vector<ScanItem>* out) const;

  const std::map<uint64_t, SegmentStat>& segments() const { return segments_; }
  size_t key_count() const { return keys_.size(); }
  size_t tombstone_count() const { return tombstones_.size(); }
  // True (once) when bytes of a sealed segment died since the last call.
  bool TakeCompactionHint() { return std::exchange(hint_, false); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  using Map = std::unordered_map<std::string, Entry, Hash, std::equal_to<>>;

  void Kill(const Location& loc);
  void Live(const Location& loc) { segments_[loc.seg].live_bytes += loc.size; }

  Map keys_;
  Map tombstones_;
  // (key_hash, key) of every live key; the views point at keys_'s keys, which
  // are stable while the key stays (unordered_map nodes never move).
  std::map<std::pair<uint64_t, std::string_view>, const Entry*> by_hash_;
  std::map<uint64_t, SegmentStat> segments_;
  uint64_t active_seq_ = 0;
  bool hint_ = false;
};

}  // namespace dynamo::file
