// Hinted handoff (paper 4.6): a stand-in keeps a down replica's write as a
// hint and deletes it only once the owner acknowledged it.
#include "sim_cluster.h"

namespace dynamo::test {
namespace {

using wire::MsgType;

TEST(HandoffTest, AStandInKeepsTheHintUntilTheOwnerAcknowledgedIt) {
  SimCluster cluster;
  cluster.Start(4);  // N=3: each key has a fourth node to stand in
  // A key, its replicas, the replica that will be down, and the stand-in.
  const std::string key = "handoff-key";
  const auto pref = cluster.node(1).context().PreferenceListFor(key);
  auto index = [](const std::string& id) { return std::stoi(id.substr(4)); };
  const int coordinator = index(pref[0]), owner = index(pref[1]);
  int standin = 0;
  for (int i = 1; i <= 4; ++i) {
    if (std::find(pref.begin(), pref.end(), SimCluster::Id(i)) == pref.end()) standin = i;
  }
  for (int i = 1; i <= 4; ++i) {
    if (i != owner) cluster.net.Isolate(SimCluster::Endpoint(owner), SimCluster::Endpoint(i));
  }
  wire::Reply r = cluster.Put(coordinator, key, "v");
  ASSERT_EQ(r.type, MsgType::kPutReply) << r.error_message;
  // The owner's copy went to the stand-in, kept apart from its own data.
  ASSERT_TRUE(cluster.RunUntil(
      [&] { return cluster.node(standin).handoff().snapshot().pending == 1; }, 2s));
  EXPECT_EQ(cluster.node(standin).handoff().stored(), 1u);
  EXPECT_TRUE(cluster.Local(standin, key).empty());
  EXPECT_TRUE(cluster.Local(owner, key).empty());

  // While the owner is unreachable, handoff ticks come and go; the hint stays.
  cluster.net.RunFor(2s);
  EXPECT_EQ(cluster.node(standin).handoff().snapshot().pending, 1u);
  EXPECT_EQ(cluster.node(standin).handoff().delivered(), 0u);

  // Reachable again: delivered, and deleted only after the owner has it.
  cluster.net.Heal();
  bool deleted_before_owner_had_it = false;
  ASSERT_TRUE(cluster.RunUntil(
      [&] {
        const bool gone = cluster.node(standin).handoff().snapshot().pending == 0;
        if (gone && cluster.Local(owner, key).empty()) deleted_before_owner_had_it = true;
        return gone;
      },
      10s));
  EXPECT_FALSE(deleted_before_owner_had_it);
  EXPECT_EQ(Values(cluster.Local(owner, key)), std::vector<std::string>{"v"});
  EXPECT_EQ(cluster.node(standin).handoff().delivered(), 1u);
  EXPECT_TRUE(cluster.Local(standin, key).empty());
}

TEST(HandoffTest, ALeavingStandInPassesItsHintsOnAsHints) {
  SimCluster cluster;
  cluster.Start(5);
  const std::string key = "leaving-standin-key";
  const auto pref = cluster.node(1).context().PreferenceListFor(key);
  auto index = [](const std::string& id) { return std::stoi(id.substr(4)); };
  const int coordinator = index(pref[0]), owner = index(pref[1]);
  for (int i = 1; i <= 5; ++i) {
    if (i != owner) cluster.net.Isolate(SimCluster::Endpoint(owner), SimCluster::Endpoint(i));
  }
  ASSERT_EQ(cluster.Put(coordinator, key, "v").type, MsgType::kPutReply);
  int standin = 0;
  ASSERT_TRUE(cluster.RunUntil(
      [&] {
        for (int i = 1; i <= 5; ++i) {
          if (cluster.node(i).handoff().snapshot().pending == 1) standin = i;
        }
        return standin != 0;
      },
      2s));
  // The stand-in leaves while the owner is still cut off: the owner still
  // replicates the key, so its copy must stay a hint somewhere, not be
  // handed to the replicas that already hold the write.
  wire::Request leave;
  leave.type = MsgType::kAdminLeave;
  ASSERT_EQ(cluster.Call(standin, leave).type, MsgType::kAck);
  int holder = 0;
  ASSERT_TRUE(cluster.RunUntil(
      [&] {
        holder = 0;
        for (int i = 1; i <= 5; ++i) {
          if (i != standin && cluster.node(i).handoff().snapshot().pending == 1) holder = i;
        }
        return holder != 0 && cluster.node(standin).handoff().snapshot().pending == 0;
      },
      20s));
  EXPECT_NE(holder, owner);
  // Back, the owner gets its copy from the hint (anti-entropy is off here).
  cluster.net.Heal();
  ASSERT_TRUE(cluster.RunUntil([&] { return !cluster.Local(owner, key).empty(); }, 20s));
  EXPECT_EQ(Values(cluster.Local(owner, key)), std::vector<std::string>{"v"});
}

}  // namespace
}  // namespace dynamo::test
