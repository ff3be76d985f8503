#include "value_cache.h"

#include <functional>
#include <iterator>

namespace dynamo::file {

ValueCache::ValueCache(uint64_t capacity_bytes)
    : capacity_(capacity_bytes), shard_capacity_(capacity_bytes / kShards) {}

ValueCache::Shard& ValueCache::ShardOf(std::string_view key) {
  return shards_[std::hash<std::string_view>{}(key) % kShards];
}

bool ValueCache::Get(std::string_view key, std::string* out) {
  if (!enabled()) return false;
  Shard& s = ShardOf(key);
  std::lock_guard<std::mutex> l(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  out->assign(it->second->value);
  hits_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void ValueCache::EraseLocked(Shard& s, std::list<Item>::iterator it) {
  s.bytes -= it->Charge();
  s.map.erase(std::string_view(it->key));
  s.lru.erase(it);
}

void ValueCache::Put(std::string_view key, std::string_view value) {
  if (!enabled()) return;
  Shard& s = ShardOf(key);
  const uint64_t charge = Charge(key.size(), value.size());
  std::lock_guard<std::mutex> l(s.mu);
  auto it = s.map.find(key);
  if (charge > shard_capacity_) {
    if (it != s.map.end()) EraseLocked(s, it->second);
    return;
  }
  if (it != s.map.end()) {
    auto item = it->second;
    s.bytes -= item->Charge();
    item->value.assign(value.data(), value.size());  // reuses its buffer when it fits
    s.bytes += item->Charge();
    s.lru.splice(s.lru.begin(), s.lru, item);
  } else {
    s.lru.push_front(Item{std::string(key), std::string(value)});
    s.map.emplace(std::string_view(s.lru.front().key), s.lru.begin());
    s.bytes += charge;
  }
  while (s.bytes > shard_capacity_) EraseLocked(s, std::prev(s.lru.end()));
}

void ValueCache::Erase(std::string_view key) {
  if (!enabled()) return;
  Shard& s = ShardOf(key);
  std::lock_guard<std::mutex> l(s.mu);
  auto it = s.map.find(key);
  if (it != s.map.end()) EraseLocked(s, it->second);
}

uint64_t ValueCache::bytes() const {
  uint64_t total = 0;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> l(s.mu);
    total += s.bytes;
  }
  return total;
}

}  // namespace dynamo::file
