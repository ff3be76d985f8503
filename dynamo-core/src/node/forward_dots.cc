// Dots of forwarded writes (forward_dots.h).
#include "node/forward_dots.h"

#include <algorithm>

namespace dynamo {

ForwardDots::ForwardDots(uint64_t first_epoch, size_t capacity)
    : epoch_(first_epoch), capacity_(std::max<size_t>(capacity, 1)) {}

Dot ForwardDots::Next(const std::string& node_actor, std::string_view key,
                      const CausalContext& context, uint64_t now_ms) {
  auto it = entries_.find(std::string(key));
  if (it == entries_.end()) {
    Entry e;
    e.actor = node_actor + "+f" + std::to_string(epoch_);
    lru_.emplace_front(key);
    e.lru = lru_.begin();
    it = entries_.emplace(std::string(key), std::move(e)).first;
    if (entries_.size() > capacity_) {
      // The table forgets the oldest key: from now on no key uses this
      // epoch's actor unless the table remembers it.
      entries_.erase(lru_.back());
      lru_.pop_back();
      ++epoch_;
    }
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  Entry& e = it->second;
  // Every event of this actor for this key was made here and counted in
  // the entry; a context cannot know more, but take the larger anyway.
  e.counter = std::max(e.counter, context.Max(e.actor)) + 1;
  return Dot{e.actor, e.counter, now_ms};
}

}  // namespace dynamo
