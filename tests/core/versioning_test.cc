#include "dynamo/versioning.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace dynamo {
namespace {

constexpr size_t kMax = 10;

std::vector<std::string> Sorted(const SiblingSet& s) {
  auto live = s.LiveValues();
  std::vector<std::string> v(live.begin(), live.end());
  std::sort(v.begin(), v.end());
  return v;
}

TEST(SiblingSetTest, PutWithoutContextOnEmptyKey) {
  SiblingSet s;
  s.Apply(CausalContext(), "A", 1, "v1", false, kMax);
  EXPECT_FALSE(s.IsDeleted());
  EXPECT_EQ(Sorted(s), std::vector<std::string>{"v1"});
  EXPECT_EQ(s.Context().Max("A"), 1u);
}

TEST(SiblingSetTest, PutWithReadContextReplaces) {
  SiblingSet s;
  s.Apply(CausalContext(), "A", 1, "v1", false, kMax);
  s.Apply(s.Context(), "A", 2, "v2", false, kMax);
  EXPECT_EQ(Sorted(s), std::vector<std::string>{"v2"});
  EXPECT_EQ(s.versions().size(), 1u);
}

TEST(SiblingSetTest, TwoPutsFromTheSameOldContextGiveSiblings) {
  SiblingSet s;
  s.Apply(CausalContext(), "A", 1, "v1", false, kMax);
  CausalContext old = s.Context();
  s.Apply(old, "A", 2, "x", false, kMax);
  s.Apply(old, "A", 3, "y", false, kMax);
  EXPECT_EQ(Sorted(s), (std::vector<std::string>{"x", "y"}));
  // A put with the merged context collapses them.
  s.Apply(s.Context(), "A", 4, "z", false, kMax);
  EXPECT_EQ(Sorted(s), std::vector<std::string>{"z"});
}

TEST(SiblingSetTest, PutsOnDifferentCoordinatorsAreConcurrent) {
  SiblingSet s;
  s.Apply(CausalContext(), "A", 1, "a", false, kMax);
  s.Apply(CausalContext(), "B", 2, "b", false, kMax);
  EXPECT_EQ(Sorted(s), (std::vector<std::string>{"a", "b"}));
}

// A forwarded write carries its dot: each replica that coordinates it makes
// the same version, so a write coordinated twice (the first replica was slow)
// is one version, wherever and in whatever order the copies meet.
TEST(SiblingSetTest, AWriteAppliedAtAFixedDotTwiceIsOneVersion) {
  SiblingSet base;
  base.Apply(CausalContext(), "A", 1, "v1", false, kMax);
  const CausalContext read = base.Context();
  const Dot dot{"C+h", 1700000000000000, 42};
  SiblingSet at_a = base, at_b = base;
  const CausalContext ha = at_a.ApplyAt(read, dot, "v2", false, kMax);
  const CausalContext hb = at_b.ApplyAt(read, dot, "v2", false, kMax);
  EXPECT_EQ(ha, hb);
  EXPECT_EQ(at_a, at_b);
  EXPECT_EQ(Sorted(at_a), std::vector<std::string>{"v2"});
  EXPECT_TRUE(ha.Covers("C+h", dot.counter));
  EXPECT_FALSE(at_a.Merge(at_b));
  // Applied again where it is already: nothing changes.
  EXPECT_EQ(at_a.ApplyAt(read, dot, "v2", false, kMax), ha);
  EXPECT_EQ(at_a, at_b);
  // A later write saw it; the late second coordination changes nothing.
  SiblingSet later = base;
  later.ApplyAt(read, dot, "v2", false, kMax);
  later.Apply(later.Context(), "B", 3, "v3", false, kMax);
  SiblingSet expected = later;
  later.ApplyAt(read, dot, "v2", false, kMax);
  EXPECT_EQ(later, expected);
  EXPECT_EQ(Sorted(later), std::vector<std::string>{"v3"});
  // A write concurrent with it stays a sibling.
  SiblingSet concurrent = base;
  concurrent.Apply(read, "A", 4, "x", false, kMax);
  concurrent.ApplyAt(read, dot, "v2", false, kMax);
  EXPECT_EQ(Sorted(concurrent), (std::vector<std::string>{"v2", "x"}));
  // A dot below a counter the node already used elsewhere is kept as is.
  SiblingSet sparse = base;
  sparse.ApplyAt(CausalContext(), Dot{"C+h", 90, 5}, "p", false, kMax);
  sparse.ApplyAt(CausalContext(), Dot{"C+h", 80, 6}, "q", false, kMax);
  EXPECT_EQ(Sorted(sparse), (std::vector<std::string>{"p", "q", "v1"}));
}

TEST(SiblingSetTest, TombstoneHidesValueButKeepsContext) {
  SiblingSet s;
  s.Apply(CausalContext(), "A", 1, "v", false, kMax);
  s.Apply(s.Context(), "A", 2, "", true, kMax);
  EXPECT_TRUE(s.IsDeleted());
  EXPECT_TRUE(s.LiveValues().empty());
  EXPECT_EQ(s.Context().Max("A"), 2u);
  // A put with the delete's context supersedes the tombstone.
  s.Apply(s.Context(), "A", 3, "w", false, kMax);
  EXPECT_FALSE(s.IsDeleted());
  EXPECT_EQ(s.versions().size(), 1u);
}

TEST(SiblingSetTest, ConcurrentTombstoneAndValueKeepTheValue) {
  SiblingSet s;
  s.Apply(CausalContext(), "A", 1, "v", false, kMax);
  CausalContext old = s.Context();
  s.Apply(old, "A", 2, "", true, kMax);
  s.Apply(old, "A", 3, "w", false, kMax);
  EXPECT_FALSE(s.IsDeleted());
  EXPECT_EQ(Sorted(s), std::vector<std::string>{"w"});
  EXPECT_EQ(s.versions().size(), 2u);
}

TEST(SiblingSetTest, MergeReconcilesReplicas) {
  SiblingSet base;
  base.Apply(CausalContext(), "A", 1, "v1", false, kMax);
  SiblingSet r1 = base, r2 = base;
  r1.Apply(base.Context(), "A", 2, "left", false, kMax);
  r2.Apply(base.Context(), "B", 3, "right", false, kMax);
  SiblingSet m = r1;
  EXPECT_TRUE(m.Merge(r2));
  EXPECT_EQ(Sorted(m), (std::vector<std::string>{"left", "right"}));
  // Merging again, or merging a stale copy, changes nothing.
  EXPECT_FALSE(m.Merge(r2));
  EXPECT_FALSE(m.Merge(base));
  // The other order reconciles to the same set.
  SiblingSet m2 = r2;
  m2.Merge(r1);
  EXPECT_EQ(m, m2);
  // A stale replica catches up.
  SiblingSet stale = base;
  EXPECT_TRUE(stale.Merge(m));
  EXPECT_EQ(stale, m);
}

TEST(SiblingSetTest, CounterStaysAboveEverySeenDot) {
  SiblingSet s;
  s.Apply(CausalContext(), "A", 1, "x", false, kMax);
  s.Apply(CausalContext(), "A", 2, "y", false, kMax);
  s.Apply(CausalContext(), "A", 3, "z", false, kMax);
  EXPECT_EQ(s.versions().size(), 3u);
  std::vector<uint64_t> dots;
  for (const auto& v : s.versions()) dots.push_back(v.dot_counter);
  std::sort(dots.begin(), dots.end());
  EXPECT_EQ(dots, (std::vector<uint64_t>{1, 2, 3}));
}

TEST(SiblingSetTest, StoredContextIsTruncated) {
  VectorClock big;
  for (int i = 0; i < 20; ++i) big.Set("n" + std::to_string(i), 1, static_cast<uint64_t>(i));
  SiblingSet s;
  const Version& v = s.Apply(CausalContext(big), "A", 100, "v", false, 10);
  EXPECT_LE(v.History().clock().size(), 10u);
  EXPECT_EQ(v.History().Max("A"), 1u);
  // The newest entries survive.
  EXPECT_EQ(v.context.clock().Get("n19"), 1u);
  EXPECT_EQ(v.context.clock().Get("n0"), 0u);
}

TEST(SiblingSetTest, EncodeDecodeRoundTrip) {
  SiblingSet s;
  s.Apply(CausalContext(), "A", 1, std::string("bin\0ary", 7), false, kMax);
  s.Apply(CausalContext(), "B", 2, "", true, kMax);
  auto d = SiblingSet::Decode(s.Encode());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(*d, s);
  EXPECT_EQ(d->versions().size(), 2u);
}

TEST(SiblingSetTest, DecodeRejectsGarbage) {
  EXPECT_FALSE(SiblingSet::Decode("").ok());
  EXPECT_FALSE(SiblingSet::Decode("\x92\x03\x90").ok());  // unknown format 3
  EXPECT_FALSE(SiblingSet::Decode("hello").ok());
  std::string enc;
  {
    SiblingSet s;
    s.Apply(CausalContext(), "A", 1, "value", false, kMax);
    enc = s.Encode();
  }
  for (size_t n = 0; n < enc.size(); ++n) {
    EXPECT_FALSE(SiblingSet::Decode(enc.substr(0, n)).ok()) << "prefix of " << n;
  }
}

// Found by fuzzing: outside bytes may hold two versions of one event (the
// same dot) or a version another's context covers; such a set compared
// unequal to itself and listed the event twice. Decode builds the set as
// Apply and Merge do. A dot of counter 0 (covered by every context) or with
// no node is refused.
TEST(SiblingSetTest, DecodeKeepsOneVersionPerEventAndRefusesEmptyDots) {
  // [2, [[ctx, "A", 3, ts, false, "red"], [ctx, "A", 3, ts, false, "blue"]]]
  const std::string ctx = "\x92\x90\x90";  // [[], []]
  auto version = [&](const std::string& node, char counter, const std::string& value) {
    return "\x96" + ctx + std::string(1, static_cast<char>(0xa0 | node.size())) + node +
           std::string(1, counter) + "\x01\xc2\xc4" +
           std::string(1, static_cast<char>(value.size())) + value;
  };
  const std::string twice = "\x92\x02\x92" + version("A", 3, "red") + version("A", 3, "blue");
  auto set = SiblingSet::Decode(twice);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->versions().size(), 1u);
  EXPECT_EQ(*set, *set);
  auto again = SiblingSet::Decode(set->Encode());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *set);

  EXPECT_FALSE(SiblingSet::Decode("\x92\x02\x91" + version("A", 0, "zero")).ok());
  EXPECT_FALSE(SiblingSet::Decode("\x92\x02\x91" + version("", 1, "nameless")).ok());
}

// Regression: a writer's next put must not drop a sibling it never read.
// put A; put B blind (sibling); put C with A's context (drops A, keeps B);
// put D with C's reply context: B must survive.
TEST(SiblingSetTest, PutContextDoesNotClaimUnreadSiblings) {
  SiblingSet s;
  CausalContext a = s.Apply(CausalContext(), "N", 1, "A", false, kMax).History();
  s.Apply(CausalContext(), "N", 2, "B", false, kMax);
  CausalContext c = s.Apply(a, "N", 3, "C", false, kMax).History();
  EXPECT_EQ(Sorted(s), (std::vector<std::string>{"B", "C"}));
  s.Apply(c, "N", 4, "D", false, kMax);
  EXPECT_EQ(Sorted(s), (std::vector<std::string>{"B", "D"}));
  // With the context of a read of both, one put replaces both.
  s.Apply(s.Context(), "N", 5, "E", false, kMax);
  EXPECT_EQ(Sorted(s), std::vector<std::string>{"E"});
}

TEST(CausalContextTest, DotsFoldIntoTheClockWhenContiguous) {
  CausalContext c;
  c.Add("A", 2, 1);
  EXPECT_FALSE(c.Covers("A", 1));
  EXPECT_TRUE(c.Covers("A", 2));
  EXPECT_EQ(c.Max("A"), 2u);
  EXPECT_EQ(c.dots().size(), 1u);
  c.Add("A", 1, 2);  // fills the gap: both become the clock
  EXPECT_TRUE(c.dots().empty());
  EXPECT_EQ(c.clock().Get("A"), 2u);
  CausalContext d;
  d.Add("A", 4, 3);
  d.Add("B", 1, 4);
  c.Merge(d);
  EXPECT_TRUE(c.Covers("A", 4));
  EXPECT_FALSE(c.Covers("A", 3));
  EXPECT_EQ(c.clock().Get("B"), 1u);
  EXPECT_EQ(c.dots().size(), 1u);
}

TEST(ContextCodecTest, RoundTripAndRejects) {
  VectorClock clock;
  clock.Set("A", 3, 7);
  clock.Set("B", 1, 9);
  CausalContext c(clock);
  c.Add("A", 5, 11);  // not contiguous: stays a dot
  ASSERT_EQ(c.dots().size(), 1u);
  auto d = DecodeContext(EncodeContext(c));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, c);
  EXPECT_TRUE(DecodeContext("").ok());
  EXPECT_TRUE(DecodeContext("")->empty());
  auto bad = DecodeContext("not a context");
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsInvalidArgument());
}

TEST(ContextCodecTest, CoordinatorHintRoundTripsAndNeverEntersAVersion) {
  VectorClock clock;
  clock.Set("A", 2, 5);
  CausalContext c(clock);
  const std::string with_hint = EncodeContext(c, "node7");
  EXPECT_NE(with_hint, EncodeContext(c));

  std::string hint = "stale";
  auto d = DecodeContext(with_hint, &hint);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(*d, c);
  EXPECT_EQ(hint, "node7");
  // Without the out-parameter the hint is read and dropped.
  auto plain = DecodeContext(with_hint);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, c);
  // No hint: the out-parameter is cleared.
  ASSERT_TRUE(DecodeContext(EncodeContext(c), &hint).ok());
  EXPECT_EQ(hint, "");

  // A hint that is not a string, or a fourth item, is refused:
  // [clock, dots, 7] and [clock, dots, "n", "x"].
  const std::string plain_bytes = EncodeContext(c);
  ASSERT_EQ(static_cast<uint8_t>(plain_bytes[0]), 0x92);  // fixarray of 2
  std::string not_a_string = plain_bytes;
  not_a_string[0] = static_cast<char>(0x93);
  not_a_string += '\x07';
  EXPECT_TRUE(DecodeContext(not_a_string).status().IsInvalidArgument());
  std::string four_items = plain_bytes;
  four_items[0] = static_cast<char>(0x94);
  four_items += "\xa1n\xa1x";
  EXPECT_TRUE(DecodeContext(four_items).status().IsInvalidArgument());
  // A stored sibling set whose version context has the hint is refused: a
  // hint never enters a version.
  SiblingSet set;
  set.Apply(*d, "B", 100, "v", false, 10);
  std::string stored = set.Encode();
  const size_t at = stored.find(plain_bytes);
  ASSERT_NE(at, std::string::npos);
  stored.replace(at, plain_bytes.size(), with_hint);
  EXPECT_FALSE(SiblingSet::Decode(stored).ok());
}

}  // namespace
}  // namespace dynamo
