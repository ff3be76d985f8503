// The resolver loader (plugins/resolver.cc), --resolver specs, and the
// built-in resolvers lww and union (plugins/resolvers): each loaded as the
// node loads it, from the plugin folder's resolvers/ subfolder.
#include "dynamo/resolver.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "dynamo/resolver_plugin.h"

namespace dynamo {
namespace {

const std::string kBadDir = DYNAMO_TEST_BAD_PLUGIN_DIR;
const std::string kPluginDir = DYNAMO_TEST_PLUGIN_DIR;

using Sibling = Resolver::Sibling;

std::shared_ptr<Resolver> Builtin(const std::string& name) {
  auto r = Resolver::Load(name, kPluginDir);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : nullptr;
}

Sibling Live(std::string_view value, uint64_t ts, std::string_view node) {
  return Sibling{value, false, ts, node};
}
Sibling Tombstone(uint64_t ts, std::string_view node) { return Sibling{{}, true, ts, node}; }

// Resolves siblings in every order they can come in; all must agree.
Resolver::Resolved ResolveAnyOrder(const Resolver& r, std::vector<Sibling> siblings) {
  std::vector<size_t> order(siblings.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::optional<Resolver::Resolved> first;
  do {
    std::vector<Sibling> in;
    for (size_t i : order) in.push_back(siblings[i]);
    auto got = r.Resolve("k", in);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok()) return {};
    if (!first) {
      first = *got;
    } else {
      EXPECT_EQ(got->tombstone, first->tombstone);
      EXPECT_EQ(got->value, first->value);
    }
  } while (std::next_permutation(order.begin(), order.end()));
  return *first;
}

TEST(ResolverTest, LwwTakesTheSiblingWrittenLast) {
  auto lww = Builtin("lww");
  ASSERT_TRUE(lww);
  EXPECT_EQ(lww->name(), "lww");
  auto r = ResolveAnyOrder(
      *lww, {Live("old", 100, "n1"), Live("new", 300, "n0"), Live("middle", 200, "n2")});
  EXPECT_FALSE(r.tombstone);
  EXPECT_EQ(r.value, "new");
}

TEST(ResolverTest, LwwBreaksATieByNodeThenByValue) {
  auto lww = Builtin("lww");
  ASSERT_TRUE(lww);
  EXPECT_EQ(ResolveAnyOrder(*lww, {Live("a", 100, "n1"), Live("b", 100, "n2")}).value, "b");
  EXPECT_EQ(ResolveAnyOrder(*lww, {Live("x", 100, "n1"), Live("y", 100, "n1")}).value, "y");
}

TEST(ResolverTest, LwwDeletesWhenTheNewestIsATombstoneAndKeepsBinaryValues) {
  auto lww = Builtin("lww");
  ASSERT_TRUE(lww);
  auto deleted = ResolveAnyOrder(*lww, {Live("v", 100, "n0"), Tombstone(200, "n1")});
  EXPECT_TRUE(deleted.tombstone);
  const std::string binary("\0\xff\n\x01zero", 8);
  auto kept = ResolveAnyOrder(*lww, {Live(binary, 300, "n0"), Tombstone(200, "n1")});
  EXPECT_FALSE(kept.tombstone);
  EXPECT_EQ(kept.value, binary);
  // On an exact tie (time and node) the delete wins.
  EXPECT_TRUE(ResolveAnyOrder(*lww, {Live("v", 200, "n1"), Tombstone(200, "n1")}).tombstone);
  // An empty value is a value, not a delete.
  auto empty = ResolveAnyOrder(*lww, {Live("", 300, "n0"), Live("v", 200, "n1")});
  EXPECT_FALSE(empty.tombstone);
  EXPECT_EQ(empty.value, "");
}

TEST(ResolverTest, UnionSortsTheMembersOfEveryLiveSiblingOnce) {
  auto u = Builtin("union");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->name(), "union");
  auto r = ResolveAnyOrder(
      *u, {Live("pen\napple", 1, "n0"), Live("book\napple\n", 2, "n1"), Tombstone(3, "n2")});
  EXPECT_FALSE(r.tombstone);
  EXPECT_EQ(r.value, "apple\nbook\npen");
}

TEST(ResolverTest, UnionKeepsBinaryMembersAndDropsEmptyOnes) {
  auto u = Builtin("union");
  ASSERT_TRUE(u);
  const std::string a("\0a", 2), b("\xff\x00", 2);
  auto r = ResolveAnyOrder(*u, {Live(a + "\n\n" + b, 1, "n0"), Live(b, 2, "n1")});
  EXPECT_EQ(r.value, a + "\n" + b);
}

TEST(ResolverTest, UnionOfTombstonesOnlyStaysDeletedAndOfEmptyValuesIsEmpty) {
  auto u = Builtin("union");
  ASSERT_TRUE(u);
  EXPECT_TRUE(ResolveAnyOrder(*u, {Tombstone(1, "n0"), Tombstone(2, "n1")}).tombstone);
  auto empty = ResolveAnyOrder(*u, {Live("", 1, "n0"), Live("\n", 2, "n1")});
  EXPECT_FALSE(empty.tombstone);
  EXPECT_EQ(empty.value, "");
}

Status Refusal(const std::string& name_or_path, const std::string& dir) {
  auto r = Resolver::Load(name_or_path, dir);
  EXPECT_FALSE(r.ok()) << name_or_path << " was loaded";
  if (r.ok()) return Status::OK();
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().ToString();
  return r.status();
}

bool Contains(const Status& s, const std::string& what) {
  return s.message().find(what) != std::string::npos;
}

TEST(ResolverTest, AWrongAbiIsRefusedNamingBothVersions) {
  const std::string path = kBadDir + "/resolver_bad_abi.so";
  Status s = Refusal(path, "");
  EXPECT_TRUE(Contains(s, path)) << s.ToString();
  EXPECT_TRUE(Contains(s, "built for resolver ABI version 999")) << s.ToString();
  EXPECT_TRUE(
      Contains(s, "speaks resolver ABI version " + std::to_string(DYNAMO_RESOLVER_ABI_VERSION)))
      << s.ToString();
}

TEST(ResolverTest, ATableTooSmallAnEngineAndAMissingFileAreRefused) {
  Status small = Refusal(kBadDir + "/resolver_small_table.so", "");
  EXPECT_TRUE(Contains(small, "bytes, resolver ABI version 1 needs at least")) << small.ToString();
  // A storage engine is no resolver.
  Status engine = Refusal(kPluginDir + "/memory.so", "");
  EXPECT_TRUE(Contains(engine, "does not export dynamo_resolver_entry")) << engine.ToString();
  Status unknown = Refusal("nosuch", kPluginDir);
  EXPECT_TRUE(Contains(unknown, "unknown resolver 'nosuch'")) << unknown.ToString();
  EXPECT_TRUE(Contains(unknown, kPluginDir + "/resolvers/nosuch.so")) << unknown.ToString();
  Status missing = Refusal("/nonexistent/r.so", "");
  EXPECT_TRUE(Contains(missing, "/nonexistent/r.so does not exist")) << missing.ToString();
}

TEST(ResolverTest, AFailingResolverGivesItsMessage) {
  auto r = Resolver::Load(kBadDir + "/resolver_fails.so", "");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto got = (*r)->Resolve("k", {Live("a", 1, "n0"), Live("b", 2, "n1")});
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(Contains(got.status(), "resolver 'resolver_fails'")) << got.status().ToString();
  EXPECT_TRUE(Contains(got.status(), "cannot be reconciled")) << got.status().ToString();
}

TEST(ResolverTest, TheLongestMatchingPrefixWinsAndTheDefaultTakesTheRest) {
  auto set = Resolvers::Load({"lww", "cart/=union", "cart/gift/=lww"}, kPluginDir);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_FALSE(set->empty());
  EXPECT_EQ(set->Describe(), "lww, cart/=union, cart/gift/=lww");
  ASSERT_NE(set->For("cart/1"), nullptr);
  EXPECT_EQ(set->For("cart/1")->name(), "union");
  EXPECT_EQ(set->For("cart/gift/1")->name(), "lww");
  EXPECT_EQ(set->For("user/1")->name(), "lww");
  EXPECT_EQ(set->For("")->name(), "lww");

  auto prefixes_only = Resolvers::Load({"set:=union"}, kPluginDir);
  ASSERT_TRUE(prefixes_only.ok()) << prefixes_only.status().ToString();
  EXPECT_EQ(prefixes_only->For("user/1"), nullptr);
  EXPECT_NE(prefixes_only->For("set:1"), nullptr);

  auto none = Resolvers::Load({}, kPluginDir);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(none->For("k"), nullptr);
}

TEST(ResolverTest, BadSpecsAreRefusedNamingThem) {
  struct Case {
    std::vector<std::string> specs;
    std::string says;
  } cases[] = {
      {{"=lww"}, "the prefix before '=' is empty"},
      {{"cart/="}, "names no resolver"},
      {{""}, "names no resolver"},
      {{"lww", "union"}, "given twice for every key"},
      {{"a=lww", "a=union"}, "given twice for the prefix 'a'"},
      {{"a=nosuch"}, "unknown resolver 'nosuch'"},
  };
  for (const auto& c : cases) {
    auto set = Resolvers::Load(c.specs, kPluginDir);
    ASSERT_FALSE(set.ok()) << c.says;
    EXPECT_TRUE(Contains(set.status(), c.says)) << set.status().ToString();
  }
}

}  // namespace
}  // namespace dynamo
