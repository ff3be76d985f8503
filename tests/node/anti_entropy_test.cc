// Anti-entropy (paper 4.7): an exchange repairs exactly the keys whose
// version sets differ, both ways, and leaves the others alone.
#include "sim_cluster.h"

namespace dynamo::test {
namespace {

using wire::MsgType;

TEST(AntiEntropyTest, ExchangesRepairExactlyTheDifferingKeys) {
  SimCluster cluster;
  cluster.defaults.replicas = 2;  // two nodes, both replicas of every key
  cluster.defaults.read_quorum = cluster.defaults.write_quorum = 2;
  cluster.Start(2);
  std::map<std::string, std::string> contexts;
  for (int i = 0; i < 40; ++i) {
    const std::string k = "same" + std::to_string(i);
    wire::Reply r = cluster.Put(1, k, "v" + std::to_string(i));
    ASSERT_EQ(r.type, MsgType::kPutReply) << r.error_message;
    contexts[k] = r.context;
  }
  // Behind replication's back: 5 keys only node 2 holds, and 3 keys where
  // node 2 holds a newer version than node 1.
  LocalStore& store2 = cluster.node(2).context().store;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        store2.Write("only2-" + std::to_string(i), CausalContext(), "node2", "x", false).ok());
  }
  for (int i = 0; i < 3; ++i) {
    const std::string k = "same" + std::to_string(i);
    auto ctx = DecodeContext(contexts[k]);
    ASSERT_TRUE(ctx.ok());
    ASSERT_TRUE(store2.Write(k, *ctx, "node2", "newer", false).ok());
  }
  const SiblingSet untouched1 = cluster.Local(1, "same10"), untouched2 = cluster.Local(2, "same10");

  // Anti-entropy on node 1 only (two nodes exchanging the same partition at
  // once would both repair it): every 20 ms, one partition exchange.
  cluster.node(1).context().options.anti_entropy_interval_ms = 20;
  cluster.node(1).anti_entropy().Start();
  auto repaired = [&] { return cluster.node(1).anti_entropy().stats().keys_repaired; };
  auto converged = [&] {
    for (int i = 0; i < 5; ++i) {
      if (Values(cluster.Local(1, "only2-" + std::to_string(i))) != std::vector<std::string>{"x"}) {
        return false;
      }
    }
    for (int i = 0; i < 3; ++i) {
      if (Values(cluster.Local(1, "same" + std::to_string(i))) !=
          std::vector<std::string>{"newer"}) {
        return false;
      }
    }
    return true;
  };
  ASSERT_TRUE(cluster.RunUntil(converged, 20s));
  // Two full rounds more: nothing else differs, so nothing else is repaired.
  const uint64_t rounds = cluster.node(1).anti_entropy().stats().rounds;
  ASSERT_TRUE(cluster.RunUntil(
      [&] { return cluster.node(1).anti_entropy().stats().rounds >= rounds + 2; }, 20s));
  EXPECT_EQ(repaired(), 8u);
  // 8 keys: 5 fetched from node 2, 3 newer versions fetched; nothing pushed.
  EXPECT_GT(cluster.node(1).anti_entropy().stats().partitions_differing, 0u);
  EXPECT_EQ(Values(cluster.Local(2, "only2-0")), std::vector<std::string>{"x"});
  // A key that did not differ was not rewritten on either side.
  EXPECT_EQ(cluster.Local(1, "same10").Encode(), untouched1.Encode());
  EXPECT_EQ(cluster.Local(2, "same10").Encode(), untouched2.Encode());
  // The newer version replaced the older one: no sibling.
  EXPECT_EQ(Values(cluster.Local(1, "same0")), std::vector<std::string>{"newer"});
}

TEST(AntiEntropyTest, NoExchangeWhileClientsWaitLongerThanTheYieldThreshold) {
  SimCluster cluster;
  cluster.defaults.replicas = 2;
  cluster.Start(2);
  AntiEntropy& ae = cluster.node(1).anti_entropy();
  cluster.node(1).context().options.anti_entropy_interval_ms = 20;
  cluster.node(1).context().options.anti_entropy_yield_ms = 50;
  ae.Start();
  // Slow foreground requests keep coming: every look yields.
  for (int i = 0; i < 80; ++i) {
    ae.NoteForegroundLatency(200);
    cluster.net.RunFor(5ms);
  }
  EXPECT_GT(ae.stats().yields, 5u);
  EXPECT_EQ(ae.stats().exchanges, 0u);
  // Fast ones again: exchanges resume.
  for (int i = 0; i < 20; ++i) {
    ae.NoteForegroundLatency(1);
    cluster.net.RunFor(20ms);
  }
  EXPECT_GT(ae.stats().exchanges, 0u);
}

}  // namespace
}  // namespace dynamo::test
