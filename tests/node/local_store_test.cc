// LocalStore::MergeBatch (how TRANSFER batches are taken) against Merge one
// key at a time, on the memory engine (one put each) and the file engine
// (put_batch): the same stored sets, the same trees.
#include "node/local_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>

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

// Everything an engine holds, key -> bytes.
std::map<std::string, std::string> Contents(Backend& b) {
  std::map<std::string, std::string> all;
  EXPECT_TRUE(b.Scan(0, UINT64_MAX, [&](std::string_view k, uint64_t, std::string_view v) {
                 all.emplace(std::string(k), std::string(v));
                 return true;
               }).ok());
  return all;
}

// A migration's steps (node/migration.h): writes while mirroring reach both
// engines, the copy brings what was there before, the check mends what
// differs, and the switch makes the new engine the store's.
TEST_P(LocalStoreTest, MirrorCopyCheckAndSwitchLeaveTheNewEngineHoldingEverything) {
  auto store = Open("from");
  ASSERT_TRUE(store);
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(store->Write("before" + std::to_string(i), {}, "n1", "v", false).ok());
  }
  // The target engine, taken out of its store.
  auto plugin = BackendPlugin::Load(GetParam(), DYNAMO_TEST_PLUGIN_DIR);
  ASSERT_TRUE(plugin.ok());
  BackendOptions opts = {{"data_dir", dir_ + "/mirror"}};
  auto engine = Backend::Open(*plugin, opts);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  store->StartMirror(std::move(engine).value());
  ASSERT_NE(store->mirror(), nullptr);

  // Writes, merges, batches and removals while mirroring reach both.
  ASSERT_TRUE(store->Write("during", {}, "n1", "w", false).ok());
  SiblingSet other = VersionBy("n2", "x");
  ASSERT_TRUE(store->Merge("before1", other).ok());
  SiblingSet batched = VersionBy("n3", "b");
  ASSERT_TRUE(store->MergeBatch({{"batched", &batched}}).ok());
  auto held = store->backend().Get("before2");
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(store->RemoveIfUnchanged("before2", *held).ok());
  // The same bytes as the engine, before any copy.
  auto mirror_now = Contents(*store->mirror());
  EXPECT_EQ(mirror_now.size(), 3u);  // during, before1, batched; not before0
  EXPECT_EQ(mirror_now.count("before2"), 0u);
  for (const char* k : {"during", "before1", "batched"}) {
    auto engine_has = store->backend().Get(k);
    ASSERT_TRUE(engine_has.ok()) << k;
    EXPECT_EQ(mirror_now[k], *engine_has) << k;
  }

  uint64_t keys = 0, bytes = 0;
  ASSERT_TRUE(store->CopyToMirror(0, UINT64_MAX, &keys, &bytes).ok());
  EXPECT_EQ(keys, 301u);  // 299 left of before*, during, batched
  EXPECT_GT(bytes, 0u);
  EXPECT_EQ(Contents(*store->mirror()), Contents(store->backend()));

  // The check finds and mends what differs: a key changed behind the
  // store's back, one missing, one only in the mirror.
  ASSERT_TRUE(store->mirror()->Put("before3", KeyHash("before3"), "stale").ok());
  ASSERT_TRUE(store->mirror()->Remove("before4").ok());
  ASSERT_TRUE(store->mirror()->Put("ghost", KeyHash("ghost"), "x").ok());
  uint64_t compared = 0, mended = 0;
  ASSERT_TRUE(store->CheckMirror(0, UINT64_MAX, &compared, &mended).ok());
  EXPECT_EQ(compared, 301u);
  EXPECT_EQ(mended, 3u);
  EXPECT_EQ(Contents(*store->mirror()), Contents(store->backend()));
  compared = mended = 0;
  ASSERT_TRUE(store->CheckMirror(0, UINT64_MAX, &compared, &mended).ok());
  EXPECT_EQ(mended, 0u);

  Backend* old_engine = &store->backend();
  Backend* new_engine = store->mirror();
  bool recorded = false;
  ASSERT_TRUE(store
                  ->SwitchToMirror([&] {
                    recorded = true;
                    return Status::OK();
                  })
                  .ok());
  EXPECT_TRUE(recorded);
  EXPECT_EQ(&store->backend(), new_engine);
  EXPECT_EQ(store->mirror(), nullptr);
  // Writes go to the new engine only now; the old one stays open.
  ASSERT_TRUE(store->Write("after", {}, "n1", "a", false).ok());
  EXPECT_TRUE(new_engine->Get("after").ok());
  EXPECT_TRUE(old_engine->Get("after").status().IsNotFound());
  EXPECT_EQ(store->mirror_failures(), 0u);
}

TEST_P(LocalStoreTest, NoSwitchWhenTheRecordFailsOrAMirrorWriteFailed) {
  auto store = Open("from");
  ASSERT_TRUE(store);
  auto plugin = BackendPlugin::Load(GetParam(), DYNAMO_TEST_PLUGIN_DIR);
  ASSERT_TRUE(plugin.ok());
  auto engine = Backend::Open(*plugin, {{"data_dir", dir_ + "/mirror"}});
  ASSERT_TRUE(engine.ok());
  Backend* old_engine = &store->backend();
  store->StartMirror(std::move(engine).value());
  Status s = store->SwitchToMirror([] { return Status::IOError("disk full"); });
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
  EXPECT_EQ(&store->backend(), old_engine);
  EXPECT_NE(store->mirror(), nullptr);
  // A new engine whose sync fails (tests/plugins/calls_fail.c): the
  // store's Sync still answers for its engine, but the failure is counted,
  // and the switch refused before the record.
  store->StopMirror();
  auto failing =
      BackendPlugin::Load(std::string(DYNAMO_TEST_BAD_PLUGIN_DIR) + "/calls_fail.so", "");
  ASSERT_TRUE(failing.ok()) << failing.status().ToString();
  auto failing_engine = Backend::Open(*failing, {});
  ASSERT_TRUE(failing_engine.ok()) << failing_engine.status().ToString();
  store->StartMirror(std::move(failing_engine).value());
  EXPECT_TRUE(store->Sync().ok());
  EXPECT_GT(store->mirror_failures(), 0u);
  EXPECT_NE(store->mirror_error().find("deliberate sync failure"), std::string::npos)
      << store->mirror_error();
  bool recorded = false;
  s = store->SwitchToMirror([&] {
    recorded = true;
    return Status::OK();
  });
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(recorded);
  EXPECT_EQ(&store->backend(), old_engine);
}

TEST_P(LocalStoreTest, StopMirrorLeavesTheEngineAsItWas) {
  auto store = Open("from");
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Write("k", {}, "n1", "v", false).ok());
  auto plugin = BackendPlugin::Load(GetParam(), DYNAMO_TEST_PLUGIN_DIR);
  ASSERT_TRUE(plugin.ok());
  auto engine = Backend::Open(*plugin, {{"data_dir", dir_ + "/mirror"}});
  ASSERT_TRUE(engine.ok());
  store->StartMirror(std::move(engine).value());
  store->StopMirror();
  EXPECT_EQ(store->mirror(), nullptr);
  ASSERT_TRUE(store->Write("k2", {}, "n1", "v", false).ok());
  uint64_t keys = 0, bytes = 0;
  EXPECT_TRUE(store->CopyToMirror(0, UINT64_MAX, &keys, &bytes).IsInvalidArgument());
  EXPECT_EQ(Contents(store->backend()).size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Engines, LocalStoreTest, ::testing::Values("memory", "file"));

}  // namespace
}  // namespace dynamo::test
