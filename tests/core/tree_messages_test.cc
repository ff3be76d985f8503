// The TREE payload codec of anti-entropy (antientropy/tree_messages.h).
#include "antientropy/tree_messages.h"

#include "dynamo/merkle.h"
#include "gtest/gtest.h"

namespace dynamo {
namespace {

TEST(TreeMessagesTest, RequestsRoundTrip) {
  TreeRequest leaves{kOpLeaves, 7, 42, {3, 1, 3, 0}, {}};
  TreeRequest got;
  ASSERT_TRUE(DecodeTreeRequest(EncodeTreeRequest(leaves), &got).ok());
  EXPECT_EQ(got.op, kOpLeaves);
  EXPECT_EQ(got.partition, 7u);
  EXPECT_EQ(got.ring_version, 42u);
  EXPECT_EQ(got.indices, (std::vector<uint32_t>{0, 1, 3}));  // sorted, each once
  TreeRequest fetch{kOpFetch, 1, 2, {}, {"a", std::string("b\0c", 3)}};
  TreeRequest got_fetch;
  ASSERT_TRUE(DecodeTreeRequest(EncodeTreeRequest(fetch), &got_fetch).ok());
  EXPECT_EQ(got_fetch.keys, fetch.keys);
}

TEST(TreeMessagesTest, MalformedRequestsAreRefused) {
  TreeRequest r;
  for (std::string_view bad : {std::string_view(""), std::string_view("\x90"),
                               std::string_view("\x94\x05\x00\x00\x90"),  // op 5
                               std::string_view("\x94\x01\x00\x00\x01"),  // items not an array
                               std::string_view("\xc1")}) {
    Status s = DecodeTreeRequest(bad, &r);
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  }
  // An index past the tree's fan-out.
  TreeRequest over{kOpLeaves, 0, 0, {MerkleTree::kInner}, {}};
  EXPECT_FALSE(DecodeTreeRequest(EncodeTreeRequest(over), &r).ok());
  // More keys than one exchange repairs.
  TreeRequest many{kOpFetch, 0, 0, {}, std::vector<std::string>(kMaxKeysPerExchange + 1, "k")};
  EXPECT_FALSE(DecodeTreeRequest(EncodeTreeRequest(many), &r).ok());
  // An empty key.
  TreeRequest empty_key{kOpFetch, 0, 0, {}, {""}};
  EXPECT_FALSE(DecodeTreeRequest(EncodeTreeRequest(empty_key), &r).ok());
}

TEST(TreeMessagesTest, PairsAreReadBack) {
  msgpack::sbuffer buf;
  mp::Packer pk(buf);
  pk.pack_array(2);
  pk.pack_array(2);
  mp::PackBin(pk, "k1");
  pk.pack_uint64(9);
  pk.pack_array(2);
  mp::PackBin(pk, "k2");
  pk.pack_uint64(10);
  std::vector<std::pair<std::string, uint64_t>> digests;
  ASSERT_TRUE(ReadPairs(std::string_view(buf.data(), buf.size()), false, &digests, nullptr));
  EXPECT_EQ(digests, (std::vector<std::pair<std::string, uint64_t>>{{"k1", 9}, {"k2", 10}}));
  std::vector<std::pair<std::string, std::string>> sets;
  EXPECT_FALSE(ReadPairs(std::string_view(buf.data(), buf.size()), true, nullptr, &sets));
  EXPECT_FALSE(ReadPairs("\x01", false, &digests, nullptr));
}

}  // namespace
}  // namespace dynamo
