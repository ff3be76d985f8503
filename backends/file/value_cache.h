// ValueCache: the values of recently read and written keys, kept in memory so
// that a read of a hot key costs no system call (the engine runs on the node's
// event loop, where a pread of a page-cache hit still costs a few µs here).
//
// Sharded by key; each shard is an LRU list bounded by bytes (key, value and
// a fixed per-entry overhead). Thread-safe. The engine keeps it exact: it
// updates or erases a key under the same lock as the key's index entry, and
// fills it after a read only if the index still points at what was read.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace dynamo::file {

class ValueCache {
 public:
  // capacity_bytes 0: the cache holds nothing.
  explicit ValueCache(uint64_t capacity_bytes);
  ValueCache(const ValueCache&) = delete;
  ValueCache& operator=(const ValueCache&) = delete;

  // On a hit copies the value into *out and returns true.
  bool Get(std::string_view key, std::string* out);
  // Inserts or replaces key's value; an entry larger than a shard is not kept
  // (and any older value of the key is dropped).
  void Put(std::string_view key, std::string_view value);
  void Erase(std::string_view key);

  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }
  uint64_t bytes() const;
  uint64_t capacity() const { return capacity_; }
  bool enabled() const { return capacity_ != 0; }

  // What one entry costs beyond its key and value bytes (list and map nodes).
  static constexpr uint64_t kEntryOverhead = 96;

 private:
  // What an entry of these sizes counts against the capacity.
  static uint64_t Charge(size_t key_bytes, size_t value_bytes) {
    return key_bytes + value_bytes + kEntryOverhead;
  }
  struct Item {
    std::string key;
    std::string value;
    uint64_t Charge() const { return ValueCache::Charge(key.size(), value.size()); }
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<Item> lru;  // front: most recently used
    std::unordered_map<std::string_view, std::list<Item>::iterator> map;  // views into lru
    uint64_t bytes = 0;
  };
  static constexpr size_t kShards = 16;
  Shard& ShardOf(std::string_view key);
  void EraseLocked(Shard& s, std::list<Item>::iterator it);

  const uint64_t capacity_;
  const uint64_t shard_capacity_;
  std::array<Shard, kShards> shards_;
  std::atomic<uint64_t> hits_{0}, misses_{0};
};

}  // namespace dynamo::file
