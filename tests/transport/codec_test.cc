#include <gtest/gtest.h>

#include <random>

#include "dynamo/transport/message.h"

namespace dynamo::wire {
namespace {

Request PutRequest() {
  Request r;
  r.type = MsgType::kPut;
  r.id = 0xfeedfacecafeull;
  r.key = std::string("k\0ey", 4);
  r.value = std::string(1000, '\xff');
  r.context = "ctx";
  r.quorum = 2;
  return r;
}

TEST(CodecTest, RequestsRoundTrip) {
  for (MsgType t : {MsgType::kGet, MsgType::kPut, MsgType::kDel, MsgType::kStatus}) {
    Request in = PutRequest();
    in.type = t;
    in.flags = t == MsgType::kGet ? kFlagLocal : 0;
    Request out;
    ASSERT_TRUE(DecodeRequest(EncodeRequest(in), &out).ok());
    EXPECT_EQ(out.type, t);
    EXPECT_EQ(out.id, in.id);
    if (t != MsgType::kStatus) {
      EXPECT_EQ(out.key, in.key);
      EXPECT_EQ(out.quorum, 2u);
    }
    if (t == MsgType::kPut) {
      EXPECT_EQ(out.value, in.value);
      EXPECT_EQ(out.context, in.context);
    }
    if (t == MsgType::kGet) {
      EXPECT_EQ(out.flags, kFlagLocal);
    }
  }
}

TEST(CodecTest, NodeAndAdminRequestsRoundTrip) {
  Request hinted;
  hinted.type = MsgType::kReplicaPut;
  hinted.id = 3;
  hinted.key = "k";
  hinted.payload = "siblings";
  hinted.node_id = "owner-node";  // a hint without a ring version still carries both
  Request out;
  ASSERT_TRUE(DecodeRequest(EncodeRequest(hinted), &out).ok());
  EXPECT_EQ(out.node_id, "owner-node");
  EXPECT_EQ(out.ring_version, 0u);
  EXPECT_EQ(out.payload, "siblings");

  hinted.node_id.clear();
  hinted.ring_version = 12;
  out = Request();
  ASSERT_TRUE(DecodeRequest(EncodeRequest(hinted), &out).ok());
  EXPECT_EQ(out.ring_version, 12u);
  EXPECT_TRUE(out.node_id.empty());

  Request tree;
  tree.type = MsgType::kTree;
  tree.payload = std::string("\x01\x00tree", 6);
  out = Request();
  ASSERT_TRUE(DecodeRequest(EncodeRequest(tree), &out).ok());
  EXPECT_EQ(out.type, MsgType::kTree);
  EXPECT_EQ(out.payload, tree.payload);

  Request join;
  join.type = MsgType::kAdminJoin;
  join.endpoint = "tcp://127.0.0.1:7101";
  out = Request();
  ASSERT_TRUE(DecodeRequest(EncodeRequest(join), &out).ok());
  EXPECT_EQ(out.endpoint, join.endpoint);

  Request remove;
  remove.type = MsgType::kAdminRemove;
  remove.node_id = "node4";
  out = Request();
  ASSERT_TRUE(DecodeRequest(EncodeRequest(remove), &out).ok());
  EXPECT_EQ(out.type, MsgType::kAdminRemove);
  EXPECT_EQ(out.node_id, "node4");

  Request leave;
  leave.type = MsgType::kAdminLeave;
  out = Request();
  ASSERT_TRUE(DecodeRequest(EncodeRequest(leave), &out).ok());
  EXPECT_EQ(out.type, MsgType::kAdminLeave);

  Reply tr;
  tr.type = MsgType::kTreeReply;
  tr.payload = "hashes";
  Reply rout;
  ASSERT_TRUE(DecodeReply(EncodeReply(tr), &rout).ok());
  EXPECT_EQ(rout.type, MsgType::kTreeReply);
  EXPECT_EQ(rout.payload, "hashes");
}

TEST(CodecTest, RepliesRoundTrip) {
  Reply g;
  g.type = MsgType::kGetReply;
  g.id = 7;
  g.found = true;
  g.values = {"a", std::string("\0b", 2)};
  g.context = "c";
  Reply out;
  ASSERT_TRUE(DecodeReply(EncodeReply(g), &out).ok());
  EXPECT_EQ(out.type, MsgType::kGetReply);
  EXPECT_TRUE(out.found);
  EXPECT_EQ(out.values, g.values);
  EXPECT_EQ(out.context, "c");

  Reply e = Reply::Error(9, Status::InvalidArgument("too big"));
  ASSERT_TRUE(DecodeReply(EncodeReply(e), &out).ok());
  EXPECT_EQ(out.id, 9u);
  EXPECT_TRUE(out.ToStatus().IsInvalidArgument());
  EXPECT_EQ(out.ToStatus().message(), "too big");
}

TEST(CodecTest, BatchesRoundTrip) {
  Request batch;
  batch.type = MsgType::kBatch;
  batch.id = 5;
  batch.frames = {EncodeRequest(PutRequest()), std::string("\x93\x01\x04\x07", 4)};
  Request out;
  ASSERT_TRUE(DecodeRequest(EncodeRequest(batch), &out).ok());
  EXPECT_EQ(out.type, MsgType::kBatch);
  EXPECT_EQ(out.frames, batch.frames);
  Request inner;
  ASSERT_TRUE(DecodeRequest(out.frames[0], &inner).ok());
  EXPECT_EQ(inner.value, PutRequest().value);

  Reply replies;
  replies.type = MsgType::kBatchReply;
  replies.frames = {EncodeReply(Reply::Error(1, Status::NotFound("x")))};
  Reply rout;
  ASSERT_TRUE(DecodeReply(EncodeReply(replies), &rout).ok());
  EXPECT_EQ(rout.frames, replies.frames);
  // Frames must be bytes.
  EXPECT_FALSE(DecodeRequest(std::string("\x94\x01\x1e\x01\x91\x05", 6), &out).ok());
}

TEST(CodecTest, WrongVersionAndUnknownTypeAreUnsupportedWithId) {
  // [2, 1, 5, ...]
  std::string frame = EncodeRequest(PutRequest());
  Request out;
  std::string v2 = frame;
  v2[1] = 0x02;  // fixarray header, then positive fixint version
  Status s = DecodeRequest(v2, &out);
  EXPECT_EQ(s.code(), Status::Code::kUnsupported);
  EXPECT_EQ(out.id, 0xfeedfacecafeull);
  std::string unknown = frame;
  unknown[2] = 99;
  out = Request();
  s = DecodeRequest(unknown, &out);
  EXPECT_EQ(s.code(), Status::Code::kUnsupported);
  EXPECT_EQ(out.id, 0xfeedfacecafeull);
}

TEST(CodecTest, EveryTruncationIsRejected) {
  std::string frame = EncodeRequest(PutRequest());
  for (size_t n = 0; n < frame.size(); ++n) {
    Request out;
    EXPECT_FALSE(DecodeRequest(frame.substr(0, n), &out).ok()) << n;
  }
  Request out;
  EXPECT_FALSE(DecodeRequest(frame + "x", &out).ok());
}

TEST(CodecTest, HugeDeclaredSizesDoNotAllocate) {
  // array32 of 2^32-1 items; bin32 of 2^32-1 bytes.
  Request out;
  EXPECT_FALSE(DecodeRequest(std::string("\xdd\xff\xff\xff\xff\x01", 6), &out).ok());
  EXPECT_FALSE(DecodeRequest(std::string("\x96\x01\x01\x01\xc6\xff\xff\xff\xff", 9), &out).ok());
  EXPECT_FALSE(DecodeRequest(std::string("\xc1", 1), &out).ok());  // never-used byte
}

TEST(CodecTest, RandomBytesNeverCrash) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string junk(rng() % 64, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    if (!junk.empty() && rng() % 2) junk[0] = static_cast<char>(0x90 | (rng() % 8));
    Request out;
    (void)DecodeRequest(junk, &out);
    Reply rep;
    (void)DecodeReply(junk, &rep);
  }
}

TEST(CodecTest, WrongFieldTypesAreInvalidArgument) {
  // [1, 1, 3, 42, 0, 0]: key is an integer.
  Request out;
  Status s = DecodeRequest(std::string("\x96\x01\x01\x03\x2a\x00\x00", 7), &out);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(out.id, 3u);
}

}  // namespace
}  // namespace dynamo::wire
