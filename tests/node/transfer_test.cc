// Partition transfer (paper 4.9, 6.2): after a join, every key ends up on
// exactly the replicas of its new preference list.
#include <map>

#include "node/rebuild.h"
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

// Four partitions of about 6,000 keys: a rebuild streams each in two
// batches, both in flight, two partitions at once from each source, and the
// restarted node (a memory engine, empty)
// ends with every key, pulled, not repaired.
TEST(TransferTest, ARestartedEmptyReplicaPullsItsPartitionInBatches) {
  SimCluster cluster;
  cluster.defaults.partitions = 4;
  cluster.defaults.anti_entropy_interval_ms = 0;  // only the rebuild can refill it
  cluster.Start(3);
  const int keys = 24000;
  for (int i = 0; i < keys; ++i) {
    ASSERT_EQ(cluster.Put(1 + i % 2, "k" + std::to_string(i), "v" + std::to_string(i)).type,
              MsgType::kPutReply);
  }
  ASSERT_TRUE(cluster.RunUntil([&] { return !cluster.Local(3, "k23999").empty(); }, 10s));
  cluster.Crash(3);
  cluster.Restart(3);
  EXPECT_TRUE(cluster.Local(3, "k0").empty());
  auto rebuilt = [&] { return cluster.node(3).rebuild().progress().completed >= 1; };
  ASSERT_TRUE(cluster.RunUntil(rebuilt, 60s));
  const Rebuild::Progress p = cluster.node(3).rebuild().progress();
  EXPECT_EQ(p.partitions_total, 4u);
  EXPECT_EQ(p.partitions_done, 4u);
  EXPECT_EQ(p.keys, static_cast<uint64_t>(keys));
  for (int i = 0; i < keys; ++i) {
    const std::string k = "k" + std::to_string(i);
    const SiblingSet set = cluster.Local(3, k);
    ASSERT_EQ(set.LiveValues().size(), 1u) << k;
    ASSERT_EQ(set.LiveValues()[0], "v" + std::to_string(i)) << k;
  }
  uint64_t sent = 0;
  size_t window = 0, pulls = 0;
  for (int n = 1; n <= 2; ++n) {
    sent += cluster.node(n).transfer().keys_transferred();
    window = std::max(window, cluster.node(n).transfer().max_batches_in_flight());
    pulls = std::max(pulls, cluster.node(n).transfer().max_pulls_at_once());
  }
  EXPECT_EQ(sent, static_cast<uint64_t>(keys));  // every key streamed once
  EXPECT_EQ(window, 2u);  // the second batch went before the first was acknowledged
  // Four streams over two sources: a source streams the pulls it was sent
  // at once, within its limit.
  EXPECT_GE(pulls, 2u);
  EXPECT_LE(pulls, Transfer::kPullsAtOnce);
}

// Four partitions of about 35,000 keys: each is more than a slice holds
// (32,768), so it is halved and sent in two slices of about 17,500 keys. The sender's status
// shows the share of the partition done growing to 1 and an ETA once some
// is done; every key arrives once.
TEST(TransferTest, APartitionLargerThanASliceGoesInHalvesWithItsShareAndEtaShown) {
  SimCluster cluster;
  cluster.defaults.partitions = 4;
  cluster.Start(3);
  const int keys = 140000;
  for (int i = 0; i < keys; ++i) {
    ASSERT_EQ(cluster.Put(1 + i % 2, "k" + std::to_string(i), "v").type, MsgType::kPutReply);
  }
  ASSERT_TRUE(cluster.RunUntil([&] { return !cluster.Local(3, "k139999").empty(); }, 10s));
  cluster.Crash(3);
  cluster.Restart(3);
  std::map<std::pair<int, uint32_t>, double> last_done;  // (sender, partition) -> done
  bool halfway = false, regressed = false, bad_eta = false;
  auto rebuilt = [&] {
    for (int n = 1; n <= 2; ++n) {
      const auto t = cluster.node(n).transfer().sending();
      if (!t) continue;
      double& last = last_done[{n, t->partition}];
      regressed = regressed || t->done < last || t->done > 1;
      last = t->done;
      if (t->done > 0 && t->done < 1) halfway = true;
      bad_eta = bad_eta || (t->done > 0) != (t->eta_s >= 0);
    }
    return cluster.node(3).rebuild().progress().completed >= 1;
  };
  bool finished = false;  // looked at every virtual millisecond: RunUntil's 10 ms miss it all
  for (auto waited = 0ms; waited < 120s && !finished; waited += 1ms) {
    finished = rebuilt();
    cluster.net.RunFor(1ms);
  }
  ASSERT_TRUE(finished);
  EXPECT_TRUE(halfway);  // seen part-way through a partition
  EXPECT_FALSE(regressed);
  EXPECT_FALSE(bad_eta);  // an ETA exactly when something is done
  uint64_t sent = 0;
  for (int n = 1; n <= 2; ++n) sent += cluster.node(n).transfer().keys_transferred();
  EXPECT_EQ(sent, static_cast<uint64_t>(keys));
  for (int i = 0; i < keys; i += 97) {
    EXPECT_FALSE(cluster.Local(3, "k" + std::to_string(i)).empty()) << i;
  }
}

}  // namespace
}  // namespace dynamo::test
