// The name of a node's dots (node/incarnation.h): new after a crash, after a
// restart of a volatile engine and on every rename; kept across a clean
// restart of a durable engine.
#include "node/incarnation.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace dynamo {
namespace {

class IncarnationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("dynamo-incarnation-" + std::to_string(::getpid())))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string FileLine() {
    std::ifstream in(dir_ + "/incarnation");
    std::string line;
    std::getline(in, line);
    return line;
  }
  std::string dir_;
};

TEST_F(IncarnationTest, AFirstStartTakesANewNameAndRecordsItRunning) {
  auto name = Incarnation::Begin(dir_, "node1", true, 1000);
  ASSERT_TRUE(name.ok()) << name.status().ToString();
  EXPECT_EQ(name->rfind("node1~", 0), 0u) << *name;
  EXPECT_EQ(FileLine(), *name + " running");
}

TEST_F(IncarnationTest, ACleanStopOfADurableEngineKeepsTheName) {
  auto first = Incarnation::Begin(dir_, "node1", true, 1000);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(Incarnation::End(dir_, *first).ok());
  EXPECT_EQ(FileLine(), *first + " clean");
  auto second = Incarnation::Begin(dir_, "node1", true, 2000);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, *first);
}

TEST_F(IncarnationTest, ACrashOrAVolatileEngineTakesANewName) {
  auto first = Incarnation::Begin(dir_, "node1", true, 1000);
  ASSERT_TRUE(first.ok());
  // No End: the run crashed.
  auto after_crash = Incarnation::Begin(dir_, "node1", true, 1000);  // same millisecond
  ASSERT_TRUE(after_crash.ok());
  EXPECT_NE(*after_crash, *first);
  // A memory engine loses everything, clean stop or not.
  ASSERT_TRUE(Incarnation::End(dir_, *after_crash).ok());
  auto volatile_engine = Incarnation::Begin(dir_, "node1", false, 3000);
  ASSERT_TRUE(volatile_engine.ok());
  EXPECT_NE(*volatile_engine, *after_crash);
}

TEST_F(IncarnationTest, AFileOfAnotherNodeIsNotTakenOver) {
  auto other = Incarnation::Begin(dir_, "node2", true, 1000);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(Incarnation::End(dir_, *other).ok());
  auto mine = Incarnation::Begin(dir_, "node1", true, 2000);
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(mine->rfind("node1~", 0), 0u) << *mine;
}

TEST_F(IncarnationTest, RenamesDifferEvenInOneMillisecond) {
  const std::string a = Incarnation::Rename("node1", 5000, "");
  const std::string b = Incarnation::Rename("node1", 5000, a);
  const std::string c = Incarnation::Rename("node1", 5000, b);
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_NE(a, c);
  EXPECT_EQ(a.rfind("node1~", 0), 0u);
}

TEST_F(IncarnationTest, AnUnwritableFolderIsAnError) {
  auto name = Incarnation::Begin(dir_ + "/missing/deeper", "node1", true, 1000);
  EXPECT_FALSE(name.ok());
}

}  // namespace
}  // namespace dynamo
