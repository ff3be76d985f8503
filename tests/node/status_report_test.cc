// StatusReport: STATUS and RING as DESIGN.md 3.2 and docs/protocol.md name
// their fields, read off real nodes on a SimLoop network.
#include <nlohmann/json.hpp>

#include "sim_cluster.h"

namespace dynamo::test {
namespace {

using wire::MsgType;

nlohmann::json Document(const wire::Reply& r) {
  return nlohmann::json::from_msgpack(r.status_msgpack);
}

TEST(StatusReportTest, StatusNamesTheNodeItsMembersAndItsCounters) {
  SimCluster cluster;
  cluster.Start(3);
  ASSERT_EQ(cluster.Put(1, "k", "v").type, MsgType::kPutReply);
  wire::Request req;
  req.type = MsgType::kStatus;
  wire::Reply r = cluster.Call(2, req);
  ASSERT_EQ(r.type, MsgType::kStatusReply) << r.error_message;
  const nlohmann::json j = Document(r);
  EXPECT_EQ(j["node_id"], "node2");
  EXPECT_EQ(j["endpoint"], SimCluster::Endpoint(2));
  EXPECT_EQ(j["backend"], "memory");
  EXPECT_EQ(j["replicas"], 3);
  EXPECT_EQ(j["read_quorum"], 2);
  EXPECT_EQ(j["write_quorum"], 2);
  EXPECT_EQ(j["partitions"], 16);
  EXPECT_EQ(j["under_replicated"], false);
  ASSERT_EQ(j["members"].size(), 3u);
  for (const auto& m : j["members"]) EXPECT_EQ(m["state"], "up") << m.dump();
  EXPECT_EQ(j["engine"]["engine"], "memory");
  EXPECT_EQ(j["engine"]["keys"], 1);  // node 2 is a replica of every key
  for (const char* field : {"requests", "errors", "malformed", "forwarded", "read_repairs",
                            "keys_transferred", "transfers_pending", "hints_pending"}) {
    EXPECT_TRUE(j.contains(field)) << field;
  }
  for (const char* field : {"stored", "delivered", "dropped", "sent", "bytes"}) {
    EXPECT_TRUE(j["hints"].contains(field)) << field;
  }
  for (const char* field :
       {"exchanges", "keys_repaired", "partitions_differing", "rounds", "yields", "enabled"}) {
    EXPECT_TRUE(j["anti_entropy"].contains(field)) << field;
  }
  EXPECT_GE(j["requests"].get<uint64_t>(), 2u);  // the replica put and this status

  // A member this node cannot reach is "down" in its own view.
  cluster.loop(3).Pause();
  ASSERT_TRUE(cluster.RunUntil(
      [&] {
        nlohmann::json now = Document(cluster.Call(2, req));
        for (const auto& m : now["members"]) {
          if (m["node_id"] == "node3") return m["state"] == "down";
        }
        return false;
      },
      10s));
}

TEST(StatusReportTest, RingNamesEveryPreferenceListEndpointAndDownMember) {
  SimCluster cluster;
  cluster.Start(3);
  wire::Request req;
  req.type = MsgType::kRing;
  wire::Reply r = cluster.Call(1, req);
  ASSERT_EQ(r.type, MsgType::kRingReply) << r.error_message;
  nlohmann::json j = Document(r);
  EXPECT_EQ(j["partitions"], 16);
  EXPECT_EQ(j["replicas"], 3);
  ASSERT_EQ(j["owners"].size(), 16u);
  const Ring& ring = cluster.node(1).context().ring();
  for (uint32_t p = 0; p < 16; ++p) {
    EXPECT_EQ(j["owners"][p].get<std::vector<std::string>>(), ring.PreferenceList(p)) << p;
  }
  for (int i = 1; i <= 3; ++i)
    EXPECT_EQ(j["endpoints"][SimCluster::Id(i)], SimCluster::Endpoint(i));
  EXPECT_TRUE(j["down"].empty());
  cluster.loop(2).Pause();
  ASSERT_TRUE(cluster.RunUntil(
      [&] {
        nlohmann::json now = Document(cluster.Call(1, req));
        return now["down"] == nlohmann::json::array({"node2"});
      },
      10s));
}

}  // namespace
}  // namespace dynamo::test
