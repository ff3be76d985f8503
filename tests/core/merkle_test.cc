#include "dynamo/merkle.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "dynamo/versioning.h"

namespace dynamo {
namespace {

constexpr uint32_t kQ = 8;

std::vector<std::string> KeysOf(uint32_t partition, size_t n) {
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < n; ++i) {
    std::string k = "key-" + std::to_string(i);
    if (PartitionOf(KeyHash(k), kQ) == partition) keys.push_back(k);
  }
  return keys;
}

TEST(MerkleTree, SameEntriesInAnyOrderGiveTheSameRoot) {
  const auto keys = KeysOf(3, 500);
  MerkleTree a(PartitionHashRange(3, kQ)), b(PartitionHashRange(3, kQ));
  for (size_t i = 0; i < keys.size(); ++i) a.Set(keys[i], KeyHash(keys[i]), i + 1);
  std::vector<size_t> order(keys.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  for (size_t i : order) b.Set(keys[i], KeyHash(keys[i]), i + 1);
  EXPECT_EQ(a.Root(), b.Root());
  EXPECT_EQ(a.size(), 500u);
}

TEST(MerkleTree, OneDifferentDigestShowsInExactlyOneLeafAndItsInnerNode) {
  const auto keys = KeysOf(5, 300);
  MerkleTree a(PartitionHashRange(5, kQ)), b(PartitionHashRange(5, kQ));
  for (size_t i = 0; i < keys.size(); ++i) {
    a.Set(keys[i], KeyHash(keys[i]), 100 + i);
    b.Set(keys[i], KeyHash(keys[i]), 100 + i);
  }
  const std::string& odd = keys[17];
  b.Set(odd, KeyHash(odd), 99999);
  ASSERT_NE(a.Root(), b.Root());
  std::vector<uint32_t> inner, leaves;
  for (uint32_t i = 0; i < MerkleTree::kInner; ++i) {
    if (a.Inner(i) != b.Inner(i)) inner.push_back(i);
  }
  for (uint32_t i = 0; i < MerkleTree::kLeaves; ++i) {
    if (a.Leaf(i) != b.Leaf(i)) leaves.push_back(i);
  }
  ASSERT_EQ(leaves.size(), 1u);
  EXPECT_EQ(leaves[0], a.LeafOf(KeyHash(odd)));
  ASSERT_EQ(inner.size(), 1u);
  EXPECT_EQ(inner[0], leaves[0] / MerkleTree::kFanout);
  auto entries = b.Entries(leaves[0]);
  auto it =
      std::find_if(entries.begin(), entries.end(), [&](const auto& e) { return e.first == odd; });
  ASSERT_NE(it, entries.end());
  EXPECT_EQ(it->second, 99999u);
  // Setting it back makes the trees agree again.
  b.Set(odd, KeyHash(odd), 100 + 17);
  EXPECT_EQ(a.Root(), b.Root());
}

TEST(MerkleTree, RemovingAKeyRestoresTheEarlierRoot) {
  const auto keys = KeysOf(0, 50);
  MerkleTree t(PartitionHashRange(0, kQ));
  for (size_t i = 0; i < 49; ++i) t.Set(keys[i], KeyHash(keys[i]), i + 1);
  const uint64_t before = t.Root();
  t.Set(keys[49], KeyHash(keys[49]), 7);
  EXPECT_NE(t.Root(), before);
  EXPECT_EQ(t.size(), 50u);
  t.Set(keys[49], KeyHash(keys[49]), 0);
  EXPECT_EQ(t.Root(), before);
  EXPECT_EQ(t.size(), 49u);
}

TEST(MerkleTree, SetIfAbsentNeverOverwritesANewerEntry) {
  const auto keys = KeysOf(1, 1);
  MerkleTree a(PartitionHashRange(1, kQ)), b(PartitionHashRange(1, kQ));
  a.Set(keys[0], KeyHash(keys[0]), 2);
  a.SetIfAbsent(keys[0], KeyHash(keys[0]), 1);
  b.Set(keys[0], KeyHash(keys[0]), 2);
  EXPECT_EQ(a.Root(), b.Root());
}

TEST(MerkleTree, LeafRangesTileThePartitionAndAgreeWithLeafOf) {
  for (uint32_t q : {1u, 8u, 256u}) {
    const HashRange r = PartitionHashRange(q - 1, q);
    MerkleTree t(r);
    uint64_t expect_lo = r.lo;
    for (uint32_t i = 0; i < MerkleTree::kLeaves; ++i) {
      const HashRange lr = t.LeafRange(i);
      ASSERT_EQ(lr.lo, expect_lo) << "q=" << q << " leaf " << i;
      ASSERT_LE(lr.lo, lr.hi);
      EXPECT_EQ(t.LeafOf(lr.lo), i);
      EXPECT_EQ(t.LeafOf(lr.hi), i);
      expect_lo = lr.hi + 1;
    }
    EXPECT_EQ(t.LeafRange(MerkleTree::kLeaves - 1).hi, r.hi);
  }
}

TEST(SiblingSetDigest, IndependentOfArrivalOrderAndSensitiveToContent) {
  SiblingSet a, b, c;
  SiblingSet x, y;
  x.Apply(CausalContext(), "n1", 1, "apple", false, 10);
  y.Apply(CausalContext(), "n2", 2, "pear", false, 10);
  a.Merge(x);
  a.Merge(y);
  b.Merge(y);
  b.Merge(x);
  EXPECT_EQ(a.Digest(), b.Digest());
  EXPECT_EQ(c.Digest(), 0u);
  EXPECT_NE(a.Digest(), 0u);
  EXPECT_NE(a.Digest(), x.Digest());
}

}  // namespace
}  // namespace dynamo
