#include "dynamo/merkle.h"

#include <algorithm>
#include <cstring>

namespace dynamo {

namespace {

// splitmix64's finaliser: a strong 64-bit mix, so XOR-combined entries do
// not cancel for related inputs.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t HashChildren(const uint64_t* children, size_t n) {
  std::string bytes(n * sizeof(uint64_t), '\0');
  std::memcpy(bytes.data(), children, bytes.size());
  return KeyHash(bytes);
}

}  // namespace

MerkleTree::MerkleTree(HashRange range)
    : range_(range),
      entries_(kLeaves),
      leaves_(kLeaves, 0),
      inner_(kInner, 0),
      inner_dirty_(kInner, true) {}

uint64_t MerkleTree::EntryHash(uint64_t key_hash, uint64_t digest) {
  return Mix(key_hash ^ Mix(digest));
}

uint32_t MerkleTree::LeafOf(uint64_t key_hash) const {
  const unsigned __int128 span = static_cast<unsigned __int128>(range_.hi - range_.lo) + 1;
  const unsigned __int128 off = key_hash - range_.lo;
  return static_cast<uint32_t>(off * kLeaves / span);
}

HashRange MerkleTree::LeafRange(uint32_t leaf) const {
  const unsigned __int128 span = static_cast<unsigned __int128>(range_.hi - range_.lo) + 1;
  // First hash of leaf i: the smallest offset o with o * kLeaves / span == i.
  auto first = [&](uint32_t i) -> unsigned __int128 {
    return (static_cast<unsigned __int128>(i) * span + kLeaves - 1) / kLeaves;
  };
  const uint64_t lo = range_.lo + static_cast<uint64_t>(first(leaf));
  const uint64_t hi =
      leaf + 1 == kLeaves ? range_.hi : range_.lo + static_cast<uint64_t>(first(leaf + 1) - 1);
  return {lo, hi};
}

void MerkleTree::Set(std::string_view key, uint64_t key_hash, uint64_t digest) {
  const uint32_t leaf = LeafOf(key_hash);
  auto& m = entries_[leaf];
  auto it = m.find(std::string(key));
  if (it != m.end()) {
    if (it->second == digest) return;
    leaves_[leaf] ^= EntryHash(key_hash, it->second);
    if (digest == 0) {
      m.erase(it);
      --size_;
    } else {
      it->second = digest;
      leaves_[leaf] ^= EntryHash(key_hash, digest);
    }
  } else {
    if (digest == 0) return;
    m.emplace(std::string(key), digest);
    ++size_;
    leaves_[leaf] ^= EntryHash(key_hash, digest);
  }
  inner_dirty_[leaf / kFanout] = true;
  root_dirty_ = true;
}

void MerkleTree::SetIfAbsent(std::string_view key, uint64_t key_hash, uint64_t digest) {
  const uint32_t leaf = LeafOf(key_hash);
  if (entries_[leaf].count(std::string(key)) != 0) return;
  Set(key, key_hash, digest);
}

uint64_t MerkleTree::Inner(uint32_t i) {
  if (inner_dirty_[i]) {
    inner_[i] = HashChildren(&leaves_[i * kFanout], kFanout);
    inner_dirty_[i] = false;
  }
  return inner_[i];
}

uint64_t MerkleTree::Root() {
  if (root_dirty_) {
    for (uint32_t i = 0; i < kInner; ++i) Inner(i);
    root_ = HashChildren(inner_.data(), kInner);
    root_dirty_ = false;
  }
  return root_;
}

std::vector<std::pair<std::string, uint64_t>> MerkleTree::Entries(uint32_t leaf) const {
  std::vector<std::pair<std::string, uint64_t>> out(entries_[leaf].begin(), entries_[leaf].end());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace dynamo
