// The coordinator (paper 4.5, 4.6): quorums, timeouts, read repair and
// siblings, on real nodes over a SimLoop network.
#include "dynamo/key_hash.h"
#include "sim_cluster.h"

namespace dynamo::test {
namespace {

using wire::MsgType;

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override { cluster.Start(3); }  // N=3: every node replicates every key
  SimCluster cluster;
};

TEST_F(CoordinatorTest, APutIsAnsweredOnceWReplicasAcknowledged) {
  cluster.loop(3).Pause();  // accepts nothing, answers nothing
  const auto start = cluster.net.Now();
  wire::Reply r = cluster.Put(1, "k", "v", "", /*w=*/2);
  const auto took = cluster.net.Now() - start;
  ASSERT_EQ(r.type, MsgType::kPutReply) << r.error_message;
  EXPECT_FALSE(r.context.empty());
  // Node 1's own write and node 2's ack made W=2: nobody waited for node 3.
  EXPECT_LT(took, std::chrono::milliseconds(cluster.defaults.request_timeout_ms));
  EXPECT_EQ(Values(cluster.Local(1, "k")), std::vector<std::string>{"v"});
  EXPECT_EQ(Values(cluster.Local(2, "k")), std::vector<std::string>{"v"});
  EXPECT_TRUE(cluster.Local(3, "k").empty());
}

TEST_F(CoordinatorTest, APutShortOfWFailsAfterTheTimeoutWithTheCount) {
  cluster.loop(2).Pause();
  cluster.loop(3).Pause();
  const auto start = cluster.net.Now();
  wire::Reply r = cluster.Put(1, "k", "v", "", /*w=*/2);
  ASSERT_EQ(r.type, MsgType::kError);
  EXPECT_GE(cluster.net.Now() - start,
            std::chrono::milliseconds(cluster.defaults.request_timeout_ms));
  EXPECT_EQ(r.error_code, static_cast<uint8_t>(Status::Code::kUnavailable));
  EXPECT_NE(r.error_message.find("quorum not reached: 1 of 2 needed replicas acknowledged"),
            std::string::npos)
      << r.error_message;
  // The coordinator's own replica took it: not undone, and the client is told.
  EXPECT_NE(r.error_message.find("keep the write, and it may reach the others later"),
            std::string::npos)
      << r.error_message;
  EXPECT_EQ(cluster.Local(1, "k").LiveValues().size(), 1u);
  // W=3 with one replica silent: 2 of 3.
  cluster.loop(2).Resume();
  r = cluster.Put(1, "k2", "v", "", /*w=*/3);
  ASSERT_EQ(r.type, MsgType::kError);
  EXPECT_NE(r.error_message.find("2 of 3 needed replicas acknowledged"), std::string::npos)
      << r.error_message;
}

TEST_F(CoordinatorTest, AGetShortOfRFailsAfterTheTimeoutWithTheCount) {
  ASSERT_EQ(cluster.Put(1, "k", "v").type, MsgType::kPutReply);
  cluster.loop(2).Pause();
  cluster.loop(3).Pause();
  wire::Reply r = cluster.Get(1, "k", /*r=*/2);
  ASSERT_EQ(r.type, MsgType::kError);
  EXPECT_NE(r.error_message.find("quorum not reached: 1 of 2 needed replicas answered (3 asked)"),
            std::string::npos)
      << r.error_message;
  r = cluster.Get(1, "k", /*r=*/1);
  ASSERT_EQ(r.type, MsgType::kGetReply) << r.error_message;
  EXPECT_EQ(r.values, std::vector<std::string>{"v"});
}

TEST_F(CoordinatorTest, ReadRepairSendsTheReconciledSetOnlyToStaleReplicas) {
  // Node 3 misses the write.
  cluster.net.Isolate(SimCluster::Endpoint(3), SimCluster::Endpoint(1));
  cluster.net.Isolate(SimCluster::Endpoint(3), SimCluster::Endpoint(2));
  ASSERT_EQ(cluster.Put(1, "k", "v").type, MsgType::kPutReply);
  cluster.net.RunFor(300ms);
  cluster.net.Heal();
  ASSERT_TRUE(cluster.Local(3, "k").empty());
  const uint64_t before = cluster.node(1).coordinator().stats().read_repairs;

  wire::Reply r = cluster.Get(1, "k", /*r=*/3);
  ASSERT_EQ(r.type, MsgType::kGetReply) << r.error_message;
  EXPECT_EQ(r.values, std::vector<std::string>{"v"});
  ASSERT_TRUE(cluster.RunUntil([&] { return !cluster.Local(3, "k").empty(); }, 2s));
  EXPECT_EQ(Values(cluster.Local(3, "k")), std::vector<std::string>{"v"});
  // One stale replica of three: one repair, none for nodes 1 and 2.
  EXPECT_EQ(cluster.node(1).coordinator().stats().read_repairs - before, 1u);
  // A second read finds nothing stale.
  ASSERT_EQ(cluster.Get(1, "k", 3).type, MsgType::kGetReply);
  cluster.net.RunFor(100ms);
  EXPECT_EQ(cluster.node(1).coordinator().stats().read_repairs - before, 1u);
}

TEST_F(CoordinatorTest, ConcurrentWritesThroughTwoCoordinatorsBecomeSiblings) {
  ASSERT_EQ(cluster.Put(1, "cart", "milk,eggs").type, MsgType::kPutReply);
  ASSERT_EQ(cluster.Put(2, "cart", "milk,bread").type, MsgType::kPutReply);
  wire::Reply r = cluster.Get(3, "cart", 3);
  ASSERT_EQ(r.type, MsgType::kGetReply) << r.error_message;
  std::sort(r.values.begin(), r.values.end());
  EXPECT_EQ(r.values, (std::vector<std::string>{"milk,bread", "milk,eggs"}));
  // A write with the read's context reconciles them.
  ASSERT_EQ(cluster.Put(3, "cart", "milk,bread,eggs", r.context).type, MsgType::kPutReply);
  r = cluster.Get(1, "cart", 3);
  EXPECT_EQ(r.values, std::vector<std::string>{"milk,bread,eggs"});
}

TEST_F(CoordinatorTest, WritesGoOnWhenAReplicaCrashesMidTraffic) {
  std::vector<std::string> acknowledged;
  for (int i = 0; i < 20; ++i) {
    const std::string k = "k" + std::to_string(i);
    if (i == 10) cluster.Crash(3);  // with requests of its own in flight
    wire::Reply r = cluster.Put(1 + i % 2, k, "v");
    ASSERT_EQ(r.type, MsgType::kPutReply) << i << ": " << r.error_message;
    acknowledged.push_back(k);
  }
  cluster.net.RunFor(2s);  // the crashed node's timers and calls never run
  for (const auto& k : acknowledged) {
    wire::Reply r = cluster.Get(2, k);
    ASSERT_EQ(r.type, MsgType::kGetReply) << k << ": " << r.error_message;
    EXPECT_EQ(r.values, std::vector<std::string>{"v"}) << k;
  }
}

TEST_F(CoordinatorTest, APutThroughANonReplicaIsForwardedToAReplica) {
  // Four nodes, N=3: some keys are not replicated on node 4.
  cluster.AddNode();
  ASSERT_TRUE(cluster.RunUntil([&] { return cluster.Converged(); }, 30s));
  std::string key;
  for (int i = 0; key.empty(); ++i) {
    const std::string k = "key" + std::to_string(i);
    const auto pref = cluster.node(4).context().PreferenceListFor(k);
    if (std::find(pref.begin(), pref.end(), SimCluster::Id(4)) == pref.end()) key = k;
  }
  const uint64_t before = cluster.node(4).coordinator().stats().forwarded;
  ASSERT_EQ(cluster.Put(4, key, "v").type, MsgType::kPutReply);
  EXPECT_EQ(cluster.node(4).coordinator().stats().forwarded - before, 1u);
  EXPECT_TRUE(cluster.Local(4, key).empty());  // the non-replica keeps no copy
}

// A key of node 4's that node 4 does not replicate (four nodes, N=3), and
// its preference list.
static std::string KeyNotOn4(SimCluster& cluster, std::vector<std::string>* pref) {
  for (int i = 0;; ++i) {
    const std::string k = "key" + std::to_string(i);
    *pref = cluster.node(4).context().PreferenceListFor(k);
    if (std::find(pref->begin(), pref->end(), SimCluster::Id(4)) == pref->end()) return k;
  }
}

// After a forwarded write of "once": no replica holds it as two versions,
// and a read of all three returns it.
static void ExpectOneVersion(SimCluster& cluster, const std::vector<std::string>& pref,
                             const std::string& key) {
  for (const std::string& id : pref) {
    const SiblingSet set = cluster.Local(std::stoi(id.substr(4)), key);
    EXPECT_LE(set.versions().size(), 1u) << id;
  }
  wire::Reply got = cluster.Get(4, key, 3);
  ASSERT_EQ(got.type, MsgType::kGetReply) << got.error_message;
  EXPECT_EQ(got.values, std::vector<std::string>{"once"});
}

TEST_F(CoordinatorTest, AForwardedWriteWhoseAnswerIsLostFallsBackAsOneVersion) {
  cluster.AddNode();
  ASSERT_TRUE(cluster.RunUntil([&] { return cluster.Converged(); }, 30s));
  std::vector<std::string> pref;
  const std::string key = KeyNotOn4(cluster, &pref);
  // The first replica takes the forwarded write, but its answer is lost:
  // node 4 hands the same write (same dot) to the next replica.
  const int first = std::stoi(pref[0].substr(4));
  cluster.net.Cut(SimCluster::Endpoint(first), SimCluster::Endpoint(4));
  const uint64_t before = cluster.node(4).coordinator().stats().forward_fallbacks;
  wire::Reply r = cluster.Put(4, key, "once");
  ASSERT_EQ(r.type, MsgType::kPutReply) << r.error_message;
  EXPECT_GE(cluster.node(4).coordinator().stats().forward_fallbacks - before, 1u);
  cluster.net.Heal();
  cluster.net.RunFor(2s);
  // One write, one version, wherever it went (the first replica applied it
  // too, and so did the replica that coordinated the fallback).
  ExpectOneVersion(cluster, pref, key);
}

TEST_F(CoordinatorTest, ManyForwardedWritesKeepAnOldCopyObsolete) {
  // Each forwarded write carries a dot the forwarder picked; a key's dots
  // must fold into one clock entry, or the context drops the oldest and an
  // old copy (a replica that was away, a hint) comes back as a sibling.
  cluster.AddNode();
  ASSERT_TRUE(cluster.RunUntil([&] { return cluster.Converged(); }, 30s));
  std::vector<std::string> pref;
  const std::string key = KeyNotOn4(cluster, &pref);
  wire::Reply r = cluster.Put(4, key, "v0");
  ASSERT_EQ(r.type, MsgType::kPutReply) << r.error_message;
  const int first = std::stoi(pref[0].substr(4));
  const SiblingSet old = cluster.Local(first, key);
  ASSERT_EQ(old.versions().size(), 1u);
  for (int i = 1; i <= 30; ++i) {
    r = cluster.Put(4, key, "v" + std::to_string(i), r.context);
    ASSERT_EQ(r.type, MsgType::kPutReply) << i << ": " << r.error_message;
  }
  SiblingSet now = cluster.Local(first, key);
  now.Merge(old);
  ASSERT_EQ(now.versions().size(), 1u);
  EXPECT_EQ(now.versions()[0].value, "v30");
}

TEST_F(CoordinatorTest, AForwardedOverwriteAnsweredTooLateIsNotCoordinatedAgain) {
  // An overwrite takes the coordinator's own new dot; a second coordinator
  // would make a second version, so it is not retried.
  cluster.AddNode();
  ASSERT_TRUE(cluster.RunUntil([&] { return cluster.Converged(); }, 30s));
  std::vector<std::string> pref;
  const std::string key = KeyNotOn4(cluster, &pref);
  const int first = std::stoi(pref[0].substr(4));
  cluster.net.Cut(SimCluster::Endpoint(first), SimCluster::Endpoint(4));
  wire::Request req;
  req.type = wire::MsgType::kPut;
  req.key = key;
  req.value = "once";
  req.flags = wire::kFlagOverwrite;
  wire::Reply r = cluster.Call(4, std::move(req));
  ASSERT_EQ(r.type, MsgType::kError);
  EXPECT_EQ(r.error_code, static_cast<uint8_t>(Status::Code::kTimeout));
  EXPECT_NE(r.error_message.find("may have been applied"), std::string::npos) << r.error_message;
  cluster.net.Heal();
  cluster.net.RunFor(2s);
  ExpectOneVersion(cluster, pref, key);
}

TEST_F(CoordinatorTest, AMemoryNodeThatRestartedDoesNotRepeatItsDots) {
  // Three nodes, N=3: node 1 coordinates every write sent to it.
  const std::string key = "restarted-key";
  ASSERT_EQ(cluster.Put(1, key, "before").type, MsgType::kPutReply);
  cluster.net.RunFor(1s);
  cluster.Crash(1);
  cluster.Restart(1);  // its memory engine comes back empty
  cluster.net.RunFor(2s);
  // A write concurrent with "before": its dot must be new, or the replicas
  // that saw "before" would take it for that write and drop it.
  ASSERT_EQ(cluster.Put(1, key, "after").type, MsgType::kPutReply);
  cluster.net.RunFor(1s);
  for (int i : {2, 3}) {
    EXPECT_EQ(Values(cluster.Local(i, key)), (std::vector<std::string>{"after", "before"}))
        << "node" << i;
  }
}

// Five nodes (N=3): a key node `coordinator` replicates (or, with
// replica=false, one it does not), its extended preference list as node
// numbers; the stand-ins are ext[3] and ext[4].
static std::string KeyFor(SimCluster& cluster, int coordinator, bool replica, std::vector<int>* ext,
                          int skip = 0) {
  for (int i = 0;; ++i) {
    const std::string k = "cart" + std::to_string(i);
    const Ring& ring = cluster.node(coordinator).context().ring();
    const auto ids = ring.ExtendedPreferenceList(PartitionOf(KeyHash(k), ring.partitions()));
    ext->clear();
    for (const auto& id : ids) ext->push_back(std::stoi(id.substr(4)));
    const bool is = std::find(ext->begin(), ext->begin() + 3, coordinator) != ext->begin() + 3;
    if (replica ? ext->at(0) == coordinator : (!is && ext->at(3) == coordinator)) {
      if (skip-- == 0) return k;
    }
  }
}

TEST_F(CoordinatorTest, ReadsThroughAPartitionOfTwoReplicasAskStandIns) {
  cluster.AddNode();
  cluster.AddNode();
  ASSERT_TRUE(cluster.RunUntil([&] { return cluster.Converged(); }, 30s));
  std::vector<int> ext2;
  const std::string during = KeyFor(cluster, 1, true, &ext2);
  // A key node 1 coordinates; its two other replicas go silent.
  ASSERT_EQ(cluster.Put(1, during, "v1").type, MsgType::kPutReply);
  std::vector<int> ext3;
  std::string untouched;
  for (int skip = 1; untouched.empty(); ++skip) {
    const std::string k = KeyFor(cluster, 1, true, &ext3, skip);
    if (std::equal(ext3.begin(), ext3.begin() + 3, ext2.begin())) untouched = k;
  }
  ASSERT_EQ(cluster.Put(1, untouched, "old", "", 3).type, MsgType::kPutReply);
  cluster.loop(ext2[1]).Pause();
  cluster.loop(ext2[2]).Pause();
  wire::Reply w = cluster.Put(1, during, "v2", cluster.Get(1, during, 1).context, 2);
  ASSERT_EQ(w.type, MsgType::kPutReply) << w.error_message;

  const auto stats0 = cluster.node(1).coordinator().stats();
  auto start0 = cluster.net.Now();
  wire::Reply r = cluster.Get(1, during, 2);
  ASSERT_EQ(r.type, MsgType::kGetReply) << r.error_message;
  EXPECT_EQ(r.values, std::vector<std::string>{"v2"});  // the stand-in's hint supersedes v1
  // A stand-in holding the key's hints counts at once: no wait for the
  // silent replicas' timeouts.
  EXPECT_LT(cluster.net.Now() - start0,
            std::chrono::milliseconds(cluster.defaults.request_timeout_ms));
  const auto stats1 = cluster.node(1).coordinator().stats();
  EXPECT_GE(stats1.standin_reads - stats0.standin_reads, 1u);
  EXPECT_GE(stats1.standin_answers - stats0.standin_answers, 1u);
  // The context names a replica as the next write's coordinator, never a
  // stand-in.
  std::string hint;
  ASSERT_TRUE(DecodeContext(r.context, &hint).ok());
  EXPECT_TRUE(std::find(ext2.begin(), ext2.begin() + 3, std::stoi(hint.substr(4))) !=
              ext2.begin() + 3)
      << hint;
  // Read repair goes to replicas only: no stand-in's engine got the key.
  cluster.net.RunFor(300ms);
  EXPECT_TRUE(cluster.Local(ext2[3], during).empty());
  EXPECT_TRUE(cluster.Local(ext2[4], during).empty());

  // A key of the same replicas not written since the cut: the stand-ins
  // hold nothing for it, which counts only once the silent replicas' reads
  // failed (the request timeout); then the one replica's copy is the answer.
  auto start = cluster.net.Now();
  r = cluster.Get(1, untouched, 2);
  ASSERT_EQ(r.type, MsgType::kGetReply) << r.error_message;
  EXPECT_EQ(r.values, std::vector<std::string>{"old"});
  EXPECT_GE(cluster.net.Now() - start,
            std::chrono::milliseconds(cluster.defaults.request_timeout_ms));
  // R=3 cannot be met by one replica and empty stand-ins... until the
  // silent replicas failed too: then it is, as Dynamo's first N healthy
  // nodes of the extended list.
  r = cluster.Get(1, untouched, 3);
  ASSERT_EQ(r.type, MsgType::kGetReply) << r.error_message;
  EXPECT_EQ(r.values, std::vector<std::string>{"old"});

  // Healed: the hints go home, and a read of all three replicas alone
  // returns the write.
  cluster.loop(ext2[1]).Resume();
  cluster.loop(ext2[2]).Resume();
  ASSERT_TRUE(cluster.RunUntil(
      [&] {
        for (int i = 1; i <= 5; ++i) {
          if (cluster.node(i).context().hints.pending() != 0) return false;
        }
        return true;
      },
      10s));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Values(cluster.Local(ext2[i], during)), std::vector<std::string>{"v2"}) << ext2[i];
  }
  r = cluster.Get(1, during, 3);
  ASSERT_EQ(r.type, MsgType::kGetReply) << r.error_message;
  EXPECT_EQ(r.values, std::vector<std::string>{"v2"});
}

TEST_F(CoordinatorTest, AnEmptyStandInDoesNotHideWhatSlowReplicasHold) {
  cluster.AddNode();
  cluster.AddNode();
  ASSERT_TRUE(cluster.RunUntil([&] { return cluster.Converged(); }, 30s));
  std::vector<int> ext;
  const std::string key = KeyFor(cluster, 1, true, &ext);
  wire::Reply w = cluster.Put(1, key, "v1", "", 3);
  ASSERT_EQ(w.type, MsgType::kPutReply) << w.error_message;
  // The two other replicas hold a newer version that node 1 missed.
  SiblingSet newer = cluster.Local(ext[1], key);
  Result<CausalContext> context = DecodeContext(w.context);
  ASSERT_TRUE(context.ok());
  newer.Apply(*context, "writer-elsewhere", 2, "v2", false, 10);
  for (int i : {ext[1], ext[2]}) {
    ASSERT_TRUE(cluster.node(i).context().store.Merge(key, newer).ok());
  }
  // They are slow (paused past their read deadline, not the request
  // timeout): the stand-ins asked meanwhile hold nothing for the key, and
  // node 1 does not answer with its older copy and theirs.
  cluster.loop(ext[1]).Pause();
  cluster.loop(ext[2]).Pause();
  wire::Request req;
  req.type = MsgType::kGet;
  req.id = 77;
  req.key = key;
  req.quorum = 2;
  cluster.net.ClientSend("slow-reader", SimCluster::Endpoint(1), req);
  const auto stats0 = cluster.node(1).coordinator().stats();
  cluster.net.RunFor(std::chrono::milliseconds(cluster.defaults.request_timeout_ms / 2));
  EXPECT_TRUE(cluster.net.TakeReplies("slow-reader").empty());
  EXPECT_GE(cluster.node(1).coordinator().stats().standin_reads - stats0.standin_reads, 2u);
  cluster.loop(ext[1]).Resume();
  cluster.loop(ext[2]).Resume();
  std::vector<wire::Reply> got;
  ASSERT_TRUE(cluster.RunUntil(
      [&] {
        for (auto& r : cluster.net.TakeReplies("slow-reader")) got.push_back(std::move(r));
        return !got.empty();
      },
      2s));
  ASSERT_EQ(got[0].type, MsgType::kGetReply) << got[0].error_message;
  EXPECT_EQ(got[0].values, std::vector<std::string>{"v2"});
  EXPECT_EQ(cluster.node(1).coordinator().stats().standin_answers, stats0.standin_answers);
}

TEST_F(CoordinatorTest, ACoordinatorThatIsTheStandInReadsItsOwnHints) {
  cluster.AddNode();
  cluster.AddNode();
  ASSERT_TRUE(cluster.RunUntil([&] { return cluster.Converged(); }, 30s));
  // A key of which node 5 is no replica but the first stand-in.
  std::vector<int> ext;
  const std::string key = KeyFor(cluster, 5, false, &ext);
  // Two replicas silent, and the other stand-in too: only node 5 holds a
  // hinted copy.
  for (int i : {ext[1], ext[2], ext[4]}) cluster.loop(i).Pause();
  // Forwarded to the first replica, which keeps a copy and hands a silent
  // replica's copy to node 5.
  wire::Reply w = cluster.Put(5, key, "v", "", 2);
  ASSERT_EQ(w.type, MsgType::kPutReply) << w.error_message;
  ASSERT_TRUE(
      cluster.RunUntil([&] { return !cluster.node(5).context().hints.ForKey(key).empty(); }, 2s));
  const auto stats0 = cluster.node(5).coordinator().stats();
  const auto start = cluster.net.Now();
  wire::Reply r = cluster.Get(5, key, 2);
  ASSERT_EQ(r.type, MsgType::kGetReply) << r.error_message;
  EXPECT_EQ(r.values, std::vector<std::string>{"v"});
  // The first replica's answer and node 5's own hints made R=2, before any
  // silent node's request timed out.
  EXPECT_LT(cluster.net.Now() - start,
            std::chrono::milliseconds(cluster.defaults.request_timeout_ms));
  EXPECT_GE(cluster.node(5).coordinator().stats().standin_answers - stats0.standin_answers, 1u);
  for (int i : {ext[1], ext[2], ext[4]}) cluster.loop(i).Resume();
}

TEST_F(CoordinatorTest, AStandInAnswersAReadFromItsHintsOnly) {
  // The peer side: REPLICA_GET with a hint answers what the hint store
  // holds for the key, whatever the owner; without one, the engine's copy.
  ASSERT_EQ(cluster.Put(1, "k", "v").type, MsgType::kPutReply);
  wire::Request req;
  req.type = MsgType::kReplicaGet;
  req.key = "k";
  req.node_id = SimCluster::Id(2);
  wire::Reply r = cluster.Call(3, req);
  ASSERT_EQ(r.type, MsgType::kReplicaGetReply) << r.error_message;
  EXPECT_TRUE(r.payload.empty());  // node 3 holds the key, but no hint of it
  SiblingSet hinted;
  hinted.Apply(CausalContext(), "elsewhere", 1, "h", false, 10);
  ASSERT_TRUE(cluster.node(3).context().hints.Add(SimCluster::Id(9), "k", hinted).ok());
  r = cluster.Call(3, req);
  ASSERT_EQ(r.type, MsgType::kReplicaGetReply) << r.error_message;
  auto set = SiblingSet::Decode(r.payload);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(Values(*set), std::vector<std::string>{"h"});
  req.node_id.clear();
  r = cluster.Call(3, req);
  set = SiblingSet::Decode(r.payload);
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(Values(*set), std::vector<std::string>{"v"});
}

}  // namespace
}  // namespace dynamo::test
