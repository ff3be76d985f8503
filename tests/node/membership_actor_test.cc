// Membership (paper 4.8): joins through a seed, gossip until every node sees
// the same ring, an administrator's remove, and the view kept on disk.
#include "sim_cluster.h"

namespace dynamo::test {
namespace {

using wire::MsgType;

TEST(MembershipActorTest, NodesJoinThroughASeedAndAgreeOnTheRing) {
  SimCluster cluster;
  cluster.Start(3);
  const Ring& ring = cluster.node(2).context().ring();
  EXPECT_EQ(ring.nodes().size(), 3u);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_GT(ring.OwnedBy(SimCluster::Id(i)), 0u) << i;
    const Member* m = cluster.node(1).context().cluster.Find(SimCluster::Id(i));
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->state, MemberState::kUp);
    EXPECT_EQ(m->endpoint, SimCluster::Endpoint(i));
  }
}

TEST(MembershipActorTest, ARemovedMemberLeavesEveryRingAndTheViewIsDurable) {
  SimCluster cluster;
  cluster.Start(3);
  cluster.loop(3).Pause();  // dead, as far as anyone can tell
  wire::Request remove;
  remove.type = MsgType::kAdminRemove;
  remove.node_id = SimCluster::Id(3);
  wire::Reply r = cluster.Call(2, remove);
  ASSERT_EQ(r.type, MsgType::kAck) << r.error_message;
  ASSERT_TRUE(cluster.RunUntil(
      [&] {
        for (int i = 1; i <= 2; ++i) {
          if (cluster.node(i).context().ring().Contains(SimCluster::Id(3))) return false;
        }
        return true;
      },
      10s));
  EXPECT_EQ(cluster.node(1).context().cluster.Find(SimCluster::Id(3))->state,
            MemberState::kRemoved);
  // Removing an unknown member, or oneself, is refused with a reason.
  remove.node_id = "nobody";
  r = cluster.Call(1, remove);
  ASSERT_EQ(r.type, MsgType::kError);
  EXPECT_NE(r.error_message.find("no member named 'nobody'"), std::string::npos);
  remove.node_id = SimCluster::Id(1);
  r = cluster.Call(1, remove);
  ASSERT_EQ(r.type, MsgType::kError);
  EXPECT_NE(r.error_message.find("cannot remove itself"), std::string::npos);

  // The view on disk (written on a worker) is the one in memory.
  cluster.net.RunFor(200ms);
  NodeOptions o = cluster.node(1).context().options;
  ClusterState loaded;
  {
    std::ifstream in(o.data_dir + "/cluster.state", std::ios::binary);
    ASSERT_TRUE(in);
    std::stringstream buf;
    buf << in.rdbuf();
    auto decoded = ClusterState::Decode(buf.str());
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    loaded = std::move(decoded).value();
  }
  EXPECT_TRUE(loaded.ring() == cluster.node(1).context().ring());
  EXPECT_EQ(loaded.Find(SimCluster::Id(3))->state, MemberState::kRemoved);
}

}  // namespace
}  // namespace dynamo::test
