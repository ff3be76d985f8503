#include "dynamo/vector_clock.h"

#include <algorithm>

namespace dynamo {

std::vector<ClockEntry>::iterator VectorClock::Find(std::string_view node) {
  return std::lower_bound(entries_.begin(), entries_.end(), node,
                          [](const ClockEntry& e, std::string_view n) { return e.node < n; });
}

uint64_t VectorClock::Get(std::string_view node) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), node,
                             [](const ClockEntry& e, std::string_view n) { return e.node < n; });
  return (it != entries_.end() && it->node == node) ? it->counter : 0;
}

void VectorClock::Set(std::string_view node, uint64_t counter, uint64_t timestamp_ms) {
  auto it = Find(node);
  if (it != entries_.end() && it->node == node) {
    it->counter = counter;
    it->timestamp_ms = timestamp_ms;
  } else {
    entries_.insert(it, ClockEntry{std::string(node), counter, timestamp_ms});
  }
}

void VectorClock::Increment(std::string_view node, uint64_t now_ms) {
  Set(node, Get(node) + 1, now_ms);
}

void VectorClock::Merge(const VectorClock& other) {
  std::vector<ClockEntry> out;
  out.reserve(entries_.size() + other.entries_.size());
  auto a = entries_.begin();
  auto b = other.entries_.begin();
  while (a != entries_.end() || b != other.entries_.end()) {
    if (b == other.entries_.end() || (a != entries_.end() && a->node < b->node)) {
      out.push_back(*a++);
    } else if (a == entries_.end() || b->node < a->node) {
      out.push_back(*b++);
    } else {
      ClockEntry e = *a;
      if (b->counter > a->counter ||
          (b->counter == a->counter && b->timestamp_ms > a->timestamp_ms)) {
        e = *b;
      }
      out.push_back(std::move(e));
      ++a;
      ++b;
    }
  }
  entries_ = std::move(out);
}

bool VectorClock::Descends(const VectorClock& other) const {
  for (const auto& e : other.entries_) {
    if (Get(e.node) < e.counter) return false;
  }
  return true;
}

VectorClock::Order VectorClock::Compare(const VectorClock& other) const {
  const bool ge = Descends(other);
  const bool le = other.Descends(*this);
  if (ge && le) return Order::kEqual;
  if (le) return Order::kBefore;
  if (ge) return Order::kAfter;
  return Order::kConcurrent;
}

size_t VectorClock::Truncate(size_t max_entries) {
  if (entries_.size() <= max_entries) return 0;
  const size_t drop = entries_.size() - max_entries;
  // Order a copy by (timestamp, node) and drop the first `drop` of them.
  std::vector<ClockEntry> by_age = entries_;
  std::sort(by_age.begin(), by_age.end(), [](const ClockEntry& x, const ClockEntry& y) {
    return x.timestamp_ms != y.timestamp_ms ? x.timestamp_ms < y.timestamp_ms : x.node < y.node;
  });
  for (size_t i = 0; i < drop; ++i) entries_.erase(Find(by_age[i].node));
  return drop;
}

VectorClock VectorClock::FromEntries(std::vector<ClockEntry> entries) {
  VectorClock c;
  for (auto& e : entries) {
    auto it = c.Find(e.node);
    if (it != c.entries_.end() && it->node == e.node) {
      if (e.counter > it->counter) *it = std::move(e);
    } else {
      c.entries_.insert(it, std::move(e));
    }
  }
  return c;
}

}  // namespace dynamo
