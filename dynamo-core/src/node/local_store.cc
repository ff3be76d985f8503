#include "node/local_store.h"

#include <chrono>

#include "dynamo/key_hash.h"

namespace dynamo {
namespace {
uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}
}  // namespace

Result<SiblingSet> LocalStore::Read(std::string_view key) {
  Result<std::string> bytes = backend_->Get(key);
  if (!bytes.ok()) {
    if (bytes.status().IsNotFound()) return SiblingSet();
    return bytes.status();
  }
  return SiblingSet::Decode(*bytes);
}

Status LocalStore::Store(std::string_view key, uint64_t key_hash, const std::string& encoded) {
  return backend_->Put(key, key_hash, encoded);
}

Result<LocalStore::Written> LocalStore::Write(std::string_view key, const CausalContext& context,
                                              std::string_view node, std::string value,
                                              bool tombstone, bool supersede_current) {
  const uint64_t h = KeyHash(key);
  std::lock_guard<std::mutex> l(StripeFor(h));
  Result<SiblingSet> set = Read(key);
  if (!set.ok()) return set.status();
  CausalContext effective = context;
  if (supersede_current) effective.Merge(set->Context());
  Written w;
  w.history = set->Apply(effective, node, NowMs(), std::move(value), tombstone, max_clock_entries_)
                  .History();
  w.encoded = set->Encode();
  if (Status s = Store(key, h, w.encoded); !s.ok()) return s;
  return w;
}

Result<SiblingSet> LocalStore::Merge(std::string_view key, const SiblingSet& incoming) {
  const uint64_t h = KeyHash(key);
  std::lock_guard<std::mutex> l(StripeFor(h));
  Result<SiblingSet> set = Read(key);
  if (!set.ok()) return set.status();
  if (set->Merge(incoming)) {
    if (Status s = Store(key, h, set->Encode()); !s.ok()) return s;
  }
  return set;
}

}  // namespace dynamo
