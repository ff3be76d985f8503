#include "log_index.h"

#include <algorithm>

namespace dynamo::file {

void LogIndex::AddSegment(uint64_t seq, uint64_t bytes) { segments_[seq] = {bytes, 0}; }

void LogIndex::RemoveSegment(uint64_t seq) { segments_.erase(seq); }

void LogIndex::Kill(const Location& loc) {
  auto it = segments_.find(loc.seg);
  if (it == segments_.end()) return;
  it->second.live_bytes -= std::min(it->second.live_bytes, loc.size);
  if (loc.seg != active_seq_) hint_ = true;
}

void LogIndex::ApplyPut(std::string_view key, uint64_t key_hash, const Location& loc) {
  uint64_t min_put = loc.seg;
  auto it = keys_.find(key);
  if (it != keys_.end()) {
    Entry& e = it->second;
    Kill(e.loc);
    min_put = std::min(min_put, e.min_put_seg);
    if (e.key_hash != key_hash) {
      by_hash_.erase({e.key_hash, std::string_view(it->first)});
      by_hash_.emplace(std::make_pair(key_hash, std::string_view(it->first)), &e);
    }
    e = Entry{loc, key_hash, min_put};
  } else {
    auto t = tombstones_.find(key);
    if (t != tombstones_.end()) {
      Kill(t->second.loc);
      min_put = std::min(min_put, t->second.min_put_seg);
      tombstones_.erase(t);
    }
    auto [ins, ok] = keys_.emplace(std::string(key), Entry{loc, key_hash, min_put});
    by_hash_.emplace(std::make_pair(key_hash, std::string_view(ins->first)), &ins->second);
  }
  Live(loc);
}

void LogIndex::ApplyRemove(std::string_view key, uint64_t key_hash, const Location& loc) {
  bool known = false;
  uint64_t min_put = 0;
  auto it = keys_.find(key);
  if (it != keys_.end()) {
    Kill(it->second.loc);
    min_put = it->second.min_put_seg;
    by_hash_.erase({it->second.key_hash, std::string_view(it->first)});
    keys_.erase(it);
    known = true;
  } else if (auto t = tombstones_.find(key); t != tombstones_.end()) {
    // A second REMOVE (a duplicate left by a crash during compaction).
    Kill(t->second.loc);
    min_put = t->second.min_put_seg;
    tombstones_.erase(t);
    known = true;
  }
  // A REMOVE of a key no surviving segment PUT before it guards nothing.
  Entry t{loc, key_hash, min_put};
  if (known && TombstoneNeeded(t)) {
    tombstones_.emplace(std::string(key), t);
    Live(loc);
  } else if (loc.seg != active_seq_) {
    hint_ = true;
  }
}

const LogIndex::Entry* LogIndex::Find(std::string_view key) const {
  auto it = keys_.find(key);
  return it == keys_.end() ? nullptr : &it->second;
}

const LogIndex::Entry* LogIndex::FindTombstone(std::string_view key) const {
  auto it = tombstones_.find(key);
  return it == tombstones_.end() ? nullptr : &it->second;
}

bool LogIndex::TombstoneNeeded(const Entry& t) const {
  auto it = segments_.lower_bound(t.min_put_seg);
  return it != segments_.end() && it->first < t.loc.seg;
}

void LogIndex::MovePut(std::string_view key, const Location& to) {
  auto it = keys_.find(key);
  if (it == keys_.end()) return;
  Kill(it->second.loc);
  it->second.loc = to;
  Live(to);
}

void LogIndex::MoveTombstone(std::string_view key, const Location& to) {
  auto it = tombstones_.find(key);
  if (it == tombstones_.end()) return;
  Kill(it->second.loc);
  it->second.loc = to;
  Live(to);
}

void LogIndex::DropTombstone(std::string_view key) {
  auto it = tombstones_.find(key);
  if (it == tombstones_.end()) return;
  Kill(it->second.loc);
  tombstones_.erase(it);
}

size_t LogIndex::DropUnneededTombstones() {
  size_t dropped = 0;
  for (auto it = tombstones_.begin(); it != tombstones_.end();) {
    if (TombstoneNeeded(it->second)) {
      ++it;
      continue;
    }
    Kill(it->second.loc);
    it = tombstones_.erase(it);
    ++dropped;
  }
  return dropped;
}

void LogIndex::CollectRange(uint64_t lo, uint64_t hi, bool resume, uint64_t after_hash,
                            std::string_view after_key, size_t max,
                            std::vector<ScanItem>* out) const {
  auto it = resume ? by_hash_.upper_bound({after_hash, after_key})
                   : by_hash_.lower_bound({lo, std::string_view()});
  for (; it != by_hash_.end() && out->size() < max; ++it) {
    if (it->first.first > hi) break;
    out->push_back({std::string(it->first.second), it->first.first, it->second->loc});
  }
}

}  // namespace dynamo::file
