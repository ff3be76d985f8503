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

// Encodes, decodes (views into the frame) and copies the result out.
Request RoundTrip(const RequestView& in) {
  const std::string frame = EncodeRequest(in);
  RequestView view;
  Status s = DecodeRequest(frame, &view);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return Request(view);
}

bool Within(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

TEST(CodecTest, RequestsRoundTrip) {
  for (MsgType t : {MsgType::kGet, MsgType::kPut, MsgType::kDel, MsgType::kStatus}) {
    Request in = PutRequest();
    in.type = t;
    in.flags = t == MsgType::kGet ? kFlagLocal : 0;
    Request out = RoundTrip(in);
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
  Request out = RoundTrip(hinted);
  EXPECT_EQ(out.node_id, "owner-node");
  EXPECT_EQ(out.ring_version, 0u);
  EXPECT_EQ(out.payload, "siblings");

  hinted.node_id.clear();
  hinted.ring_version = 12;
  out = RoundTrip(hinted);
  EXPECT_EQ(out.ring_version, 12u);
  EXPECT_TRUE(out.node_id.empty());

  // A read asks a stand-in with the owner's name; without one, four items.
  Request read;
  read.type = MsgType::kReplicaGet;
  read.key = "k";
  EXPECT_EQ(static_cast<uint8_t>(EncodeRequest(read)[0]), 0x94);  // a fixarray of 4
  read.node_id = "owner-node";
  EXPECT_EQ(static_cast<uint8_t>(EncodeRequest(read)[0]), 0x95);
  out = RoundTrip(read);
  EXPECT_EQ(out.key, "k");
  EXPECT_EQ(out.node_id, "owner-node");
  read.node_id.clear();
  out = RoundTrip(read);
  EXPECT_TRUE(out.node_id.empty());

  Request tree;
  tree.type = MsgType::kTree;
  tree.payload = std::string("\x01\x00tree", 6);
  out = RoundTrip(tree);
  EXPECT_EQ(out.type, MsgType::kTree);
  EXPECT_EQ(out.payload, tree.payload);

  Request join;
  join.type = MsgType::kAdminJoin;
  join.endpoint = "tcp://127.0.0.1:7101";
  out = RoundTrip(join);
  EXPECT_EQ(out.endpoint, join.endpoint);

  Request remove;
  remove.type = MsgType::kAdminRemove;
  remove.node_id = "node4";
  out = RoundTrip(remove);
  EXPECT_EQ(out.type, MsgType::kAdminRemove);
  EXPECT_EQ(out.node_id, "node4");

  Request migrate;
  migrate.type = MsgType::kAdminMigrate;
  migrate.endpoint = "mysql";
  migrate.batch = {{"host", "db3"}, {"table", "node3"}, {"password_file", ""}};
  out = RoundTrip(migrate);
  EXPECT_EQ(out.type, MsgType::kAdminMigrate);
  EXPECT_EQ(out.endpoint, "mysql");
  EXPECT_EQ(out.batch, migrate.batch);

  Request pull;
  pull.type = MsgType::kPull;
  pull.partition = 4095;
  pull.node_id = "node3";
  out = RoundTrip(pull);
  EXPECT_EQ(out.type, MsgType::kPull);
  EXPECT_EQ(out.partition, 4095u);
  EXPECT_EQ(out.node_id, "node3");

  Request leave;
  leave.type = MsgType::kAdminLeave;
  out = RoundTrip(leave);
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
  const std::string frame = EncodeRequest(batch);
  RequestView out;
  ASSERT_TRUE(DecodeRequest(frame, &out).ok());
  EXPECT_EQ(out.type, MsgType::kBatch);
  ASSERT_EQ(out.frames.size(), 2u);
  EXPECT_EQ(out.frames[0], batch.frames[0]);
  EXPECT_EQ(out.frames[1], batch.frames[1]);
  RequestView inner;
  ASSERT_TRUE(DecodeRequest(out.frames[0], &inner).ok());
  EXPECT_EQ(inner.value, PutRequest().value);

  Reply replies;
  replies.type = MsgType::kBatchReply;
  const std::string one = EncodeReply(Reply::Error(1, Status::NotFound("x")));
  replies.frames = {one};
  Reply rout;
  const std::string reply_frame = EncodeReply(replies);
  ASSERT_TRUE(DecodeReply(reply_frame, &rout).ok());
  EXPECT_EQ(rout.frames, replies.frames);
  // Frames must be bytes.
  EXPECT_FALSE(DecodeRequest(std::string("\x94\x01\x1e\x01\x91\x05", 6), &out).ok());
}

TEST(CodecTest, DecodedBytesAreViewsIntoTheFrameNotCopies) {
  const std::string frame = EncodeRequest(PutRequest());
  RequestView out;
  ASSERT_TRUE(DecodeRequest(frame, &out).ok());
  EXPECT_EQ(out.key, PutRequest().key);
  EXPECT_TRUE(Within(out.key, frame));
  EXPECT_TRUE(Within(out.value, frame));
  EXPECT_TRUE(Within(out.context, frame));
  // And a batch's frames are views too, down to the bytes of its requests.
  BatchWriter w(MsgType::kBatch);
  w.Add(PutRequest());
  w.Add(PutRequest());
  const std::string batch = w.Take(1);
  ASSERT_TRUE(DecodeRequest(batch, &out).ok());
  ASSERT_EQ(out.frames.size(), 2u);
  RequestView inner;
  ASSERT_TRUE(DecodeRequest(out.frames[1], &inner).ok());
  EXPECT_TRUE(Within(out.frames[1], batch));
  EXPECT_TRUE(Within(inner.value, batch));
}

TEST(CodecTest, ABatchWriterEncodesEachRequestStraightIntoTheBatch) {
  BatchWriter w(MsgType::kBatch);
  std::vector<Request> sent;
  for (int i = 0; i < 40; ++i) {
    Request r = PutRequest();
    r.id = static_cast<uint64_t>(i);
    r.key = "key-" + std::to_string(i);
    r.value = std::string(static_cast<size_t>(i) * 300, 'v');  // bin8, bin16 and bin32 values
    sent.push_back(r);
    w.Add(r);
  }
  EXPECT_EQ(w.size(), 40u);
  const std::string frame = w.Take(0x1234567890ull);
  EXPECT_EQ(w.size(), 0u);
  RequestView out;
  ASSERT_TRUE(DecodeRequest(frame, &out).ok());
  EXPECT_EQ(out.type, MsgType::kBatch);
  EXPECT_EQ(out.id, 0x1234567890ull);
  ASSERT_EQ(out.frames.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(out.frames[i], EncodeRequest(sent[i])) << i;  // the frame sent alone, byte for byte
  }
  // A turn of one request is that request's own frame; the writer is reusable.
  w.Add(sent[3]);
  EXPECT_EQ(w.Take(7), EncodeRequest(sent[3]));
  EXPECT_EQ(w.Take(8), "");  // nothing added

  BatchWriter replies(MsgType::kBatchReply);
  Reply ack = Reply::Ack(11);
  Reply err = Reply::Error(12, Status::Unavailable("later"));
  replies.Add(ack);
  replies.Add(err);
  const std::string rframe = replies.Take(0);
  Reply rout;
  ASSERT_TRUE(DecodeReply(rframe, &rout).ok());
  EXPECT_EQ(rout.type, MsgType::kBatchReply);
  ASSERT_EQ(rout.frames.size(), 2u);
  EXPECT_EQ(rout.frames[0], EncodeReply(ack));
  EXPECT_EQ(rout.frames[1], EncodeReply(err));
}

TEST(CodecTest, WrongVersionAndUnknownTypeAreUnsupportedWithId) {
  // [2, 1, 5, ...]
  std::string frame = EncodeRequest(PutRequest());
  RequestView out;
  std::string v2 = frame;
  v2[1] = 0x02;  // fixarray header, then positive fixint version
  Status s = DecodeRequest(v2, &out);
  EXPECT_EQ(s.code(), Status::Code::kUnsupported);
  EXPECT_EQ(out.id, 0xfeedfacecafeull);
  std::string unknown = frame;
  unknown[2] = 99;
  out = RequestView();
  s = DecodeRequest(unknown, &out);
  EXPECT_EQ(s.code(), Status::Code::kUnsupported);
  EXPECT_EQ(out.id, 0xfeedfacecafeull);
}

TEST(CodecTest, EveryTruncationIsRejected) {
  std::string frame = EncodeRequest(PutRequest());
  for (size_t n = 0; n < frame.size(); ++n) {
    RequestView out;
    EXPECT_FALSE(DecodeRequest(frame.substr(0, n), &out).ok()) << n;
  }
  RequestView out;
  EXPECT_FALSE(DecodeRequest(frame + "x", &out).ok());
}

TEST(CodecTest, HugeDeclaredSizesDoNotAllocate) {
  // array32 of 2^32-1 items; bin32 of 2^32-1 bytes.
  RequestView out;
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
    RequestView out;
    (void)DecodeRequest(junk, &out);
    Reply rep;
    (void)DecodeReply(junk, &rep);
  }
}

TEST(CodecTest, WrongFieldTypesAreInvalidArgument) {
  // [1, 1, 3, 42, 0, 0]: key is an integer.
  RequestView out;
  Status s = DecodeRequest(std::string("\x96\x01\x01\x03\x2a\x00\x00", 7), &out);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_EQ(out.id, 3u);
}

TEST(CodecTest, AMigrateWhoseOptionsAreNotPairsIsInvalidArgument) {
  // [1, 28, 5, "file", [["path"]]]: an option without its value.
  RequestView out;
  Status s = DecodeRequest(std::string("\x95\x01\x1c\x05\xa4"
                                       "file\x91\x91\xa4path",
                                       16),
                           &out);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find("option is not [key, value]"), std::string::npos) << s.ToString();
  // [1, 28, 5, "file", 7]: options not an array.
  s = DecodeRequest(std::string("\x95\x01\x1c\x05\xa4"
                                "file\x07",
                                10),
                    &out);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
}

}  // namespace
}  // namespace dynamo::wire
