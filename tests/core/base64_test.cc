#include "util/base64.h"

#include <gtest/gtest.h>

namespace dynamo {
namespace {

TEST(Base64Test, RoundTripsEveryLength) {
  std::string data;
  for (int i = 0; i < 300; ++i) {
    auto back = Base64Decode(Base64Encode(data));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, data);
    data.push_back(static_cast<char>(i * 37));
  }
}

TEST(Base64Test, KnownVectorsAndRejects) {
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_FALSE(Base64Decode("Zm9").has_value());
  EXPECT_FALSE(Base64Decode("Zm9v!mFy").has_value());
  EXPECT_FALSE(Base64Decode(" Zm9vYmFy").has_value());
  EXPECT_EQ(*Base64Decode("Zm8="), "fo");
}

}  // namespace
}  // namespace dynamo
