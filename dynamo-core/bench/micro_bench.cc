// Micro-benchmarks of the per-message CPU work: the wire codec, a sibling
// set's apply/encode/decode (what a node does per put), and key hashing.
// Run build/bin/dynamo_micro_bench; they are never timed assertions.
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

#include "dynamo/key_hash.h"
#include "dynamo/merkle.h"
#include "dynamo/transport/message.h"
#include "dynamo/transport/sim_loop.h"
#include "dynamo/versioning.h"
#include "node/background_share.h"
#include "node/request_metrics.h"

namespace {

using dynamo::wire::MsgType;

dynamo::wire::Request PutRequest() {
  dynamo::wire::Request req;
  req.type = MsgType::kPut;
  req.id = 123456789;
  req.key = "bench-0000012345";  // 16 bytes
  req.value.assign(100, 'v');
  req.quorum = 2;
  return req;
}

void BM_EncodePutRequest(benchmark::State& state) {
  const auto req = PutRequest();
  for (auto _ : state) benchmark::DoNotOptimize(dynamo::wire::EncodeRequest(req));
}
BENCHMARK(BM_EncodePutRequest);

void BM_DecodePutRequest(benchmark::State& state) {
  const std::string frame = dynamo::wire::EncodeRequest(PutRequest());
  dynamo::wire::RequestView out;
  for (auto _ : state) {
    benchmark::DoNotOptimize(dynamo::wire::DecodeRequest(frame, &out));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * frame.size()));
}
BENCHMARK(BM_DecodePutRequest);

// One loop turn's replica writes to one peer (a 300-byte sibling set each),
// sent as one BATCH and taken apart by the peer. Arg 0: each request
// encoded alone and the frames copied into a BATCH (how batches were built
// before); arg 1: encoded straight into the batch (wire::BatchWriter). The
// receiving side decodes the batch and every request in it, as views.
void BM_ReplicaPutBatch(benchmark::State& state) {
  constexpr int kRequests = 16;
  const std::string payload(300, 's');
  std::vector<std::string> keys;
  for (int i = 0; i < kRequests; ++i) keys.push_back("bench-key-" + std::to_string(i));
  const bool in_place = state.range(0) == 1;
  dynamo::wire::BatchWriter writer(MsgType::kBatch);
  dynamo::wire::RequestView batch, inner;
  for (auto _ : state) {
    dynamo::wire::Request copied;  // the old way: frames encoded apart, then copied in
    copied.type = MsgType::kBatch;
    for (int i = 0; i < kRequests; ++i) {
      dynamo::wire::RequestView rp;
      rp.type = MsgType::kReplicaPut;
      rp.id = static_cast<uint64_t>(i);
      rp.key = keys[static_cast<size_t>(i)];
      rp.payload = payload;
      rp.ring_version = 9;
      if (in_place) {
        writer.Add(rp);
      } else {
        copied.frames.push_back(dynamo::wire::EncodeRequest(rp));
      }
    }
    const std::string frame = in_place ? writer.Take(1) : dynamo::wire::EncodeRequest(copied);
    (void)dynamo::wire::DecodeRequest(frame, &batch);
    for (std::string_view f : batch.frames) {
      benchmark::DoNotOptimize(dynamo::wire::DecodeRequest(f, &inner));
    }
  }
  state.SetItemsProcessed(state.iterations() * kRequests);
}
BENCHMARK(BM_ReplicaPutBatch)->Arg(0)->Arg(1);

void BM_EncodeDecodePutReply(benchmark::State& state) {
  dynamo::wire::Reply rep;
  rep.type = MsgType::kPutReply;
  rep.id = 42;
  rep.context = dynamo::EncodeContext(dynamo::CausalContext(dynamo::VectorClock::FromEntries(
      {{"node1", 7, 1700000000000}, {"node2", 3, 1700000000001}, {"node3", 9, 1700000000002}})));
  dynamo::wire::Reply out;
  for (auto _ : state) {
    const std::string frame = dynamo::wire::EncodeReply(rep);
    benchmark::DoNotOptimize(dynamo::wire::DecodeReply(frame, &out));
  }
}
BENCHMARK(BM_EncodeDecodePutReply);

// A put as a node does it on a key holding `siblings` versions from three
// coordinators: decode the stored set, apply the write, encode it back.
void BM_SiblingSetPut(benchmark::State& state) {
  dynamo::SiblingSet set;
  const char* nodes[] = {"node1", "node2", "node3"};
  for (int i = 0; i < state.range(0); ++i) {
    set.Apply(dynamo::CausalContext(), nodes[i % 3], 1700000000000 + i, std::string(100, 'a' + i),
              false, 10);
  }
  const std::string stored = set.Encode();
  const dynamo::CausalContext context = set.Context();
  const std::string value(100, 'v');
  for (auto _ : state) {
    auto decoded = dynamo::SiblingSet::Decode(stored);
    decoded->Apply(context, "node1", 1700000001000, value, false, 10);
    benchmark::DoNotOptimize(decoded->Encode());
  }
}
BENCHMARK(BM_SiblingSetPut)->Arg(1)->Arg(3)->Arg(10);

void BM_SiblingSetApply(benchmark::State& state) {
  const std::string value(100, 'v');
  dynamo::SiblingSet set;
  set.Apply(dynamo::CausalContext(), "node1", 1700000000000, value, false, 10);
  for (auto _ : state) {
    const dynamo::CausalContext context = set.Context();
    benchmark::DoNotOptimize(set.Apply(context, "node1", 1700000000001, value, false, 10));
  }
}
BENCHMARK(BM_SiblingSetApply);

void BM_KeyHash(benchmark::State& state) {
  const std::string key = "bench-0000012345";
  for (auto _ : state) benchmark::DoNotOptimize(dynamo::KeyHash(key));
}
BENCHMARK(BM_KeyHash);

// What a write adds once its partition has an anti-entropy tree: the set's
// canonical digest, then the tree update.
void BM_SiblingSetDigest(benchmark::State& state) {
  dynamo::SiblingSet set;
  for (int i = 0; i < state.range(0); ++i) {
    set.Apply(dynamo::CausalContext(), "node-" + std::to_string(i), 1, std::string(100, 'v'), false,
              10);
  }
  for (auto _ : state) benchmark::DoNotOptimize(set.Digest());
}
BENCHMARK(BM_SiblingSetDigest)->Arg(1)->Arg(3);

void BM_MerkleTreeSet(benchmark::State& state) {
  dynamo::MerkleTree tree(dynamo::PartitionHashRange(0, 1));
  std::vector<std::string> keys;
  for (int i = 0; i < 4096; ++i) keys.push_back("bench-" + std::to_string(i));
  std::vector<uint64_t> hashes;
  for (const auto& k : keys) hashes.push_back(dynamo::KeyHash(k));
  uint64_t digest = 1;
  size_t i = 0;
  for (auto _ : state) {
    tree.Set(keys[i], hashes[i], ++digest);
    i = (i + 1) % keys.size();
  }
}
BENCHMARK(BM_MerkleTreeSet);

// What metrics add to each answered get, put or delete (DESIGN.md 3.9):
// reading the clock when it is taken and answered, one counter, one
// latency bucket, and the admission-control window (NodeContext::Answer).
void BM_RequestMetricsRecord(benchmark::State& state) {
  dynamo::RequestMetrics metrics;
  dynamo::SimNetwork net(1);
  dynamo::SimLoop loop(&net, "tcp://127.0.0.1:1", dynamo::Loop::EngineCalls::kAll);
  dynamo::BackgroundShare share(loop, 20);
  const dynamo::wire::Reply reply = dynamo::wire::Reply::Ack(1);
  for (auto _ : state) {
    dynamo::RequestStart start{dynamo::MetricOp::kPut, dynamo::MetricRole::kCoordinator,
                               std::chrono::steady_clock::now()};
    const auto elapsed = std::chrono::steady_clock::now() - start.at;
    metrics.Record(start, reply, elapsed);
    share.NoteForeground(true, std::chrono::duration<double, std::milli>(elapsed).count());
  }
  benchmark::DoNotOptimize(metrics.count(dynamo::MetricOp::kPut, dynamo::MetricRole::kCoordinator,
                                         dynamo::MetricResult::kOk));
}
BENCHMARK(BM_RequestMetricsRecord);

}  // namespace
