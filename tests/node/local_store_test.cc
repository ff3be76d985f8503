// LocalStore::MergeBatch (how TRANSFER batches are taken) against Merge one
// key at a time, on the memory engine (one put each) and the file engine
// (put_batch): the same stored sets, the same trees.
#include "node/local_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "dynamo/key_hash.h"

namespace dynamo::test {
namespace {

namespace fs = std::filesystem;

class LocalStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/local_store_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<LocalStore> Open(const std::string& sub) {
    auto plugin = BackendPlugin::Load(GetParam(), DYNAMO_TEST_PLUGIN_DIR);
    EXPECT_TRUE(plugin.ok()) << plugin.status().ToString();
    if (!plugin.ok()) return nullptr;
    BackendOptions opts = {{"data_dir", dir_ + "/" + sub}};
    if (GetParam() == "file") opts.push_back({"sync", "never"});
    auto be = Backend::Open(*plugin, opts);
    EXPECT_TRUE(be.ok()) << be.status().ToString();
    if (!be.ok()) return nullptr;
    return std::make_unique<LocalStore>(std::move(be).value(), 10);
  }

  // A version of key written by `node` on top of nothing: versions by two
  // nodes are concurrent, so merging both keeps both.
  static SiblingSet VersionBy(const std::string& node, const std::string& value) {
    SiblingSet set;
    set.Apply(CausalContext(), node, 1000, value, false, 10);
    return set;
  }

  std::string dir_;
};

TEST_P(LocalStoreTest, MergeBatchStoresWhatMergingEachKeyWould) {
  auto batch = Open("batch");
  auto single = Open("single");
  ASSERT_TRUE(batch && single);
  batch->ConfigureTrees(8);
  single->ConfigureTrees(8);
  for (uint32_t p = 0; p < 8; ++p) {
    ASSERT_TRUE(batch->BuildTree(p).ok());
    ASSERT_TRUE(single->BuildTree(p).ok());
  }
  // Some keys stored already (a version the batch supersedes nothing of:
  // siblings), some new, one given twice in the batch by two nodes, and one
  // whose incoming version is already stored (nothing to write).
  const SiblingSet held = VersionBy("a", "held-a");
  for (LocalStore* s : {batch.get(), single.get()}) {
    ASSERT_TRUE(s->Merge("held", held).ok());
    ASSERT_TRUE(s->Merge("same", VersionBy("a", "same-a")).ok());
  }
  std::vector<std::pair<std::string, SiblingSet>> incoming;
  for (int i = 0; i < 300; ++i) {
    const std::string k = "new" + std::to_string(i);
    incoming.emplace_back(k, VersionBy("b", "v" + std::to_string(i)));
  }
  incoming.emplace_back("held", VersionBy("b", "held-b"));
  incoming.emplace_back("twice", VersionBy("a", "twice-a"));
  incoming.emplace_back("twice", VersionBy("b", "twice-b"));
  incoming.emplace_back("same", VersionBy("a", "same-a"));

  std::vector<LocalStore::Incoming> items;
  for (const auto& [k, set] : incoming) items.push_back({k, &set});
  ASSERT_TRUE(batch->MergeBatch(items).ok());
  for (const auto& [k, set] : incoming) ASSERT_TRUE(single->Merge(k, set).ok());

  for (const auto& [k, set] : incoming) {
    auto a = batch->Read(k);
    auto b = single->Read(k);
    ASSERT_TRUE(a.ok() && b.ok()) << k;
    EXPECT_EQ(a->Encode(), b->Encode()) << k;
  }
  auto twice = batch->Read("twice");
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->LiveValues().size(), 2u);  // neither version lost to the other
  auto h = batch->Read("held");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->LiveValues().size(), 2u);
  // The trees saw every write, as Merge's do.
  for (uint32_t p = 0; p < 8; ++p) {
    uint64_t ra = 0, rb = 0;
    ASSERT_TRUE(batch->WithTree(p, [&](MerkleTree& t) { ra = t.Root(); }));
    ASSERT_TRUE(single->WithTree(p, [&](MerkleTree& t) { rb = t.Root(); }));
    EXPECT_EQ(ra, rb) << p;
  }
}

TEST_P(LocalStoreTest, MergeBatchOfNothingWritesNothing) {
  auto store = Open("empty");
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->MergeBatch({}).ok());
  bool any = false;
  ASSERT_TRUE(
      store->backend().Scan(0, UINT64_MAX, [&](auto, auto, auto) { return !(any = true); }).ok());
  EXPECT_FALSE(any);
}

INSTANTIATE_TEST_SUITE_P(Engines, LocalStoreTest, ::testing::Values("memory", "file"));

}  // namespace
}  // namespace dynamo::test
