// Partition transfer (paper 4.9, 6.2): after a join, every key ends up on
// exactly the replicas of its new preference list.
#include "sim_cluster.h"

namespace dynamo::test {
namespace {

using wire::MsgType;

TEST(TransferTest, AfterAJoinEveryKeyIsHeldByExactlyItsNewReplicas) {
  SimCluster cluster;
  cluster.defaults.replicas = 2;
  cluster.Start(3);
  const int keys = 200;
  for (int i = 0; i < keys; ++i) {
    ASSERT_EQ(cluster.Put(1 + i % 3, "k" + std::to_string(i), "v").type, MsgType::kPutReply);
  }
  cluster.AddNode();
  ASSERT_TRUE(cluster.RunUntil([&] { return cluster.Converged(); }, 30s));
  auto placed = [&] {
    for (int i = 0; i < keys; ++i) {
      const std::string k = "k" + std::to_string(i);
      const auto pref = cluster.node(1).context().PreferenceListFor(k);
      for (int n = 1; n <= 4; ++n) {
        const bool replica = std::find(pref.begin(), pref.end(), SimCluster::Id(n)) != pref.end();
        if (cluster.Local(n, k).empty() == replica) return false;
      }
    }
    return true;
  };
  ASSERT_TRUE(cluster.RunUntil(placed, 60s));
  uint64_t moved = 0;
  for (int n = 1; n <= 3; ++n) moved += cluster.node(n).transfer().keys_transferred();
  EXPECT_GT(moved, 0u);
  EXPECT_GT(cluster.node(4).context().ring().OwnedBy(SimCluster::Id(4)), 0u);
  for (int n = 1; n <= 4; ++n) EXPECT_EQ(cluster.node(n).transfer().pending(), 0u) << n;
  // Every key still reads back.
  for (int i = 0; i < keys; i += 17) {
    wire::Reply r = cluster.Get(4, "k" + std::to_string(i));
    ASSERT_EQ(r.type, MsgType::kGetReply) << r.error_message;
    EXPECT_EQ(r.values, std::vector<std::string>{"v"});
  }
}

}  // namespace
}  // namespace dynamo::test
