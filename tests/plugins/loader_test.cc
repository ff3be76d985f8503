// The host's plugin loader (plugins/backend.cc): every malformed plugin is
// refused with one line naming the file and the reason, and a good one loads
// by name and by path. The broken plugins are the C files beside this test.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "dynamo/backend.h"
#include "dynamo/backend_plugin.h"

namespace dynamo {
namespace {

const std::string kBadDir = DYNAMO_TEST_BAD_PLUGIN_DIR;
const std::string kPluginDir = DYNAMO_TEST_PLUGIN_DIR;

std::string BadPath(const std::string& name) { return kBadDir + "/" + name + ".so"; }

// Loads a plugin that must be refused; returns the refusal.
Status Refusal(const std::string& name_or_path, const std::string& dir) {
  auto plugin = BackendPlugin::Load(name_or_path, dir);
  EXPECT_FALSE(plugin.ok()) << name_or_path << " was loaded";
  if (plugin.ok()) return Status::OK();
  EXPECT_TRUE(plugin.status().IsInvalidArgument()) << plugin.status().ToString();
  // One line.
  EXPECT_EQ(plugin.status().message().find('\n'), std::string::npos) << plugin.status().ToString();
  return plugin.status();
}

bool Contains(const Status& s, const std::string& what) {
  return s.message().find(what) != std::string::npos;
}

TEST(PluginLoaderTest, BadAbiVersionNamesBothVersions) {
  for (const auto& [name, dir] :
       {std::pair{BadPath("bad_abi"), std::string()}, std::pair{std::string("bad_abi"), kBadDir}}) {
    SCOPED_TRACE(name);
    Status s = Refusal(name, dir);
    EXPECT_TRUE(Contains(s, BadPath("bad_abi"))) << s.ToString();
    EXPECT_TRUE(Contains(s, "version 999")) << s.ToString();
    EXPECT_TRUE(Contains(s, "ABI version " + std::to_string(DYNAMO_BACKEND_ABI_VERSION)))
        << s.ToString();
    EXPECT_TRUE(std::regex_search(s.message(), std::regex("version 1\\b"))) << s.ToString();
  }
}

TEST(PluginLoaderTest, TheNextMajorVersionIsRefusedNamingBoth) {
  Status s = Refusal(BadPath("next_major"), "");
  EXPECT_TRUE(Contains(
      s, "built for backend ABI version " + std::to_string(DYNAMO_BACKEND_ABI_VERSION + 1)))
      << s.ToString();
  EXPECT_TRUE(Contains(s, "speaks ABI version " + std::to_string(DYNAMO_BACKEND_ABI_VERSION)))
      << s.ToString();
}

TEST(PluginLoaderTest, APluginOfAnOlderMinorVersionLoadsWithoutTheNewerFields) {
  auto plugin = BackendPlugin::Load(BadPath("old_minor"), "");
  ASSERT_TRUE(plugin.ok()) << plugin.status().ToString();
  EXPECT_EQ(plugin.value()->abi_minor(), 0u);
  auto be = Backend::Open(plugin.value(), {});
  ASSERT_TRUE(be.ok()) << be.status().ToString();
  // The table carries a put_batch past its declared size: the host must not
  // call it, and falls back to put(), which this stub does not support.
  Status s = be.value()->PutBatch({{"a", 1, "x"}, {"b", 2, "y"}});
  EXPECT_EQ(s.code(), Status::Code::kUnsupported) << s.ToString();
}

TEST(PluginLoaderTest, APluginOfANewerMinorVersionLoadsAndItsBatchIsUsed) {
  auto plugin = BackendPlugin::Load(BadPath("newer_minor"), "");
  ASSERT_TRUE(plugin.ok()) << plugin.status().ToString();
  EXPECT_EQ(plugin.value()->abi_minor(), uint32_t{DYNAMO_BACKEND_ABI_MINOR});
  auto be = Backend::Open(plugin.value(), {});
  ASSERT_TRUE(be.ok()) << be.status().ToString();
  EXPECT_TRUE(be.value()->PutBatch({{"a", 1, "x"}}).ok());  // put_batch, not put
  EXPECT_EQ(be.value()->Put("a", 1, "x").code(), Status::Code::kUnsupported);
}

TEST(PluginLoaderTest, TheMemoryEngineStoresABatch) {
  auto plugin = BackendPlugin::Load("memory", kPluginDir);
  ASSERT_TRUE(plugin.ok()) << plugin.status().ToString();
  EXPECT_EQ(plugin.value()->abi_minor(), uint32_t{DYNAMO_BACKEND_ABI_MINOR});
  auto be = Backend::Open(plugin.value(), {});
  ASSERT_TRUE(be.ok());
  ASSERT_TRUE(be.value()->PutBatch({{"a", 1, "x"}, {"b", 2, std::string_view("y\0z", 3)}}).ok());
  EXPECT_EQ(be.value()->Get("a").value(), "x");
  EXPECT_EQ(be.value()->Get("b").value(), std::string("y\0z", 3));
  EXPECT_TRUE(be.value()->PutBatch({}).ok());
}

TEST(PluginLoaderTest, MissingEntrySymbolIsNamed) {
  Status s = Refusal(BadPath("no_entry"), "");
  EXPECT_TRUE(Contains(s, BadPath("no_entry"))) << s.ToString();
  EXPECT_TRUE(Contains(s, "dynamo_backend_entry")) << s.ToString();
}

TEST(PluginLoaderTest, EntryReturningNoTableIsRefused) {
  Status s = Refusal(BadPath("null_table"), "");
  EXPECT_TRUE(Contains(s, BadPath("null_table"))) << s.ToString();
  EXPECT_TRUE(Contains(s, "no API table")) << s.ToString();
}

TEST(PluginLoaderTest, SmallTableIsRefusedWithBothSizes) {
  Status s = Refusal(BadPath("small_table"), "");
  const size_t claimed = offsetof(dynamo_backend_api, free_mem);
  const size_t needed = claimed + sizeof(dynamo_backend_api::free_mem);
  EXPECT_TRUE(Contains(s, BadPath("small_table"))) << s.ToString();
  EXPECT_TRUE(Contains(s, "table is " + std::to_string(claimed) + " bytes")) << s.ToString();
  EXPECT_TRUE(Contains(s, "at least " + std::to_string(needed))) << s.ToString();
}

TEST(PluginLoaderTest, MissingOperationIsNamed) {
  Status s = Refusal(BadPath("missing_op"), "");
  EXPECT_TRUE(Contains(s, BadPath("missing_op"))) << s.ToString();
  EXPECT_TRUE(std::regex_search(s.message(), std::regex("operation get\\b"))) << s.ToString();
}

TEST(PluginLoaderTest, UnknownNameIsNamed) {
  Status s = Refusal("nosuch", kPluginDir);
  EXPECT_TRUE(Contains(s, "'nosuch'")) << s.ToString();
  EXPECT_TRUE(Contains(s, kPluginDir + "/nosuch.so")) << s.ToString();
}

TEST(PluginLoaderTest, EmptyNameIsRefused) {
  Status s = Refusal("", kPluginDir);
  EXPECT_TRUE(Contains(s, "empty")) << s.ToString();
}

TEST(PluginLoaderTest, MissingPathIsNamed) {
  const std::string path = kBadDir + "/does-not-exist.so";
  Status s = Refusal(path, "");
  EXPECT_TRUE(Contains(s, path)) << s.ToString();
  EXPECT_TRUE(Contains(s, "does not exist")) << s.ToString();
}

TEST(PluginLoaderTest, DirectoryIsNotAPlugin) {
  Status s = Refusal(kBadDir, "");
  EXPECT_TRUE(Contains(s, kBadDir)) << s.ToString();
  EXPECT_TRUE(Contains(s, "is not a file")) << s.ToString();
}

TEST(PluginLoaderTest, TextFileIsNotASharedObject) {
  std::string dir = (std::filesystem::temp_directory_path() / "dynamo-loader-XXXXXX").string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/x.so";
  {
    std::ofstream out(path);
    out << "this is not a shared object\n";
  }
  ASSERT_TRUE(std::filesystem::is_regular_file(path));
  for (const auto& [name, plugin_dir] :
       {std::pair{path, std::string()}, std::pair{std::string("x"), dir}}) {
    SCOPED_TRACE(name);
    Status s = Refusal(name, plugin_dir);
    EXPECT_TRUE(Contains(s, "cannot load backend plugin " + path)) << s.ToString();
  }
  std::filesystem::remove_all(dir);
}

TEST(PluginLoaderTest, OpenFailureCarriesThePluginsMessage) {
  auto plugin = BackendPlugin::Load("open_fails", kBadDir);
  ASSERT_TRUE(plugin.ok()) << plugin.status().ToString();
  EXPECT_EQ(plugin.value()->name(), "open_fails");
  auto be = Backend::Open(plugin.value(), {{"data_dir", "/nonexistent"}});
  ASSERT_FALSE(be.ok());
  EXPECT_EQ(be.status().code(), Status::Code::kIOError) << be.status().ToString();
  EXPECT_TRUE(Contains(be.status(), "deliberate open failure")) << be.status().ToString();
  EXPECT_TRUE(Contains(be.status(), "open_fails")) << be.status().ToString();
}

// The message of a failed sync or stats reaches the caller (and is freed:
// the ASan build's leak check fails this test otherwise).
TEST(PluginLoaderTest, SyncAndStatsFailuresCarryThePluginsMessage) {
  auto plugin = BackendPlugin::Load("calls_fail", kBadDir);
  ASSERT_TRUE(plugin.ok()) << plugin.status().ToString();
  auto be = Backend::Open(plugin.value(), {});
  ASSERT_TRUE(be.ok()) << be.status().ToString();
  Status sync = be.value()->Sync();
  EXPECT_EQ(sync.code(), Status::Code::kIOError) << sync.ToString();
  EXPECT_TRUE(Contains(sync, "deliberate sync failure")) << sync.ToString();
  auto stats = be.value()->Stats();
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), Status::Code::kIOError) << stats.status().ToString();
  EXPECT_TRUE(Contains(stats.status(), "deliberate stats failure")) << stats.status().ToString();
  EXPECT_TRUE(Contains(stats.status(), "calls_fail")) << stats.status().ToString();
}

void ExpectWorkingMemoryEngine(const std::shared_ptr<BackendPlugin>& plugin) {
  EXPECT_EQ(plugin->name(), "memory");
  EXPECT_EQ(plugin->path(), kPluginDir + "/memory.so");
  EXPECT_EQ(plugin->capabilities() & DYNAMO_BACKEND_CAP_NONBLOCKING,
            uint64_t{DYNAMO_BACKEND_CAP_NONBLOCKING});
  auto be = Backend::Open(plugin, {{"data_dir", "/nonexistent"}});
  ASSERT_TRUE(be.ok()) << be.status().ToString();
  EXPECT_TRUE(be.value()->nonblocking());
  EXPECT_FALSE(be.value()->durable());
  ASSERT_TRUE(be.value()->Put("k", 7, "v").ok());
  auto got = be.value()->Get("k");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got.value(), "v");
}

TEST(PluginLoaderTest, MemoryLoadsByName) {
  auto plugin = BackendPlugin::Load("memory", kPluginDir);
  ASSERT_TRUE(plugin.ok()) << plugin.status().ToString();
  ExpectWorkingMemoryEngine(plugin.value());
}

TEST(PluginLoaderTest, MemoryLoadsByPath) {
  auto plugin = BackendPlugin::Load(kPluginDir + "/memory.so", "/nonexistent-plugin-dir");
  ASSERT_TRUE(plugin.ok()) << plugin.status().ToString();
  ExpectWorkingMemoryEngine(plugin.value());
}

TEST(PluginLoaderTest, GoodPluginLoadsAfterRefusals) {
  // Refused objects are unloaded and leave no state behind.
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(BackendPlugin::Load("bad_abi", kBadDir).ok());
    EXPECT_FALSE(BackendPlugin::Load("missing_op", kBadDir).ok());
  }
  auto plugin = BackendPlugin::Load("memory", kPluginDir);
  ASSERT_TRUE(plugin.ok()) << plugin.status().ToString();
  // Two loads of one engine share the loaded object but not the data.
  auto again = BackendPlugin::Load("memory", kPluginDir);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  auto a = Backend::Open(plugin.value(), {});
  auto b = Backend::Open(again.value(), {});
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(a.value()->Put("k", 1, "a").ok());
  EXPECT_TRUE(b.value()->Get("k").status().IsNotFound());
}

TEST(PluginLoaderTest, MemoryRefusesUnknownOptionByName) {
  auto plugin = BackendPlugin::Load("memory", kPluginDir);
  ASSERT_TRUE(plugin.ok()) << plugin.status().ToString();
  auto be = Backend::Open(plugin.value(), {{"data_dir", "/x"}, {"cache_size", "10"}});
  ASSERT_FALSE(be.ok());
  EXPECT_TRUE(be.status().IsInvalidArgument()) << be.status().ToString();
  EXPECT_TRUE(Contains(be.status(), "cache_size")) << be.status().ToString();
}

}  // namespace
}  // namespace dynamo
