// Metrics (DESIGN.md 3.9) and admission control (paper 6.5): the pieces
// alone (histograms, results, the text format, the background share), and
// on a simulated cluster, a throttled node's hint delivery that pauses and
// still finishes. tests/integration/test_metrics.py scrapes real nodes.
#include <gtest/gtest.h>

#include <string>

#include "node/background_share.h"
#include "node/request_metrics.h"
#include "node/status_report.h"
#include "sim_cluster.h"

namespace dynamo::test {
namespace {

using wire::MsgType;

TEST(FixedHistogramTest, CountsEachValueInTheFirstBucketWhoseBoundHoldsIt) {
  FixedHistogram<3> h({10, 20, 30});
  for (uint64_t v : {0, 10, 11, 20, 30, 31, 1000}) h.Add(v);
  EXPECT_EQ(h.bucket(0), 2u);  // 0, 10
  EXPECT_EQ(h.bucket(1), 2u);  // 11, 20
  EXPECT_EQ(h.bucket(2), 1u);  // 30
  EXPECT_EQ(h.bucket(3), 2u);  // +Inf: 31, 1000
  EXPECT_EQ(h.count(), 7u);
  EXPECT_EQ(h.sum(), 0u + 10 + 11 + 20 + 30 + 31 + 1000);
}

TEST(RequestMetricsTest, ResultsComeFromTheReply) {
  wire::Reply found;
  found.type = MsgType::kGetReply;
  found.found = true;
  wire::Reply missing = found;
  missing.found = false;
  EXPECT_EQ(RequestMetrics::ResultOf(found), MetricResult::kOk);
  EXPECT_EQ(RequestMetrics::ResultOf(missing), MetricResult::kNotFound);
  EXPECT_EQ(RequestMetrics::ResultOf(wire::Reply::Ack(1)), MetricResult::kOk);
  EXPECT_EQ(RequestMetrics::ResultOf(wire::Reply::Error(1, Status::InvalidArgument("big"))),
            MetricResult::kRejected);
  EXPECT_EQ(RequestMetrics::ResultOf(wire::Reply::Error(1, Status::NotAuthorized("no"))),
            MetricResult::kRejected);
  EXPECT_EQ(RequestMetrics::ResultOf(wire::Reply::Error(1, Status::Unavailable("quorum"))),
            MetricResult::kUnavailable);
  EXPECT_EQ(RequestMetrics::ResultOf(wire::Reply::Error(1, Status::Timeout("late"))),
            MetricResult::kUnavailable);
  EXPECT_EQ(RequestMetrics::ResultOf(wire::Reply::Error(1, Status::IOError("disk"))),
            MetricResult::kError);
}

TEST(RequestMetricsTest, RecordsCountAndLatencyPerOperationAndRole) {
  RequestMetrics m;
  RequestStart put{MetricOp::kPut, MetricRole::kCoordinator, {}};
  m.Record(put, wire::Reply::Ack(1), std::chrono::microseconds(300));
  m.Record(put, wire::Reply::Error(2, Status::Unavailable("q")), std::chrono::seconds(20));
  EXPECT_EQ(m.count(MetricOp::kPut, MetricRole::kCoordinator, MetricResult::kOk), 1u);
  EXPECT_EQ(m.count(MetricOp::kPut, MetricRole::kCoordinator, MetricResult::kUnavailable), 1u);
  EXPECT_EQ(m.count(MetricOp::kPut, MetricRole::kReplica, MetricResult::kOk), 0u);
  const auto& h = m.latency(MetricOp::kPut, MetricRole::kCoordinator);
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.bucket(2), 1u);                        // 300 us: at most 500 us
  EXPECT_EQ(h.bucket(RequestMetrics::kBounds), 1u);  // 20 s: +Inf
  EXPECT_EQ(m.latency(MetricOp::kGet, MetricRole::kCoordinator).count(), 0u);
}

TEST(PromWriterTest, WritesFamiliesSamplesAndCumulativeBuckets) {
  PromWriter w;
  w.Family("dynamo_x_total", "counter", "Things.");
  w.Sample("dynamo_x_total", PromWriter::Label("who", "a\"b\\c\nd"), uint64_t{3});
  FixedHistogram<2> h({1000, 2000});
  h.Add(500);
  h.Add(1500);
  h.Add(9000);
  w.Family("dynamo_y_seconds", "histogram", "Times.");
  w.Histogram("dynamo_y_seconds", PromWriter::Label("op", "get"), h, 1e6);
  EXPECT_EQ(w.text(),
            "# HELP dynamo_x_total Things.\n"
            "# TYPE dynamo_x_total counter\n"
            "dynamo_x_total{who=\"a\\\"b\\\\c\\nd\"} 3\n"
            "# HELP dynamo_y_seconds Times.\n"
            "# TYPE dynamo_y_seconds histogram\n"
            "dynamo_y_seconds_bucket{op=\"get\",le=\"0.001\"} 1\n"
            "dynamo_y_seconds_bucket{op=\"get\",le=\"0.002\"} 2\n"
            "dynamo_y_seconds_bucket{op=\"get\",le=\"+Inf\"} 3\n"
            "dynamo_y_seconds_sum{op=\"get\"} 0.011\n"
            "dynamo_y_seconds_count{op=\"get\"} 3\n");
}

// ---- admission control

TEST(BackgroundShareTest, SlowClientsCutTheShareAndItGrowsBackWhenTheyAreFast) {
  SimNetwork net(1);
  SimLoop loop(&net, "tcp://127.0.0.1:1", Loop::EngineCalls::kAll);
  BackgroundShare share(loop, /*target_p99_ms=*/10);
  EXPECT_EQ(share.share(), 1.0);
  EXPECT_EQ(share.PauseAfter(std::chrono::milliseconds(50)).count(), 0);

  // 2% of the writes take 40 ms: the p99 is above the target.
  for (int i = 0; i < 98; ++i) share.NoteForeground(true, 1.0);
  for (int i = 0; i < 2; ++i) share.NoteForeground(true, 40.0);
  share.Adjust();
  EXPECT_EQ(share.share(), 0.5);
  EXPECT_GE(share.last_p99_ms(true), 40.0);
  EXPECT_EQ(share.cuts(), 1u);
  // Half the time: a step of 20 ms is followed by a pause of 20 ms.
  EXPECT_EQ(share.PauseAfter(std::chrono::milliseconds(20)).count(), 20);
  EXPECT_EQ(share.paused_ms(), 20u);

  // Reads alone slow enough cut it too; never below the floor.
  for (int round = 0; round < 10; ++round) {
    share.NoteForeground(false, 500.0);
    share.Adjust();
  }
  EXPECT_EQ(share.share(), BackgroundShare::kMinShare);
  EXPECT_GT(share.PauseAfter(std::chrono::milliseconds(1)).count(), 0);

  // 1% slow is within the p99: the share grows back, a tenth at a time.
  for (int i = 0; i < 99; ++i) share.NoteForeground(false, 1.0);
  share.NoteForeground(false, 500.0);
  share.Adjust();
  EXPECT_NEAR(share.share(), BackgroundShare::kMinShare + BackgroundShare::kGrowth, 1e-9);
  // No client at all: nothing to yield to.
  for (int i = 0; i < 20; ++i) share.Adjust();
  EXPECT_EQ(share.share(), 1.0);
  EXPECT_EQ(share.last_p99_ms(false), 0.0);
}

TEST(BackgroundShareTest, ATargetOfZeroTurnsItOff) {
  SimNetwork net(1);
  SimLoop loop(&net, "tcp://127.0.0.1:1", Loop::EngineCalls::kAll);
  BackgroundShare share(loop, 0);
  for (int i = 0; i < 100; ++i) share.NoteForeground(true, 10000.0);
  share.Adjust();
  EXPECT_EQ(share.share(), 1.0);
  EXPECT_EQ(share.PauseAfter(std::chrono::seconds(1)).count(), 0);
}

// A stand-in whose clients are slow delivers its hints in paused steps,
// and still delivers them all.
TEST(BackgroundShareTest, AThrottledStandInStillDeliversEveryHint) {
  SimCluster cluster;
  cluster.Start(4);  // no anti-entropy (SimCluster's default): the pauses are hint delivery's
  // Keys whose replicas are 1, 2, 3 (node 4 stands in for node 3's copy).
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < 600 && i < 100000; ++i) {
    const std::string k = "throttle-" + std::to_string(i);
    const auto pref = cluster.node(1).context().PreferenceListFor(k);
    if (pref[0] == SimCluster::Id(1) && pref[2] == SimCluster::Id(3) &&
        std::find(pref.begin(), pref.end(), SimCluster::Id(4)) == pref.end()) {
      keys.push_back(k);
    }
  }
  ASSERT_EQ(keys.size(), 600u);
  for (int i = 1; i <= 4; ++i) {
    if (i != 3) cluster.net.Isolate(SimCluster::Endpoint(3), SimCluster::Endpoint(i));
  }
  for (const auto& k : keys) ASSERT_EQ(cluster.Put(1, k, "v").type, MsgType::kPutReply);
  BackgroundShare& share = cluster.node(4).context().background;
  ASSERT_TRUE(cluster.RunUntil(
      [&] { return cluster.node(4).handoff().snapshot().pending == keys.size(); }, 10s));

  // Clients of node 4 are slow: keep its share at the floor.
  auto slow_clients = [&] {
    for (int i = 0; i < 10; ++i) share.NoteForeground(false, 1000.0);
  };
  for (int i = 0; i < 10; ++i) {
    slow_clients();
    share.Adjust();
  }
  ASSERT_EQ(share.share(), BackgroundShare::kMinShare);
  cluster.net.Heal();
  ASSERT_TRUE(cluster.RunUntil(
      [&] {
        slow_clients();
        return cluster.node(4).handoff().snapshot().pending == 0;
      },
      120s))
      << cluster.node(4).handoff().snapshot().pending << " hints left";
  EXPECT_GT(share.paused_ms(), 0u);
  EXPECT_LT(share.share(), 1.0);
  EXPECT_EQ(cluster.node(4).handoff().delivered(), keys.size());
  for (const auto& k : keys) EXPECT_EQ(Values(cluster.Local(3, k)), std::vector<std::string>{"v"});
}

}  // namespace
}  // namespace dynamo::test
