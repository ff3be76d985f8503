// Tests of what is specific to the "file" storage engine: torn tails and
// corruption at recovery, checksums on read, compaction (and tombstones that
// must survive it), segment roll-over, sync policies, options and the folder
// lock. The behaviour every engine shares is in conformance_test.cc.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "dynamo/backend.h"
#include "dynamo/backend_plugin.h"
#include "dynamo/no_wait.h"

namespace dynamo {
namespace {

namespace fs = std::filesystem;

uint64_t TestHash(std::string_view key) {  // FNV-1a: any stable hash will do
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string Value(const std::string& key, int version, size_t len = 64) {
  std::string v = key + "@" + std::to_string(version) + ":";
  while (v.size() < len) v += static_cast<char>('a' + (v.size() * 7 + version) % 26);
  return v;
}

class FileEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/file_engine_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto plugin = BackendPlugin::Load("file", DYNAMO_TEST_PLUGIN_DIR);
    ASSERT_TRUE(plugin.ok()) << plugin.status().ToString();
    plugin_ = *plugin;
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<std::unique_ptr<Backend>> TryOpen(BackendOptions extra = {}) {
    BackendOptions opts = {{"path", dir_}, {"data_dir", dir_ + "/unused"}};
    bool has_sync = false;
    for (const auto& [k, v] : extra) has_sync |= (k == "sync");
    if (!has_sync) opts.push_back({"sync", "always"});
    opts.insert(opts.end(), extra.begin(), extra.end());
    return Backend::Open(plugin_, opts);
  }
  std::unique_ptr<Backend> OpenOrDie(BackendOptions extra = {}) {
    auto b = TryOpen(std::move(extra));
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(b).value() : nullptr;
  }

  // Drops the (synced, so clean) segments from the page cache, as memory
  // pressure would.
  void DropSegmentsFromPageCache() const {
    for (const auto& seg : Segments()) {
      int fd = ::open(seg.c_str(), O_RDONLY | O_CLOEXEC);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
      ::close(fd);
    }
  }

  // Segment files, oldest first.
  std::vector<fs::path> Segments() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().extension() == ".log") out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  uint64_t TotalLogBytes() const {
    uint64_t total = 0;
    for (const auto& p : Segments()) {
      std::error_code ec;  // compaction may unlink a segment meanwhile
      uint64_t n = fs::file_size(p, ec);
      if (!ec) total += n;
    }
    return total;
  }

  static void FlipByte(const fs::path& p, uint64_t offset) {
    int fd = ::open(p.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    char c;
    ASSERT_EQ(::pread(fd, &c, 1, static_cast<off_t>(offset)), 1);
    c = static_cast<char>(c ^ 0x5a);
    ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(offset)), 1);
    ::close(fd);
  }

  static void ExpectValue(Backend& b, const std::string& key, const std::string& want) {
    auto got = b.Get(key);
    ASSERT_TRUE(got.ok()) << key << ": " << got.status().ToString();
    EXPECT_EQ(*got, want) << key;
  }
  static void ExpectAbsent(Backend& b, const std::string& key) {
    auto got = b.Get(key);
    EXPECT_TRUE(got.status().IsNotFound()) << key << ": " << got.status().ToString();
  }

  // Polls stats until pred(json) holds or the deadline passes.
  template <typename Pred>
  bool WaitFor(Pred pred, std::chrono::seconds limit = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
  }

  static uint64_t StatField(Backend& b, const std::string& field) {
    auto s = b.Stats();
    if (!s.ok()) return ~0ull;
    auto pos = s->find("\"" + field + "\":");
    if (pos == std::string::npos) return ~0ull;
    return std::stoull(s->substr(pos + field.size() + 3));
  }

  std::string dir_;
  std::shared_ptr<BackendPlugin> plugin_;
};

TEST_F(FileEngineTest, PluginDeclaresDurableFileEngine) {
  EXPECT_EQ(plugin_->name(), "file");
  auto b = OpenOrDie();
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->durable());
  EXPECT_FALSE(b->nonblocking());
}

// Unless every write is synced, puts only reach the page cache, so the host
// may call the engine for single keys on its loop; a read there (inside a
// NoWaitScope) answers WouldBlock rather than wait for the disk, and the same
// read outside any scope fetches the value.
TEST_F(FileEngineTest, SingleKeyCallsMayRunOnTheLoopUnlessEveryWriteIsSynced) {
  {
    auto always = OpenOrDie({{"sync", "always"}});
    ASSERT_TRUE(always);
    EXPECT_FALSE(always->single_key_inline());
  }
  auto b = OpenOrDie({{"sync", "interval"}, {"cache_bytes", "0"}});  // every read from the file
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->single_key_inline());
  EXPECT_FALSE(b->nonblocking());
  EXPECT_TRUE(b->durable());
  const std::string value = Value("cold", 1, 8192);
  ASSERT_TRUE(b->Put("cold", TestHash("cold"), value).ok());
  {
    NoWaitScope on_loop;
    auto hot = b->Get("cold");  // just written: in the page cache
    ASSERT_TRUE(hot.ok()) << hot.status().ToString();
    EXPECT_EQ(*hot, value);
    EXPECT_TRUE(b->Get("absent").status().IsNotFound());  // the index is in memory
  }
  // Written back and dropped from the page cache, as under memory pressure.
  ASSERT_TRUE(b->Sync().ok());
  ASSERT_NO_FATAL_FAILURE(DropSegmentsFromPageCache());
  {
    NoWaitScope on_loop;
    auto cold = b->Get("cold");
    EXPECT_TRUE(cold.status().IsWouldBlock()) << cold.status().ToString();
  }
  auto fetched = b->Get("cold");  // a worker: may wait
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(*fetched, value);
  NoWaitScope on_loop;
  auto cached = b->Get("cold");
  ASSERT_TRUE(cached.ok()) << cached.status().ToString();
  EXPECT_EQ(*cached, value);
}

// Regression: a REMOVE record (empty value, NULL data()) once got a wrong
// crc, because zlib's crc32 restarts at 0 for a NULL buffer; recovery then
// cut it off as a torn tail and the removed key came back.
TEST_F(FileEngineTest, RemoveRecordsPassTheirChecksumAtReopen) {
  {
    auto b = OpenOrDie();
    ASSERT_TRUE(b);
    ASSERT_TRUE(b->Put("gone", 1, "v").ok());
    ASSERT_TRUE(b->Put("stays", 2, "w").ok());
    ASSERT_TRUE(b->Remove("gone").ok());
    EXPECT_TRUE(b->Remove("gone").IsNotFound());
  }
  auto b = OpenOrDie();
  ASSERT_TRUE(b);
  ExpectAbsent(*b, "gone");
  ExpectValue(*b, "stays", "w");
  EXPECT_EQ(StatField(*b, "torn_bytes_dropped"), 0u);
}

TEST_F(FileEngineTest, TornTailMidRecordServesEverythingBefore) {
  {
    auto b = OpenOrDie();
    ASSERT_TRUE(b);
    for (int i = 0; i < 20; ++i)
      ASSERT_TRUE(b->Put("k" + std::to_string(i), 1, Value("k", i)).ok());
    ASSERT_TRUE(b->Put("victim", 1, "old value").ok());
    ASSERT_TRUE(b->Put("victim", 1, "new value that the crash cut short").ok());
  }
  auto segs = Segments();
  ASSERT_EQ(segs.size(), 1u);
  uint64_t size = fs::file_size(segs.back());
  fs::resize_file(segs.back(), size - 7);  // mid-way through the last record
  {
    auto b = OpenOrDie();
    ASSERT_TRUE(b);
    for (int i = 0; i < 20; ++i) ExpectValue(*b, "k" + std::to_string(i), Value("k", i));
    ExpectValue(*b, "victim", "old value");
    EXPECT_GT(StatField(*b, "torn_bytes_dropped"), 0u);
    ASSERT_TRUE(b->Put("after", 1, "written after recovery").ok());
  }
  // The tail was cut off, so what was appended after recovery is readable.
  auto b = OpenOrDie();
  ASSERT_TRUE(b);
  ExpectValue(*b, "after", "written after recovery");
  ExpectValue(*b, "victim", "old value");
  EXPECT_EQ(StatField(*b, "torn_bytes_dropped"), 0u);
}

TEST_F(FileEngineTest, TornHeaderOfNewKeyLeavesItAbsent) {
  {
    auto b = OpenOrDie();
    ASSERT_TRUE(b);
    ASSERT_TRUE(b->Put("a", 1, "A").ok());
    ASSERT_TRUE(b->Put("b", 2, "B").ok());
  }
  auto seg = Segments().back();
  uint64_t size = fs::file_size(seg);
  fs::resize_file(seg, size - (21 + 1 + 1) + 5);  // 5 bytes of b's 21-byte header survive
  auto b = OpenOrDie();
  ASSERT_TRUE(b);
  ExpectValue(*b, "a", "A");
  ExpectAbsent(*b, "b");
}

TEST_F(FileEngineTest, GarbageAppendedAtTailIsDropped) {
  {
    auto b = OpenOrDie();
    ASSERT_TRUE(b);
    for (int i = 0; i < 10; ++i)
      ASSERT_TRUE(b->Put("g" + std::to_string(i), 7, Value("g", i)).ok());
  }
  auto seg = Segments().back();
  uint64_t good = fs::file_size(seg);
  {
    int fd = ::open(seg.c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    std::string junk = "\x13\x37garbage that is not a record at all\xff\x00\x01";
    ASSERT_EQ(::write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
    ::close(fd);
  }
  auto b = OpenOrDie();
  ASSERT_TRUE(b);
  for (int i = 0; i < 10; ++i) ExpectValue(*b, "g" + std::to_string(i), Value("g", i));
  EXPECT_EQ(fs::file_size(seg), good);
  EXPECT_EQ(StatField(*b, "keys"), 10u);
}

TEST_F(FileEngineTest, FlippedByteInLastRecordIsDroppedAtRecovery) {
  {
    auto b = OpenOrDie();
    ASSERT_TRUE(b);
    ASSERT_TRUE(b->Put("x", 1, "x-first").ok());
    ASSERT_TRUE(b->Put("y", 2, "y-only").ok());
    ASSERT_TRUE(b->Put("x", 1, "x-second").ok());
  }
  auto seg = Segments().back();
  FlipByte(seg, fs::file_size(seg) - 1);  // inside the value of the last record
  auto b = OpenOrDie();
  ASSERT_TRUE(b);
  ExpectValue(*b, "x", "x-first");  // the previous value, never garbage
  ExpectValue(*b, "y", "y-only");
}

TEST_F(FileEngineTest, FlippedByteInSealedSegmentRefusesOpen) {
  {
    auto b = OpenOrDie({{"segment_bytes", "4096"}});
    ASSERT_TRUE(b);
    for (int i = 0; i < 200; ++i)
      ASSERT_TRUE(b->Put("s" + std::to_string(i), 1, Value("s", i)).ok());
  }
  auto segs = Segments();
  ASSERT_GE(segs.size(), 3u);
  FlipByte(segs.front(), 30);  // in the key or value of the first record
  auto b = TryOpen({{"segment_bytes", "4096"}});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Status::Code::kCorruption) << b.status().ToString();
  EXPECT_NE(b.status().message().find(segs.front().filename().string()), std::string::npos)
      << b.status().message();
  EXPECT_NE(b.status().message().find("offset 0"), std::string::npos) << b.status().message();
}

TEST_F(FileEngineTest, FlippedByteDetectedOnRead) {
  auto b = OpenOrDie({{"sync", "never"}, {"cache_bytes", "0"}});  // every read from the file
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->Put("good", TestHash("good"), "fine").ok());
  ASSERT_TRUE(b->Put("bad", TestHash("bad"), std::string(100, 'v')).ok());
  ASSERT_TRUE(b->Sync().ok());
  auto seg = Segments().back();
  FlipByte(seg, fs::file_size(seg) - 10);  // the value of "bad", the last record
  auto got = b->Get("bad");
  EXPECT_EQ(got.status().code(), Status::Code::kCorruption) << got.status().ToString();
  ExpectValue(*b, "good", "fine");
  Status scan =
      b->Scan(0, ~0ull, [](std::string_view, uint64_t, std::string_view) { return true; });
  EXPECT_EQ(scan.code(), Status::Code::kCorruption) << scan.ToString();
}

TEST_F(FileEngineTest, SegmentRollOverAndReopenAcrossManySegments) {
  std::map<std::string, std::string> model;
  {
    auto b = OpenOrDie({{"segment_bytes", "4096"}, {"sync", "never"}});
    ASSERT_TRUE(b);
    for (int i = 0; i < 600; ++i) {
      std::string k = "roll" + std::to_string(i);
      model[k] = Value(k, i, 100);
      ASSERT_TRUE(b->Put(k, TestHash(k), model[k]).ok());
    }
  }
  auto segs = Segments();
  EXPECT_GE(segs.size(), 15u);
  for (const auto& p : segs) {
    EXPECT_LE(fs::file_size(p), 4096u) << p;
    EXPECT_EQ(p.filename().string().size(), 14u) << p;  // NNNNNNNNNN.log
  }
  auto b = OpenOrDie({{"segment_bytes", "4096"}});
  ASSERT_TRUE(b);
  for (const auto& [k, v] : model) ExpectValue(*b, k, v);
  EXPECT_EQ(StatField(*b, "segments"), segs.size());
  EXPECT_EQ(StatField(*b, "keys"), model.size());
}

// put_batch (ABI 1.1) writes runs of records: a batch larger than what is
// left of a segment rolls over between records, never splits one, and a key
// given twice keeps its later value, after a reopen too.
TEST_F(FileEngineTest, PutBatchRollsOverBetweenRecordsAndSurvivesReopen) {
  std::map<std::string, std::string> model;
  {
    auto b = OpenOrDie({{"segment_bytes", "4096"}, {"sync", "never"}});
    ASSERT_TRUE(b);
    ASSERT_NE(b->plugin().api()->put_batch, nullptr);  // the engine's own, not one put each
    std::vector<std::string> keys, values;
    for (int i = 0; i < 700; ++i) {
      std::string k = "batch" + std::to_string(i % 500);  // 200 keys twice
      values.push_back(Value(k, i, 100));
      keys.push_back(k);
      model[k] = values.back();
    }
    std::vector<Backend::Item> items;
    for (size_t i = 0; i < keys.size(); ++i)
      items.push_back({keys[i], TestHash(keys[i]), values[i]});
    ASSERT_TRUE(b->PutBatch(items).ok());
    for (const auto& [k, v] : model) ExpectValue(*b, k, v);
    ASSERT_TRUE(b->Sync().ok());
  }
  auto segs = Segments();
  EXPECT_GE(segs.size(), 15u);
  for (const auto& p : segs) EXPECT_LE(fs::file_size(p), 4096u) << p;
  auto b = OpenOrDie({{"segment_bytes", "4096"}});
  ASSERT_TRUE(b);
  for (const auto& [k, v] : model) ExpectValue(*b, k, v);
  EXPECT_EQ(StatField(*b, "keys"), model.size());
}

TEST_F(FileEngineTest, PutBatchWithAnOversizedItemStoresNothing) {
  auto b = OpenOrDie();
  ASSERT_TRUE(b);
  const std::string huge_key((1u << 20) + 1, 'k');  // past the engine's key limit
  std::vector<Backend::Item> items = {{"first", TestHash("first"), "1"},
                                      {huge_key, TestHash(huge_key), "2"},
                                      {"last", TestHash("last"), "3"}};
  Status s = b->PutBatch(items);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_TRUE(b->Get("first").status().IsNotFound());
  EXPECT_TRUE(b->Get("last").status().IsNotFound());
  EXPECT_EQ(StatField(*b, "keys"), 0u);
  ASSERT_TRUE(b->Put("after", TestHash("after"), "ok").ok());  // still writable
  ExpectValue(*b, "after", "ok");
}

// A batch keeps its values out of the value cache, but never leaves an
// older value of a key there.
TEST_F(FileEngineTest, PutBatchReplacesAValueTheCacheHeld) {
  auto b = OpenOrDie({{"sync", "never"}});
  ASSERT_TRUE(b);
  ASSERT_TRUE(b->Put("k", TestHash("k"), "old").ok());
  ExpectValue(*b, "k", "old");  // now cached
  ASSERT_TRUE(b->PutBatch({{"k", TestHash("k"), "new"}}).ok());
  ExpectValue(*b, "k", "new");
  ASSERT_TRUE(b->PutBatch({{"k", TestHash("k"), "newer"}, {"j", TestHash("j"), "x"}}).ok());
  ExpectValue(*b, "k", "newer");
  ExpectValue(*b, "j", "x");
}

TEST_F(FileEngineTest, CompactionReclaimsSpaceAndKeepsLatestValues) {
  const BackendOptions opts = {{"segment_bytes", "4096"}, {"sync", "never"}};
  std::map<std::string, std::string> model;
  std::vector<std::string> removed;
  uint64_t peak = 0;
  {
    auto b = OpenOrDie(opts);
    ASSERT_TRUE(b);
    for (int round = 0; round < 40; ++round) {
      for (int i = 0; i < 50; ++i) {
        std::string k = "c" + std::to_string(i);
        model[k] = Value(k, round);
        ASSERT_TRUE(b->Put(k, TestHash(k), model[k]).ok());
      }
      peak = std::max(peak, TotalLogBytes());
    }
    for (int i = 0; i < 50; i += 5) {
      std::string k = "c" + std::to_string(i);
      ASSERT_TRUE(b->Remove(k).ok());
      model.erase(k);
      removed.push_back(k);
    }
    // 40 versions of each key were written; once compaction caught up, far
    // fewer bytes remain than were ever written.
    uint64_t written = 40ull * 50 * (21 + 3 + 64);
    ASSERT_TRUE(WaitFor([&] {
      return StatField(*b, "compactions") > 0 && TotalLogBytes() < written / 4;
    })) << "log bytes "
        << TotalLogBytes() << " of " << written << "; " << b->Stats().value();
    for (const auto& [k, v] : model) ExpectValue(*b, k, v);
    for (const auto& k : removed) ExpectAbsent(*b, k);
  }
  auto b = OpenOrDie(opts);
  ASSERT_TRUE(b);
  for (const auto& [k, v] : model) ExpectValue(*b, k, v);
  for (const auto& k : removed) ExpectAbsent(*b, k);
  EXPECT_EQ(StatField(*b, "keys"), model.size());
}

TEST_F(FileEngineTest, RemovesNeverResurrectAfterCompactionAndReopen) {
  const BackendOptions opts = {{"segment_bytes", "4096"}, {"sync", "never"}};
  std::vector<std::string> kept, removed;
  {
    auto b = OpenOrDie(opts);
    ASSERT_TRUE(b);
    // Long-lived keys fill the first segments, which stay mostly live and so
    // are not compacted: their PUTs of the removed keys stay on disk.
    for (int i = 0; i < 120; ++i) {
      std::string k = "keep" + std::to_string(i);
      ASSERT_TRUE(b->Put(k, TestHash(k), Value(k, 0)).ok());
      (i % 4 == 0 ? removed : kept).push_back(k);
    }
    // The REMOVE records land among churn that dies soon after, so their
    // segments are compacted and the tombstones must be carried forward.
    for (size_t r = 0; r < removed.size(); ++r) {
      ASSERT_TRUE(b->Remove(removed[r]).ok());
      for (int c = 0; c < 10; ++c) {
        std::string k = "churn" + std::to_string(c);
        ASSERT_TRUE(b->Put(k, TestHash(k), Value(k, static_cast<int>(r))).ok());
      }
    }
    for (int round = 0; round < 30; ++round) {
      for (int c = 0; c < 10; ++c) {
        std::string k = "churn" + std::to_string(c);
        ASSERT_TRUE(b->Put(k, TestHash(k), Value(k, 1000 + round)).ok());
      }
    }
    ASSERT_TRUE(WaitFor([&] { return StatField(*b, "compactions") >= 3; })) << b->Stats().value();
    for (const auto& k : removed) ExpectAbsent(*b, k);
  }
  auto b = OpenOrDie(opts);
  ASSERT_TRUE(b);
  for (const auto& k : removed) ExpectAbsent(*b, k);
  for (const auto& k : kept) ExpectValue(*b, k, Value(k, 0));
  for (int c = 0; c < 10; ++c) {
    std::string k = "churn" + std::to_string(c);
    ExpectValue(*b, k, Value(k, 1029));
  }
}

TEST_F(FileEngineTest, EverySyncPolicyIsAcceptedAndDurableAfterSync) {
  for (const char* policy : {"always", "interval", "never"}) {
    {
      auto b = OpenOrDie({{"sync", policy}, {"sync_interval_ms", "10"}});
      ASSERT_TRUE(b) << policy;
      ASSERT_TRUE(b->Put(policy, 3, std::string("value for ") + policy).ok());
      ASSERT_TRUE(b->Sync().ok());
      auto stats = b->Stats();
      ASSERT_TRUE(stats.ok());
      EXPECT_NE(stats->find(std::string("\"sync\":\"") + policy + "\""), std::string::npos)
          << *stats;
    }
    auto b = OpenOrDie();
    ASSERT_TRUE(b);
    ExpectValue(*b, policy, std::string("value for ") + policy);
  }
}

TEST_F(FileEngineTest, BadOptionValuesAreRefused) {
  struct Case {
    const char* key;
    const char* value;
  } cases[] = {{"sync", "sometimes"},       {"segment_bytes", "abc"}, {"segment_bytes", "-5"},
               {"compact_ratio", "0"},      {"compact_ratio", "1.5"}, {"sync_interval_ms", "0"},
               {"sync_interval_ms", "10ms"}};
  for (const auto& c : cases) {
    auto b = TryOpen({{c.key, c.value}});
    ASSERT_FALSE(b.ok()) << c.key << "=" << c.value;
    EXPECT_TRUE(b.status().IsInvalidArgument()) << b.status().ToString();
    EXPECT_NE(b.status().message().find(c.key), std::string::npos) << b.status().message();
  }
}

TEST_F(FileEngineTest, UnknownOptionIsRefusedNamingKnownOnes) {
  auto b = TryOpen({{"segmnet_bytes", "4096"}});
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(b.status().IsInvalidArgument()) << b.status().ToString();
  EXPECT_NE(b.status().message().find("segmnet_bytes"), std::string::npos);
  EXPECT_NE(b.status().message().find("segment_bytes"), std::string::npos);
  EXPECT_NE(b.status().message().find("compact_ratio"), std::string::npos);
}

TEST_F(FileEngineTest, DataDirAloneSelectsItsFileSubfolder) {
  std::string data_dir = dir_ + "/node/a";  // does not exist yet: mkdir -p
  {
    auto b = Backend::Open(plugin_, {{"data_dir", data_dir}});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    ASSERT_TRUE((*b)->Put("k", 1, "v").ok());
  }
  EXPECT_TRUE(fs::exists(data_dir + "/file/0000000001.log"));
  EXPECT_TRUE(fs::exists(data_dir + "/file/LOCK"));
  auto none = Backend::Open(plugin_, {{"sync", "never"}});
  EXPECT_TRUE(none.status().IsInvalidArgument()) << none.status().ToString();
}

TEST_F(FileEngineTest, SecondOpenOfTheSameFolderIsRefusedWhileFirstIsOpen) {
  auto first = OpenOrDie();
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->Put("k", 1, "v").ok());
  auto second = TryOpen();
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("in use"), std::string::npos)
      << second.status().message();
  first.reset();
  auto third = OpenOrDie();
  ASSERT_TRUE(third);
  ExpectValue(*third, "k", "v");
}

TEST_F(FileEngineTest, StatsJsonCountsKeys) {
  auto b = OpenOrDie();
  ASSERT_TRUE(b);
  for (const char* k : {"one", "two", "three"}) ASSERT_TRUE(b->Put(k, TestHash(k), k).ok());
  ASSERT_TRUE(b->Remove("two").ok());
  auto stats = b->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->front(), '{');
  EXPECT_EQ(stats->back(), '}');
  EXPECT_NE(stats->find("\"engine\":\"file\""), std::string::npos) << *stats;
  EXPECT_NE(stats->find("\"keys\":2"), std::string::npos) << *stats;
  EXPECT_NE(stats->find("\"segments\":1"), std::string::npos) << *stats;
}

TEST_F(FileEngineTest, ScanByHashRangeAcrossBatchesAndStopsEarly) {
  auto b = OpenOrDie({{"sync", "never"}});
  ASSERT_TRUE(b);
  for (uint64_t i = 0; i < 1000; ++i) {
    ASSERT_TRUE(b->Put("h" + std::to_string(i), i, "v" + std::to_string(i)).ok());
  }
  std::map<std::string, int> seen;
  ASSERT_TRUE(b->Scan(100, 899, [&](std::string_view k, uint64_t h, std::string_view v) {
                 EXPECT_EQ(std::string(v), "v" + std::to_string(h));
                 EXPECT_EQ(std::string(k), "h" + std::to_string(h));
                 ++seen[std::string(k)];
                 return true;
               }).ok());
  EXPECT_EQ(seen.size(), 800u);
  for (const auto& [k, n] : seen) EXPECT_EQ(n, 1) << k;
  int calls = 0;
  ASSERT_TRUE(b->Scan(0, ~0ull, [&](std::string_view, uint64_t, std::string_view) {
                 return ++calls < 3;
               }).ok());
  EXPECT_EQ(calls, 3);
}

TEST_F(FileEngineTest, BinaryKeysAndLargeValuesSurviveReopen) {
  std::string key("bin\0key\xff", 8);
  std::string big(8u << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + (i >> 12));
  {
    auto b = OpenOrDie({{"segment_bytes", "1048576"}});
    ASSERT_TRUE(b);
    ASSERT_TRUE(b->Put(key, TestHash(key), big).ok());
    ASSERT_TRUE(b->Put("small", 1, "").ok());
  }
  auto b = OpenOrDie({{"segment_bytes", "1048576"}});
  ASSERT_TRUE(b);
  ExpectValue(*b, key, big);
  ExpectValue(*b, "small", "");
}

TEST_F(FileEngineTest, ConcurrentWritersWithGroupCommitAllSurvive) {
  constexpr int kThreads = 4, kPerThread = 150;
  {
    auto b = OpenOrDie({{"sync", "always"}, {"segment_bytes", "8192"}});
    ASSERT_TRUE(b);
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          std::string k = "t" + std::to_string(t) + "-" + std::to_string(i);
          if (!b->Put(k, TestHash(k), Value(k, i)).ok()) ++failures;
          if (!b->Get(k).ok()) ++failures;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
  }
  auto b = OpenOrDie();
  ASSERT_TRUE(b);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      std::string k = "t" + std::to_string(t) + "-" + std::to_string(i);
      ExpectValue(*b, k, Value(k, i));
    }
  }
}

// The value cache answers reads of recent keys from memory: after the
// segments left the page cache a read on the loop still answers, without
// WouldBlock, and the engine's statistics count the hits.
TEST_F(FileEngineTest, CachedValuesAreReadWithoutTheDisk) {
  auto b = OpenOrDie({{"sync", "interval"}});
  ASSERT_TRUE(b);
  const std::string value = Value("hot", 1, 8192);
  ASSERT_TRUE(b->Put("hot", TestHash("hot"), value).ok());
  ASSERT_TRUE(b->Sync().ok());
  ASSERT_NO_FATAL_FAILURE(DropSegmentsFromPageCache());
  {
    NoWaitScope on_loop;
    auto got = b->Get("hot");
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, value);
  }
  auto stats = b->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_NE(stats->find("\"hits\":1,"), std::string::npos) << *stats;
}

// The cache never serves a value the log no longer holds: overwrites,
// removes, re-puts, compaction moving records, and a cache too small for
// everything (evictions) all read back what a cache-less reopen reads.
TEST_F(FileEngineTest, TheCacheAlwaysAgreesWithTheLog) {
  std::map<std::string, std::string> want;
  auto expect_want = [&](Backend& b) {
    for (int i = 0; i < 60; ++i) {
      std::string k = "k" + std::to_string(i);
      if (want.count(k)) {
        ExpectValue(b, k, want[k]);
      } else {
        ExpectAbsent(b, k);
      }
    }
  };
  {
    auto b = OpenOrDie({{"sync", "never"}, {"segment_bytes", "4096"}, {"cache_bytes", "8192"}});
    ASSERT_TRUE(b);
    for (int round = 0; round < 6; ++round) {
      for (int i = 0; i < 60; ++i) {
        std::string k = "k" + std::to_string(i);
        if ((i + round) % 5 == 0) {
          Status s = b->Remove(k);
          EXPECT_TRUE(s.ok() || s.IsNotFound()) << s.ToString();
          want.erase(k);
        } else {
          std::string v = Value(k, round, 40 + (i * 13) % 200);
          ASSERT_TRUE(b->Put(k, TestHash(k), v).ok());
          want[k] = v;
        }
        if (i % 3 == 0) (void)b->Get("k" + std::to_string((i * 7) % 60));  // fills
      }
    }
    // Compaction moves live records (a value in the cache stays right).
    ASSERT_TRUE(WaitFor([&] { return StatField(*b, "compactions") > 0; })) << b->Stats().value();
    expect_want(*b);
  }
  auto b = OpenOrDie({{"cache_bytes", "0"}});
  ASSERT_TRUE(b);
  expect_want(*b);
}

// Readers filling the cache while writers overwrite the same keys: once all
// stop, every key reads (from the cache) what the log holds.
TEST_F(FileEngineTest, ReadersFillingTheCacheNeverLeaveAStaleValue) {
  constexpr int kKeys = 20, kWrites = 400;
  std::map<std::string, std::string> cached;
  {
    auto b = OpenOrDie({{"sync", "never"}});
    ASSERT_TRUE(b);
    std::atomic<bool> done{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kWrites; ++i) {
          std::string k = "c" + std::to_string((i * 7 + t) % kKeys);
          ASSERT_TRUE(b->Put(k, TestHash(k), Value(k, i * 2 + t)).ok());
        }
      });
    }
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        int i = t;
        while (!done.load()) (void)b->Get("c" + std::to_string(i++ % kKeys));
      });
    }
    threads[0].join();
    threads[1].join();
    done = true;
    threads[2].join();
    threads[3].join();
    for (int i = 0; i < kKeys; ++i) {
      std::string k = "c" + std::to_string(i);
      auto got = b->Get(k);
      ASSERT_TRUE(got.ok()) << k;
      cached[k] = *got;
    }
  }
  auto b = OpenOrDie({{"cache_bytes", "0"}});
  ASSERT_TRUE(b);
  for (const auto& [k, v] : cached) ExpectValue(*b, k, v);
}

TEST_F(FileEngineTest, CacheBytesMustBeACount) {
  for (const char* bad : {"-1", "x", "", "1099511627777"}) {
    auto b = TryOpen({{"cache_bytes", bad}});
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_NE(b.status().message().find("cache_bytes"), std::string::npos) << b.status().ToString();
  }
}

}  // namespace
}  // namespace dynamo
