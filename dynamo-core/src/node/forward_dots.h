// The dots of the writes a node forwards (Coordinator::Forward).
//
// A node that is no replica of a key forwards a write to the key's
// replicas, one after another when one is slow; each must make the same
// version, so the forwarder picks the new version's dot itself. A dot
// (actor, counter) must be unique per key, and a key's dots of one actor
// should be contiguous (1, 2, 3...): a context folds contiguous events into
// one clock entry, while every other event stays a separate dot, and a
// context keeps only so many (Truncate) — a dropped dot lets an old copy of
// its version come back as a sibling.
//
// So the forwarder keeps, per key it forwarded recently (an LRU table), the
// actor it used and the last counter it gave: the next write to that key
// gets the next counter. A key not in the table gets a fresh actor,
// "<node actor>+f<epoch>", counting from 1: the epoch moves on whenever a
// key leaves the table, so an actor is never used again for a key once the
// table forgot what it gave that key. Epochs start at the wall clock in
// microseconds, so a restarted node never reuses one (unless the clock
// goes back).
//
// Loop thread only.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "dynamo/versioning.h"

namespace dynamo {

class ForwardDots {
 public:
  ForwardDots(uint64_t first_epoch, size_t capacity);

  // The dot for a write of key forwarded by a node whose actor is
  // node_actor, whose writer read `context`.
  Dot Next(const std::string& node_actor, std::string_view key, const CausalContext& context,
           uint64_t now_ms);

  size_t size() const { return entries_.size(); }
  uint64_t epoch() const { return epoch_; }

 private:
  struct Entry {
    std::string actor;
    uint64_t counter = 0;
    std::list<std::string>::iterator lru;  // into lru_, most recent first
  };
  uint64_t epoch_;
  size_t capacity_;
  std::list<std::string> lru_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace dynamo
