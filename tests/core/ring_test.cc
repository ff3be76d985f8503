#include "dynamo/ring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <iterator>
#include <random>
#include <set>

#include "dynamo/key_hash.h"

namespace dynamo {
namespace {

std::vector<std::string> Owners(const Ring& r) {
  std::vector<std::string> v;
  for (uint32_t p = 0; p < r.partitions(); ++p) v.push_back(r.Owner(p));
  return v;
}

// Ownership sums to Q, is balanced, and names are sorted, distinct and each
// own something.
::testing::AssertionResult Balanced(const Ring& r) {
  const auto nodes = r.nodes();
  if (!std::is_sorted(nodes.begin(), nodes.end()) ||
      std::adjacent_find(nodes.begin(), nodes.end()) != nodes.end()) {
    return ::testing::AssertionFailure() << "nodes not sorted and distinct";
  }
  size_t sum = 0, lo = SIZE_MAX, hi = 0;
  for (const auto& n : nodes) {
    const size_t owned = r.OwnedBy(n);
    sum += owned;
    lo = std::min(lo, owned);
    hi = std::max(hi, owned);
  }
  if (sum != r.partitions()) return ::testing::AssertionFailure() << "sum " << sum;
  if (lo == 0 || hi - lo > 1) {
    return ::testing::AssertionFailure() << "owned min " << lo << " max " << hi;
  }
  return ::testing::AssertionSuccess();
}

// How many partitions the preference-list walk from p visits: until N
// distinct owners, or the whole ring when there are fewer nodes.
uint32_t WalkLength(const Ring& r, uint32_t p) {
  if (r.nodes().size() < r.replicas()) return r.partitions();
  std::set<std::string> seen;
  uint32_t k = 0;
  while (k < r.partitions() && seen.size() < r.replicas()) {
    seen.insert(r.Owner((p + k++) % r.partitions()));
  }
  return k;
}

::testing::AssertionResult GoodPreferenceLists(const Ring& r) {
  const size_t s = r.nodes().size();
  for (uint32_t p = 0; p < r.partitions(); ++p) {
    const auto pl = r.PreferenceList(p);
    const auto ext = r.ExtendedPreferenceList(p);
    auto fail = [&] { return ::testing::AssertionFailure() << "partition " << p << ": "; };
    if (pl.size() != std::min<size_t>(r.replicas(), s)) return fail() << "size " << pl.size();
    if (pl.front() != r.Owner(p)) return fail() << "owner not first";
    if (!std::equal(pl.begin(), pl.end(), ext.begin())) return fail() << "not a prefix";
    std::vector<std::string> sorted = ext;
    std::sort(sorted.begin(), sorted.end());
    if (sorted != r.nodes()) return fail() << "extended list is not every node once";
    // Clockwise order: each entry is the first new owner met walking on.
    std::set<std::string> seen;
    size_t next = 0;
    for (uint32_t k = 0; k < r.partitions() && next < ext.size(); ++k) {
      const std::string& o = r.Owner((p + k) % r.partitions());
      if (seen.insert(o).second && ext[next++] != o) return fail() << "not clockwise";
    }
  }
  return ::testing::AssertionSuccess();
}

// Preference lists whose walk met no ownership change are unchanged.
::testing::AssertionResult StablePreferenceLists(const Ring& before, const Ring& after) {
  const uint32_t q = before.partitions();
  for (uint32_t p = 0; p < q; ++p) {
    const uint32_t len = WalkLength(before, p);
    bool same = true;
    for (uint32_t k = 0; k < len; ++k)
      same = same && before.Owner((p + k) % q) == after.Owner((p + k) % q);
    if (same && before.PreferenceList(p) != after.PreferenceList(p)) {
      return ::testing::AssertionFailure() << "partition " << p << " changed";
    }
  }
  return ::testing::AssertionSuccess();
}

struct Op {
  bool join;
  std::string node;
};

// A random but valid-looking sequence: mostly joins of new names, some
// leaves, some no-ops (joining a member, leaving a stranger).
std::vector<Op> RandomOps(std::mt19937& rng, size_t count) {
  std::vector<Op> ops;
  for (size_t i = 0; i < count; ++i) {
    const bool join = rng() % 3 != 0;
    ops.push_back({join, "node-" + std::to_string(rng() % 16)});
  }
  return ops;
}

Ring RandomRing(std::mt19937& rng) {
  static const uint32_t kQ[] = {1, 8, 64, 256, 1024};
  Ring r = Ring::Create(kQ[rng() % 5], 1 + rng() % 5, "node-" + std::to_string(rng() % 16));
  for (const Op& op : RandomOps(rng, rng() % 12)) op.join ? r.Join(op.node) : r.Leave(op.node);
  return r;
}

TEST(RingTest, CreateOwnsEverything) {
  Ring r = Ring::Create(64, 3, "a");
  EXPECT_FALSE(r.empty());
  EXPECT_EQ(r.partitions(), 64u);
  EXPECT_EQ(r.replicas(), 3u);
  EXPECT_EQ(r.version(), 1u);
  EXPECT_EQ(r.nodes(), std::vector<std::string>{"a"});
  EXPECT_TRUE(r.Contains("a"));
  EXPECT_FALSE(r.Contains("b"));
  EXPECT_EQ(r.OwnedBy("a"), 64u);
  EXPECT_EQ(r.OwnedBy("b"), 0u);
  for (uint32_t p = 0; p < 64; ++p) {
    EXPECT_EQ(r.Owner(p), "a");
    EXPECT_EQ(r.PreferenceList(p), std::vector<std::string>{"a"});
    EXPECT_EQ(r.ExtendedPreferenceList(p), std::vector<std::string>{"a"});
  }
  EXPECT_EQ(r.Owner(64), "");
  EXPECT_TRUE(r.PreferenceList(64).empty());
}

TEST(RingTest, PartitionForKeyRespectsQ) {
  for (uint32_t q : {1u, 2u, 64u, 1024u, 65536u}) {
    Ring r = Ring::Create(q, 3, "a");
    ASSERT_EQ(r.partitions(), q);
    std::set<uint32_t> hit;
    for (int i = 0; i < 2000; ++i) {
      const std::string key = "key-" + std::to_string(i);
      const uint32_t p = r.PartitionForKey(key);
      ASSERT_LT(p, q);
      ASSERT_EQ(p, PartitionOf(KeyHash(key), q));
      hit.insert(p);
    }
    // Keys spread: most partitions of a small ring are hit.
    EXPECT_GE(hit.size(), std::min<size_t>(q, 64) * 3 / 4) << q;
  }
}

TEST(RingTest, CreateRejectsBadArguments) {
  EXPECT_TRUE(Ring::Create(0, 3, "a").empty());
  EXPECT_TRUE(Ring::Create(12, 3, "a").empty());
  EXPECT_TRUE(Ring::Create(131072, 3, "a").empty());
  EXPECT_TRUE(Ring::Create(8, 0, "a").empty());
  EXPECT_TRUE(Ring::Create(8, 3, "").empty());
  EXPECT_FALSE(Ring::Create(65536, 3, "a").empty());
}

TEST(RingTest, EmptyRing) {
  Ring r;
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.partitions(), 0u);
  EXPECT_EQ(r.version(), 0u);
  EXPECT_TRUE(r.nodes().empty());
  EXPECT_FALSE(r.Join("a"));
  EXPECT_FALSE(r.Leave("a"));
  EXPECT_EQ(r.Owner(0), "");
  EXPECT_TRUE(r.PreferenceList(0).empty());
  EXPECT_EQ(r.PartitionForKey("k"), 0u);
  EXPECT_EQ(r, Ring());
}

// Small rings worked by hand: the spacing heuristic interleaves owners.
TEST(RingTest, ExactSmallJoinsAndLeave) {
  Ring r = Ring::Create(8, 3, "a");
  ASSERT_TRUE(r.Join("b"));
  EXPECT_EQ(Owners(r), (std::vector<std::string>{"b", "a", "b", "a", "b", "a", "b", "a"}));
  EXPECT_EQ(r.PreferenceList(0), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(r.version(), 2u);
  const Ring two = r;

  ASSERT_TRUE(r.Join("c"));
  EXPECT_EQ(Owners(r), (std::vector<std::string>{"b", "c", "b", "a", "c", "a", "b", "a"}));
  EXPECT_EQ(r.PreferenceList(0), (std::vector<std::string>{"b", "c", "a"}));
  EXPECT_EQ(r.PreferenceList(5), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(r.ExtendedPreferenceList(3), (std::vector<std::string>{"a", "c", "b"}));
  EXPECT_EQ(r.version(), 3u);

  // c's partitions 1 and 4 go back where spacing puts them: the ring of two.
  ASSERT_TRUE(r.Leave("c"));
  EXPECT_EQ(Owners(r), Owners(two));
  EXPECT_EQ(r.nodes(), two.nodes());
  EXPECT_EQ(r.version(), 4u);
}

TEST(RingTest, NoOpsKeepVersion) {
  Ring r = Ring::Create(8, 2, "a");
  const Ring one = r;
  EXPECT_FALSE(r.Leave("a"));   // the last node
  EXPECT_FALSE(r.Join("a"));    // already present
  EXPECT_FALSE(r.Leave("zz"));  // absent
  EXPECT_FALSE(r.Join(""));
  EXPECT_EQ(r, one);
  for (int i = 1; i < 8; ++i) ASSERT_TRUE(r.Join("n" + std::to_string(i)));
  const Ring full = r;
  EXPECT_FALSE(r.Join("extra"));  // every partition has its own node
  EXPECT_EQ(r, full);
  EXPECT_EQ(r.version(), 8u);
}

TEST(RingPropertyTest, RandomJoinsAndLeaves) {
  std::mt19937 rng(20240917);
  static const uint32_t kQ[] = {8, 64, 256, 1024};
  for (int seq = 0; seq < 200; ++seq) {
    const uint32_t q = kQ[seq % 4];
    const uint32_t n = 1 + rng() % 5;
    const std::string first = "node-" + std::to_string(rng() % 16);
    Ring r = Ring::Create(q, n, first);
    const auto ops = RandomOps(rng, 1 + rng() % 12);
    SCOPED_TRACE("sequence " + std::to_string(seq) + " Q=" + std::to_string(q) +
                 " N=" + std::to_string(n));
    for (const Op& op : ops) {
      const Ring before = r;
      const size_t s = before.nodes().size();
      const bool member = before.Contains(op.node);
      if (op.join) {
        const bool changed = r.Join(op.node);
        ASSERT_EQ(changed, !member && s < q);
        if (!changed) {
          ASSERT_EQ(r, before);
          continue;
        }
        // Minimal movement: exactly the new node's partitions moved.
        size_t moved = 0;
        for (uint32_t p = 0; p < q; ++p) {
          if (r.Owner(p) != before.Owner(p)) {
            ASSERT_EQ(r.Owner(p), op.node) << p;
            ++moved;
          }
        }
        ASSERT_EQ(moved, r.OwnedBy(op.node));
        ASSERT_GE(moved, q / (s + 1));
        ASSERT_LE(moved, (q + s) / (s + 1));
      } else {
        const bool changed = r.Leave(op.node);
        ASSERT_EQ(changed, member && s > 1);
        if (!changed) {
          ASSERT_EQ(r, before);
          continue;
        }
        ASSERT_FALSE(r.Contains(op.node));
        // Only the leaver's partitions changed owner (all of them must).
        for (uint32_t p = 0; p < q; ++p) {
          ASSERT_EQ(r.Owner(p) != before.Owner(p), before.Owner(p) == op.node) << p;
        }
      }
      ASSERT_EQ(r.version(), before.version() + 1);
      ASSERT_TRUE(Balanced(r));
      ASSERT_TRUE(GoodPreferenceLists(r));
      ASSERT_TRUE(StablePreferenceLists(before, r));
    }
    // Determinism: the same sequence on a fresh ring gives an equal ring.
    Ring twin = Ring::Create(q, n, first);
    for (const Op& op : ops) op.join ? twin.Join(op.node) : twin.Leave(op.node);
    ASSERT_EQ(twin, r);
    ASSERT_EQ(twin.Encode(), r.Encode());
  }
}

// The spacing heuristic at work: growing a ring one node at a time keeps
// most N-windows made of N distinct owners, so preference lists stay short.
// (A claim that took runs of adjacent partitions fails this at once.)
TEST(RingPropertyTest, JoinsKeepWindowsDistinct) {
  constexpr uint32_t kN = 3;
  for (uint32_t q : {64u, 256u, 1024u}) {
    Ring r = Ring::Create(q, kN, "n00");
    for (uint32_t s = 2; s <= 12; ++s) {
      ASSERT_TRUE(r.Join("n" + std::string(s <= 10 ? "0" : "") + std::to_string(s - 1)));
      uint32_t distinct = 0;
      for (uint32_t p = 0; p < q; ++p) distinct += WalkLength(r, p) == kN ? 1 : 0;
      // Up to N nodes few windows can be distinct: with minimal movement the
      // third node lands on an interleaved pair. Past 2N, nearly all are.
      if (s >= 2 * kN) {
        EXPECT_GE(distinct, q * 95 / 100) << "Q=" << q << " nodes=" << s;
      } else if (s > kN) {
        EXPECT_GE(distinct, q * 70 / 100) << "Q=" << q << " nodes=" << s;
      }
    }
  }
}

// A tiny msgpack writer, so malformed rings are built without the codec
// under test.
struct Mp {
  std::string b;
  Mp& Arr(size_t n) {
    b += static_cast<char>(0x90 | n);
    return *this;
  }
  Mp& U(uint64_t v) {
    if (v < 128) {
      b += static_cast<char>(v);
    } else {
      b += '\xce';
      for (int s = 24; s >= 0; s -= 8) b += static_cast<char>(v >> s);
    }
    return *this;
  }
  Mp& S(const std::string& s) {
    b += static_cast<char>(0xa0 | s.size());
    b += s;
    return *this;
  }
};

std::string Hand(uint64_t format, uint64_t version, uint64_t q, uint64_t n,
                 const std::vector<std::string>& names, const std::vector<uint64_t>& owners) {
  Mp m;
  m.Arr(6).U(format).U(version).U(q).U(n).Arr(names.size());
  for (const auto& s : names) m.S(s);
  m.Arr(owners.size());
  for (uint64_t o : owners) m.U(o);
  return m.b;
}

TEST(RingEncodingTest, KnownBytes) {
  EXPECT_EQ(Ring::Create(4, 2, "a").Encode(), Hand(1, 1, 4, 2, {"a"}, {0, 0, 0, 0}));
  auto r = Ring::Decode(Hand(1, 7, 4, 2, {"a", "b"}, {1, 0, 1, 0}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version(), 7u);
  EXPECT_EQ(r->replicas(), 2u);
  EXPECT_EQ(Owners(*r), (std::vector<std::string>{"b", "a", "b", "a"}));
  EXPECT_EQ(Ring().Encode(), Hand(1, 0, 0, 0, {}, {}));
}

TEST(RingEncodingTest, RoundTrip) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    const Ring r = RandomRing(rng);
    auto d = Ring::Decode(r.Encode());
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    ASSERT_EQ(*d, r);
    ASSERT_EQ(d->Encode(), r.Encode());
    ASSERT_EQ(d->PreferenceList(0), r.PreferenceList(0));
  }
  auto e = Ring::Decode(Ring().Encode());
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->empty());
}

TEST(RingEncodingTest, EveryTruncationRejected) {
  std::mt19937 rng(11);
  std::vector<Ring> rings = {Ring(), Ring::Create(8, 3, "a")};
  for (int i = 0; i < 20; ++i) rings.push_back(RandomRing(rng));
  for (const Ring& r : rings) {
    const std::string bytes = r.Encode();
    for (size_t len = 0; len < bytes.size(); ++len) {
      auto d = Ring::Decode(std::string_view(bytes).substr(0, len));
      ASSERT_FALSE(d.ok()) << len << " of " << bytes.size();
      ASSERT_EQ(d.status().code(), Status::Code::kCorruption);
    }
  }
}

TEST(RingEncodingTest, MalformedRejected) {
  ASSERT_TRUE(Ring::Decode(Hand(1, 1, 4, 2, {"a", "b"}, {0, 1, 0, 1})).ok());
  const std::string bad[] = {
      Hand(1, 1, 4, 2, {"a", "b"}, {0, 2, 0, 1}),                     // owner index out of range
      Hand(1, 1, 6, 2, {"a", "b"}, {0, 1, 0, 1, 0, 1}),               // Q not a power of two
      Hand(1, 1, 4, 0, {"a", "b"}, {0, 1, 0, 1}),                     // N = 0
      Hand(2, 1, 4, 2, {"a", "b"}, {0, 1, 0, 1}),                     // unknown format
      Hand(1, 0, 4, 2, {"a", "b"}, {0, 1, 0, 1}),                     // version 0
      Hand(1, 1, 4, 2, {"a", "b"}, {0, 1, 0}),                        // owner count is not Q
      Hand(1, 1, 4, 2, {"b", "a"}, {0, 1, 0, 1}),                     // names not sorted
      Hand(1, 1, 4, 2, {"a", "a"}, {0, 1, 0, 1}),                     // names not unique
      Hand(1, 1, 4, 2, {"", "b"}, {0, 1, 0, 1}),                      // empty name
      Hand(1, 1, 4, 2, {"a", "b", "c"}, {0, 1, 0, 1}),                // c owns nothing
      Hand(1, 1, 4, 2, {}, {0, 0, 0, 0}),                             // no nodes
      Hand(1, 1, 131072, 2, {"a"}, {0, 0, 0, 0}),                     // Q too large
      Hand(1, 1, 0, 2, {"a"}, {}),                                    // Q = 0 but not empty
      Hand(1, 1, 4, 2, {"a", "b"}, {0, 1, 0, 1}) + '\x00',            // trailing byte
      Mp().Arr(5).U(1).U(1).U(4).U(2).Arr(0).b,                       // too few fields
      Mp().Arr(6).U(1).U(1).U(4).U(2).U(0).Arr(0).b,                  // names not an array
      Mp().Arr(6).U(1).U(1).S("x").U(2).Arr(1).S("a").Arr(1).U(0).b,  // Q a string
      std::string("\xc1", 1),                                         // never-used byte
      std::string(),
  };
  for (size_t i = 0; i < std::size(bad); ++i) {
    auto d = Ring::Decode(bad[i]);
    ASSERT_FALSE(d.ok()) << "case " << i;
    EXPECT_EQ(d.status().code(), Status::Code::kCorruption) << "case " << i;
  }
}

// Random corruption never crashes; whatever still decodes is a sound ring.
TEST(RingEncodingTest, RandomCorruptionIsSafe) {
  std::mt19937 rng(3);
  int accepted = 0;
  for (int i = 0; i < 1500; ++i) {
    std::string bytes = RandomRing(rng).Encode();
    const int flips = 1 + rng() % 3;
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    auto d = Ring::Decode(bytes);
    if (!d.ok()) {
      ASSERT_EQ(d.status().code(), Status::Code::kCorruption);
      continue;
    }
    ++accepted;
    const Ring& r = *d;
    ASSERT_TRUE(std::has_single_bit(r.partitions()) || r.empty());
    ASSERT_GE(r.replicas(), r.empty() ? 0u : 1u);
    size_t sum = 0;
    for (const auto& n : r.nodes()) {
      ASSERT_FALSE(n.empty());
      ASSERT_GE(r.OwnedBy(n), 1u);
      sum += r.OwnedBy(n);
    }
    ASSERT_EQ(sum, r.partitions());
    for (uint32_t p = 0; p < r.partitions(); ++p) ASSERT_FALSE(r.PreferenceList(p).empty());
  }
  // Some flips land in versions or owner indexes and still decode.
  EXPECT_GT(accepted, 0);
}

}  // namespace
}  // namespace dynamo
