// Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/) with
// the real encoders and stores, so the fuzzers start from valid inputs:
//   make_corpus DIR
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "antientropy/tree_messages.h"
#include "dynamo/membership.h"
#include "dynamo/ring.h"
#include "dynamo/transport/message.h"
#include "dynamo/versioning.h"
#include "file_engine.h"
#include "handoff/hint_store.h"

namespace fs = std::filesystem;
using namespace dynamo;

namespace {

fs::path root;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::create_directories(root / target);
  std::ofstream out(root / target / name, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

SiblingSet TwoSiblings() {
  SiblingSet set;
  set.Apply(CausalContext(), "node1~a", 1000, "red", false, 10);
  set.Apply(CausalContext(), "node2~b", 1001, std::string("\0bin\xff", 5), false, 10);
  return set;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus DIR\n");
    return 2;
  }
  root = argv[1];

  // Requests and replies.
  wire::Request put;
  put.type = wire::MsgType::kPut;
  put.id = 7;
  put.key = "cart:42";
  put.value = "apples";
  put.context = EncodeContext(TwoSiblings().Context(), "node1");
  put.quorum = 2;
  put.flags = wire::kFlagForwarded;
  Write("fuzz_request", "put", wire::EncodeRequest(put));
  wire::Request get;
  get.type = wire::MsgType::kGet;
  get.id = 8;
  get.key = "cart:42";
  Write("fuzz_request", "get", wire::EncodeRequest(get));
  wire::Request rput;
  rput.type = wire::MsgType::kReplicaPut;
  rput.id = 9;
  rput.key = "k";
  rput.payload = TwoSiblings().Encode();
  rput.ring_version = 3;
  rput.node_id = "node3";
  Write("fuzz_request", "replica_put", wire::EncodeRequest(rput));
  wire::Request rget;
  rget.type = wire::MsgType::kReplicaGet;
  rget.id = 12;
  rget.key = "k";
  rget.node_id = "node3";  // asked as a stand-in for node3
  Write("fuzz_request", "replica_get_standin", wire::EncodeRequest(rget));
  wire::Request transfer;
  transfer.type = wire::MsgType::kTransfer;
  transfer.id = 10;
  transfer.batch = {{"a", TwoSiblings().Encode()}, {"b", TwoSiblings().Encode()}};
  Write("fuzz_request", "transfer", wire::EncodeRequest(transfer));
  wire::Request pull;
  pull.type = wire::MsgType::kPull;
  pull.id = 12;
  pull.partition = 37;
  pull.node_id = "node3";
  Write("fuzz_request", "pull", wire::EncodeRequest(pull));
  wire::BatchWriter batch(wire::MsgType::kBatch);
  batch.Add(get);
  batch.Add(rput);
  Write("fuzz_request", "batch", batch.Take(11));

  wire::Reply got;
  got.type = wire::MsgType::kGetReply;
  got.id = 8;
  got.found = true;
  got.values = {"red", "blue"};
  got.context = put.context;
  Write("fuzz_reply", "get_reply", wire::EncodeReply(got));
  Write("fuzz_reply", "error",
        wire::EncodeReply(wire::Reply::Error(3, Status::Unavailable("quorum not reached"))));
  Write("fuzz_reply", "ack", wire::EncodeReply(wire::Reply::Ack(4)));
  wire::BatchWriter replies(wire::MsgType::kBatchReply);
  replies.Add(got);
  replies.Add(wire::Reply::Ack(4));
  Write("fuzz_reply", "batch_reply", replies.Take(12));

  // Versions.
  SiblingSet set = TwoSiblings();
  Write("fuzz_siblings", "two", set.Encode());
  SiblingSet deleted;
  deleted.Apply(set.Context(), "node3~c", 1002, "", true, 10);
  Write("fuzz_siblings", "tombstone", deleted.Encode());
  Write("fuzz_context", "two", EncodeContext(set.Context()));
  Write("fuzz_context", "with_hint", EncodeContext(set.Context(), "node2"));

  // Membership.
  ClusterState state;
  state.AddMember("node1", "tcp://127.0.0.1:7101", MemberState::kUp);
  state.AddMember("node2", "tcp://127.0.0.1:7102", MemberState::kJoining);
  Ring ring = Ring::Create(16, 3, "node1");
  ring.Join("node2");
  state.SetRing(ring);
  Write("fuzz_cluster_state", "state", state.Encode());
  Write("fuzz_cluster_state", "ring", Ring::Create(8, 3, "node1").Encode());

  // Anti-entropy.
  TreeRequest tree;
  tree.op = kOpLeaves;
  tree.partition = 3;
  tree.ring_version = 2;
  tree.indices = {1, 2, 5};
  Write("fuzz_tree", "leaves", EncodeTreeRequest(tree));
  tree.op = kOpFetch;
  tree.indices.clear();
  tree.keys = {"a", "b"};
  Write("fuzz_tree", "fetch", EncodeTreeRequest(tree));

  // RESP.
  Write("fuzz_resp", "set_get",
        "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  Write("fuzz_resp", "inline", "PING\r\nMGET a b c\r\n");
  Write("fuzz_resp", "too_large",
        "*2\r\n$3\r\nGET\r\n$100\r\n" + std::string(100, 'x') + "\r\n*1\r\n$4\r\nPING\r\n");

  // Files: a file engine segment and a hint store segment, as the stores
  // write them.
  const fs::path tmp = fs::temp_directory_path() / ("dynamo-corpus-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  {
    file::Options o;
    o.dir = (tmp / "file").string();
    o.sync = file::SyncPolicy::kNever;
    std::unique_ptr<file::FileEngine> engine;
    if (!file::FileEngine::Open(o, &engine).ok()) return 1;
    (void)engine->Put("a", 1, set.Encode());
    (void)engine->Put("b", 2, "plain value");
    (void)engine->Remove("a");
    (void)engine->Put("c", 3, deleted.Encode());
    (void)engine->Close();
    Write("fuzz_file_segment", "segment", ReadFile(tmp / "file" / "0000000001.log"));
  }
  {
    HintStore::Options o;
    o.dir = (tmp / "hints").string();
    auto hints = HintStore::Open(o);
    if (!hints.ok()) return 1;
    (void)(*hints)->Add("node2", "a", set);
    (void)(*hints)->Add("node3", "b", deleted);
    (void)(*hints)->Remove("node2", {{"a", 1}});
    hints->reset();
    for (const auto& e : fs::directory_iterator(tmp / "hints")) {
      if (e.path().extension() == ".log") Write("fuzz_hint_store", "segment", ReadFile(e.path()));
    }
  }
  fs::remove_all(tmp);

  // The INI config.
  Write("fuzz_config", "node",
        "node-id = node1\nlisten = tcp://127.0.0.1:7101\ndata-dir = /tmp/x\nbackend = file\n"
        "backend-opt = sync=always\nseed = tcp://127.0.0.1:7102\nreplicas = 3\n");
  Write("fuzz_config", "bad", "replicas = many\n[section]\nnope\n");
  Write("fuzz_config", "operations",
        "metrics-listen = 127.0.0.1:9101\nbackground-target-p99-ms = 50\n"
        "redis-listen = 127.0.0.1:6379\n");
  return 0;
}
