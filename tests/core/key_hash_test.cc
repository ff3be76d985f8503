#include "dynamo/key_hash.h"

#include <gtest/gtest.h>

namespace dynamo {
namespace {

TEST(KeyHashTest, IsTopOfMd5BigEndian) {
  // MD5("") = d41d8cd98f00b204e9800998ecf8427e
  EXPECT_EQ(KeyHash(""), 0xd41d8cd98f00b204ull);
  // MD5("abc") = 900150983cd24fb0d6963f7d28e17f72
  EXPECT_EQ(KeyHash("abc"), 0x900150983cd24fb0ull);
}

TEST(KeyHashTest, PartitionRangesTileTheSpace) {
  const uint32_t q = 256;
  EXPECT_EQ(PartitionHashRange(0, q).lo, 0u);
  EXPECT_EQ(PartitionHashRange(q - 1, q).hi, UINT64_MAX);
  for (uint32_t p = 0; p + 1 < q; ++p) {
    EXPECT_EQ(PartitionHashRange(p, q).hi + 1, PartitionHashRange(p + 1, q).lo);
  }
  EXPECT_EQ(PartitionOf(0x900150983cd24fb0ull, q), 0x90u);
  HashRange r = PartitionHashRange(0x90, q);
  EXPECT_LE(r.lo, 0x900150983cd24fb0ull);
  EXPECT_GE(r.hi, 0x900150983cd24fb0ull);
  EXPECT_EQ(PartitionOf(12345, 1), 0u);
}

}  // namespace
}  // namespace dynamo
