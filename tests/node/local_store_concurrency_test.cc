// LocalStore under threads, as a node's workers use it: writers and
// mergers on several threads while a migration (node/migration.h) mirrors,
// copies, checks and switches the file engine to a second one. Every write
// that returned is in the new engine afterwards, and the check finds
// nothing to mend (a write the mirror missed would be mended there, and so
// hidden). Built for TSan too (test.sh), which checks the locking.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dynamo/backend.h"
#include "node/local_store.h"

namespace dynamo::test {
namespace {

namespace fs = std::filesystem;

class LocalStoreConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/local_store_concurrency_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto plugin = BackendPlugin::Load("file", DYNAMO_TEST_PLUGIN_DIR);
    ASSERT_TRUE(plugin.ok()) << plugin.status().ToString();
    plugin_ = std::move(plugin).value();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Backend> Engine(const std::string& sub) {
    auto be = Backend::Open(plugin_, {{"data_dir", dir_ + "/" + sub}, {"sync", "never"}});
    EXPECT_TRUE(be.ok()) << be.status().ToString();
    return be.ok() ? std::move(be).value() : nullptr;
  }

  std::string dir_;
  std::shared_ptr<BackendPlugin> plugin_;
};

TEST_F(LocalStoreConcurrencyTest, WritesOnManyThreadsDuringAMigrationAllReachTheNewEngine) {
  std::unique_ptr<Backend> from = Engine("from");
  ASSERT_TRUE(from);
  LocalStore store(std::move(from), 10);
  // Keys there before the migration, some of which the threads write again.
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(store.Write("old" + std::to_string(i), {}, "n0", "old", false).ok());
  }

  constexpr int kThreads = 4;
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<uint64_t> ops{0};
  // Returns once the writers did `n` more operations: every step of the
  // migration below overlaps writes, however the threads are scheduled.
  auto let_writers_run = [&ops](uint64_t n) {
    const uint64_t from = ops.load();
    while (ops.load() < from + n) std::this_thread::yield();
  };
  // What each thread saw acknowledged: key -> values it must find.
  std::vector<std::multimap<std::string, std::string>> acked(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string node = "n" + std::to_string(t + 1);
      for (int i = 0; !stop.load() || i < 200; ++i) {
        const std::string value = node + "-" + std::to_string(i);
        std::string key;
        Status s;
        if (i % 3 == 0) {
          // A version from elsewhere merged in, on a key others merge into
          // too (each with a dot of its own: a sibling beside theirs).
          key = "old" + std::to_string((i * 7 + t) % 2000);
          SiblingSet incoming;
          incoming.Apply(CausalContext(), node + "-merge", 1000 + i, value, false, 10, i + 1);
          s = store.Merge(key, incoming).status();
        } else if (i % 3 == 1) {
          key = node + "/w" + std::to_string(i);
          s = store.Write(key, {}, node, value, false).status();
        } else {
          key = node + "/" + std::to_string(i);
          SiblingSet incoming;
          incoming.Apply(CausalContext(), node + "-batch", 1000 + i, value, false, 10);
          s = store.MergeBatch({{key, &incoming}});
        }
        if (s.ok()) {
          acked[t].emplace(key, value);
        } else {
          failures.fetch_add(1);
        }
        ops.fetch_add(1);
      }
    });
  }

  // Stops and joins the writers however the test ends (an ASSERT returns).
  auto join = [&] {
    stop.store(true);
    for (std::thread& t : threads) {
      if (t.joinable()) t.join();
    }
  };
  struct Joiner {
    std::function<void()> f;
    ~Joiner() { f(); }
  } joiner{join};

  std::unique_ptr<Backend> to = Engine("to");
  ASSERT_TRUE(to);
  Backend* new_engine = to.get();
  let_writers_run(100);
  store.StartMirror(std::move(to));
  uint64_t keys = 0, bytes = 0, compared = 0, mended = 0;
  // In four ranges, as a migration goes partition by partition.
  constexpr uint64_t kQuarter = UINT64_MAX / 4;
  for (uint64_t q = 0; q < 4; ++q) {
    const uint64_t lo = q * kQuarter, hi = q == 3 ? UINT64_MAX : (q + 1) * kQuarter - 1;
    let_writers_run(100);
    ASSERT_TRUE(store.CopyToMirror(lo, hi, &keys, &bytes).ok());
  }
  let_writers_run(100);
  ASSERT_TRUE(store.CheckMirror(0, UINT64_MAX, &compared, &mended).ok());
  EXPECT_EQ(mended, 0u);
  EXPECT_GE(keys, 2000u);
  EXPECT_GE(compared, keys);
  let_writers_run(100);
  ASSERT_TRUE(store.SwitchToMirror([] { return Status::OK(); }).ok());
  EXPECT_EQ(&store.backend(), new_engine);
  let_writers_run(100);
  join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store.mirror_failures(), 0u);

  // Every acknowledged value, in the new engine, read directly from it.
  size_t checked = 0;
  for (const auto& mine : acked) {
    for (const auto& [key, value] : mine) {
      auto bytes_now = new_engine->Get(key);
      ASSERT_TRUE(bytes_now.ok()) << key << ": " << bytes_now.status().ToString();
      auto set = SiblingSet::Decode(*bytes_now);
      ASSERT_TRUE(set.ok()) << key;
      const auto live = set->LiveValues();
      ASSERT_NE(std::find(live.begin(), live.end(), value), live.end()) << key << " lost " << value;
      ++checked;
    }
  }
  EXPECT_GE(checked, size_t{kThreads * 200});
  for (int i = 0; i < 2000; ++i) {
    EXPECT_TRUE(new_engine->Get("old" + std::to_string(i)).ok()) << i;
  }
}

}  // namespace
}  // namespace dynamo::test
