// dynamod's options: the command line, the INI config file, and which wins.
#include "node/options.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace dynamo {
namespace {

class OptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dynamo-options-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::remove(config_.c_str());
    ::rmdir(dir_.c_str());
  }

  std::string WriteConfig(const std::string& text) {
    config_ = dir_ + "/dynamod.conf";
    std::ofstream(config_) << text;
    return config_;
  }

  ParseOutcome Parse(std::vector<std::string> args, NodeOptions* o, std::string* error) {
    args.insert(args.begin(), "dynamod");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    return ParseNodeOptions(static_cast<int>(args.size()), argv.data(), o, error);
  }

  std::string dir_, config_;
};

TEST_F(OptionsTest, EveryOptionCanComeFromTheFile) {
  const std::string file = WriteConfig(
      "node-id = n1\n"
      "listen = tcp://127.0.0.1:7301\n"
      "seed = tcp://127.0.0.1:7302\n"
      "seed = tcp://127.0.0.1:7303\n"
      "data-dir = /var/lib/dynamo/n1\n"
      "backend = mysql\n"
      "backend-opt = host=db.example\n"
      "backend-opt = user=dynamo\n"
      "replicas = 5\n"
      "read-quorum = 3\n"
      "write-quorum = 4\n"
      "partitions = 1024\n"
      "workers = 8\n"
      "anti-entropy-interval-ms = 0\n"
      "log-level = warn\n");
  NodeOptions o;
  std::string error;
  ASSERT_EQ(Parse({"--config", file}, &o, &error), ParseOutcome::kRun) << error;
  EXPECT_EQ(o.node_id, "n1");
  EXPECT_EQ(o.listen, "tcp://127.0.0.1:7301");
  EXPECT_EQ(o.seeds, (std::vector<std::string>{"tcp://127.0.0.1:7302", "tcp://127.0.0.1:7303"}));
  EXPECT_EQ(o.data_dir, "/var/lib/dynamo/n1");
  EXPECT_EQ(o.backend, "mysql");
  using KV = std::pair<std::string, std::string>;
  EXPECT_EQ(o.backend_opts, (std::vector<KV>{{"host", "db.example"}, {"user", "dynamo"}}));
  EXPECT_EQ(o.replicas, 5u);
  EXPECT_EQ(o.read_quorum, 3u);
  EXPECT_EQ(o.write_quorum, 4u);
  EXPECT_EQ(o.partitions, 1024u);
  EXPECT_EQ(o.workers, 8u);
  EXPECT_EQ(o.anti_entropy_interval_ms, 0u);
  EXPECT_EQ(o.log_level, "warn");
  EXPECT_FALSE(o.check_config);
}

TEST_F(OptionsTest, TheCommandLineWins) {
  const std::string file = WriteConfig(
      "listen = tcp://127.0.0.1:7301\n"
      "seed = tcp://127.0.0.1:7302\n"
      "backend = memory\n"
      "backend-opt = sync=always\n"
      "backend-opt = segment_bytes=1048576\n"
      "replicas = 3\n");
  NodeOptions o;
  std::string error;
  ASSERT_EQ(Parse({"--config", file, "--listen", "tcp://127.0.0.1:7401", "--seed",
                   "tcp://127.0.0.1:7402", "--backend-opt", "sync=never", "--replicas", "1",
                   "--write-quorum", "1", "--read-quorum", "1"},
                  &o, &error),
            ParseOutcome::kRun)
      << error;
  EXPECT_EQ(o.listen, "tcp://127.0.0.1:7401");
  // A list on the command line replaces the file's.
  EXPECT_EQ(o.seeds, (std::vector<std::string>{"tcp://127.0.0.1:7402"}));
  // An engine option replaces the file's value of that key only.
  using KV = std::pair<std::string, std::string>;
  EXPECT_EQ(o.backend_opts, (std::vector<KV>{{"segment_bytes", "1048576"}, {"sync", "never"}}));
  EXPECT_EQ(o.replicas, 1u);
  EXPECT_EQ(o.backend, "memory");  // from the file (the default is file)
}

TEST_F(OptionsTest, FileErrorsNameTheFile) {
  NodeOptions o;
  std::string error;
  std::string file = WriteConfig("bogus = 1\n");
  EXPECT_EQ(Parse({"--config", file}, &o, &error), ParseOutcome::kUsageError);
  EXPECT_NE(error.find(file), std::string::npos) << error;
  EXPECT_NE(error.find("bogus"), std::string::npos) << error;

  file = WriteConfig("replicas = many\n");
  EXPECT_EQ(Parse({"--config", file}, &o, &error), ParseOutcome::kUsageError);
  EXPECT_NE(error.find(file), std::string::npos) << error;

  file = WriteConfig("check-config = true\n");
  EXPECT_EQ(Parse({"--config", file}, &o, &error), ParseOutcome::kUsageError);
  EXPECT_NE(error.find("command line only"), std::string::npos) << error;

  file = WriteConfig("backend-opt = novalue\n");
  EXPECT_EQ(Parse({"--config", file}, &o, &error), ParseOutcome::kUsageError);
  EXPECT_NE(error.find("KEY=VALUE"), std::string::npos) << error;

  EXPECT_EQ(Parse({"--config", dir_ + "/missing.conf"}, &o, &error), ParseOutcome::kUsageError);
  EXPECT_NE(error.find("missing.conf"), std::string::npos) << error;
}

TEST_F(OptionsTest, CheckConfigIsASwitch) {
  NodeOptions o;
  std::string error;
  ASSERT_EQ(Parse({"--check-config"}, &o, &error), ParseOutcome::kRun) << error;
  EXPECT_TRUE(o.check_config);
}

}  // namespace
}  // namespace dynamo
