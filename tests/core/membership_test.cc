#include "dynamo/membership.h"

#include <gtest/gtest.h>

namespace dynamo {
namespace {

ClusterState Founded(const std::string& id) {
  ClusterState cs;
  cs.AddMember(id, "tcp://127.0.0.1:1", MemberState::kUp);
  cs.SetRing(Ring::Create(64, 3, id));
  return cs;
}

TEST(ClusterStateTest, MergeKeepsHigherMemberVersions) {
  ClusterState a = Founded("a");
  ClusterState b = a;
  b.AddMember("b", "tcp://127.0.0.1:2", MemberState::kJoining);
  EXPECT_TRUE(a.Merge(b));
  ASSERT_NE(a.Find("b"), nullptr);
  EXPECT_EQ(a.Find("b")->state, MemberState::kJoining);
  // A newer entry wins, an older one does not.
  b.Update("b", "tcp://127.0.0.1:2", MemberState::kUp);
  EXPECT_TRUE(a.Merge(b));
  EXPECT_EQ(a.Find("b")->state, MemberState::kUp);
  ClusterState stale = Founded("a");
  stale.AddMember("b", "tcp://127.0.0.1:2", MemberState::kJoining);
  EXPECT_FALSE(a.Merge(stale));
  EXPECT_EQ(a.Find("b")->state, MemberState::kUp);
  EXPECT_FALSE(a.Merge(a));
}

TEST(ClusterStateTest, MergeKeepsTheNewerRingAndBreaksTiesAlike) {
  ClusterState a = Founded("a");
  ClusterState b = a;
  Ring r = b.ring();
  ASSERT_TRUE(r.Join("b"));
  b.SetRing(r);
  EXPECT_TRUE(a.Merge(b));
  EXPECT_EQ(a.ring(), b.ring());
  // Two different rings of one version: both sides pick the same.
  ClusterState x = Founded("a"), y = Founded("a");
  Ring rx = x.ring(), ry = y.ring();
  rx.Join("x");
  ry.Join("y");
  x.SetRing(rx);
  y.SetRing(ry);
  ClusterState x2 = x, y2 = y;
  x2.Merge(y);
  y2.Merge(x);
  EXPECT_EQ(x2.ring(), y2.ring());
}

TEST(ClusterStateTest, AnEmptyRingNeverReplacesOne) {
  ClusterState a = Founded("a");
  ClusterState joining;
  joining.AddMember("j", "tcp://127.0.0.1:3", MemberState::kJoining);
  EXPECT_TRUE(a.Merge(joining));  // learns the member
  EXPECT_FALSE(a.ring().empty());
  EXPECT_TRUE(joining.Merge(a));  // learns the ring
  EXPECT_EQ(joining.ring(), a.ring());
}

TEST(ClusterStateTest, ClaimantIsTheSmallestRingMemberNotLeaving) {
  ClusterState cs = Founded("m");
  cs.AddMember("a", "tcp://127.0.0.1:4", MemberState::kJoining);  // not in the ring yet
  EXPECT_EQ(cs.Claimant(), "m");
  Ring r = cs.ring();
  r.Join("a");
  cs.SetRing(r);
  EXPECT_EQ(cs.Claimant(), "a");
  cs.Update("a", "tcp://127.0.0.1:4", MemberState::kLeaving);
  EXPECT_EQ(cs.Claimant(), "m");
  EXPECT_EQ(ClusterState().Claimant(), "");
}

TEST(ClusterStateTest, EncodeDecodeRoundTripAndRejects) {
  ClusterState cs = Founded("a");
  cs.AddMember("b", "tcp://127.0.0.1:2", MemberState::kLeaving);
  auto back = ClusterState::Decode(cs.Encode());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, cs);
  ClusterState joining;
  joining.AddMember("j", "tcp://127.0.0.1:3", MemberState::kJoining);
  auto j = ClusterState::Decode(joining.Encode());
  ASSERT_TRUE(j.ok());
  EXPECT_TRUE(j->ring().empty());
  const std::string enc = cs.Encode();
  for (size_t n = 0; n < enc.size(); ++n) {
    EXPECT_FALSE(ClusterState::Decode(enc.substr(0, n)).ok()) << n;
  }
  EXPECT_FALSE(ClusterState::Decode("garbage").ok());
}

}  // namespace
}  // namespace dynamo
