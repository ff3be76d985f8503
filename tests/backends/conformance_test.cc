// The backend conformance suite: every case runs against every storage
// engine, through the host's Backend wrapper (after riak_kv's
// backend standard_test). An engine is one EngineCase; appending one to
// Engines() is all a new engine needs (e.g. "mysql", when a test server is
// given by DYNAMO_TEST_MYSQL_SOCKET).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dynamo/backend.h"
#include "dynamo/no_wait.h"

namespace dynamo {
namespace {

// One engine configuration under test.
struct EngineCase {
  std::string label;   // test-name suffix: letters, digits and '_' only
  std::string plugin;  // plugin name in DYNAMO_TEST_PLUGIN_DIR, and the engine's name()
  // Options that open a fresh instance keeping its data in `dir` (empty, private).
  std::function<BackendOptions(const std::string& dir)> options;
  bool durable;  // data survives close and open on the same folder
  // Why the engine cannot be tested here (empty when it can); the cases then
  // fail, never skip.
  std::function<std::string()> unavailable = nullptr;
};

// gtest prints parameters in test listings and failures; the label says it all.
void PrintTo(const EngineCase& c, std::ostream* os) { *os << c.label; }

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// The mysql cases need a server: tests/mariadb/mariadb.sh start prints (and
// test.sh exports) the DYNAMO_TEST_MYSQL_* variables.
std::string MysqlUnavailable() {
  std::vector<std::string> missing;
  if (Env("DYNAMO_TEST_MYSQL_SOCKET").empty() &&
      (Env("DYNAMO_TEST_MYSQL_HOST").empty() || Env("DYNAMO_TEST_MYSQL_PORT").empty())) {
    missing.push_back("DYNAMO_TEST_MYSQL_SOCKET (or DYNAMO_TEST_MYSQL_HOST and _PORT)");
  }
  if (Env("DYNAMO_TEST_MYSQL_USER").empty()) missing.push_back("DYNAMO_TEST_MYSQL_USER");
  if (Env("DYNAMO_TEST_MYSQL_DATABASE").empty()) missing.push_back("DYNAMO_TEST_MYSQL_DATABASE");
  if (missing.empty()) return std::string();
  std::string why = "the mysql engine needs a test server, but";
  for (size_t i = 0; i < missing.size(); ++i) why += (i == 0 ? " " : ", ") + missing[i];
  return why +
         " is not set: run `bash tests/mariadb/mariadb.sh start DIR` and "
         "`eval \"$(bash tests/mariadb/mariadb.sh env DIR)\"` (test.sh does it)";
}

// One table per test: its name is kept in the test's folder, so a reopen
// within the test sees the same table while tests (and earlier runs, whose
// folders had the same name) never share one.
std::string MysqlTable(const std::string& dir) {
  const std::filesystem::path marker = std::filesystem::path(dir) / "mysql-table";
  {
    std::ifstream in(marker);
    std::string name;
    if (in >> name && !name.empty()) return name;
  }
  std::string base;
  for (char c : std::filesystem::path(dir).filename().string()) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    base += ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ? c : '_';
  }
  const uint64_t nonce =
      static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) ^
      (static_cast<uint64_t>(::getpid()) << 40);
  char suffix[24];
  std::snprintf(suffix, sizeof suffix, "_%016llx", static_cast<unsigned long long>(nonce));
  std::string name = "t_" + base.substr(0, 64 - 2 - 17) + suffix;
  std::ofstream(marker) << name << '\n';
  return name;
}

BackendOptions MysqlOptions(const std::string& dir) {
  BackendOptions o = {{"data_dir", dir},
                      {"user", Env("DYNAMO_TEST_MYSQL_USER")},
                      {"password", Env("DYNAMO_TEST_MYSQL_PASSWORD")},
                      {"database", Env("DYNAMO_TEST_MYSQL_DATABASE")},
                      {"table", MysqlTable(dir)}};
  if (!Env("DYNAMO_TEST_MYSQL_SOCKET").empty()) {
    o.emplace_back("socket", Env("DYNAMO_TEST_MYSQL_SOCKET"));
  } else {
    o.emplace_back("host", Env("DYNAMO_TEST_MYSQL_HOST"));
    o.emplace_back("port", Env("DYNAMO_TEST_MYSQL_PORT"));
  }
  return o;
}

std::vector<EngineCase> Engines() {
  std::vector<EngineCase> engines = {
      {"memory", "memory",
       [](const std::string& dir) -> BackendOptions {
         return {{"data_dir", dir}};
       },
       false},
      {"file_path_sync_always", "file",
       [](const std::string& dir) -> BackendOptions {
         return {{"path", dir}, {"sync", "always"}};
       },
       true},
      {"file_data_dir", "file",
       [](const std::string& dir) -> BackendOptions {
         return {{"data_dir", dir}};
       },
       true},
      {"mysql", "mysql", &MysqlOptions, true, &MysqlUnavailable},
  };
  return engines;
}

// A stand-in for the host's key hash (any 64-bit function does for an engine).
uint64_t TestHash(std::string_view key) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a, then a splitmix64 finish
  for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ULL;
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

// Reads the number after "keys": (or another field) in a stats object; -1
// when absent.
int64_t StatsKeys(const std::string& json, const std::string& field = "keys") {
  size_t at = json.find("\"" + field + "\"");
  if (at == std::string::npos) return -1;
  at = json.find(':', at);
  if (at == std::string::npos) return -1;
  ++at;
  while (at < json.size() && json[at] == ' ') ++at;
  size_t end = at;
  while (end < json.size() && json[end] >= '0' && json[end] <= '9') ++end;
  if (end == at) return -1;
  return std::stoll(json.substr(at, end - at));
}

class BackendConformanceTest : public ::testing::TestWithParam<EngineCase> {
 protected:
  void SetUp() override {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "dynamo-conformance-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << "mkdtemp " << tmpl;
    dir_ = tmpl;
    if (GetParam().unavailable) {
      const std::string why = GetParam().unavailable();
      ASSERT_TRUE(why.empty()) << why;
    }
    auto plugin = BackendPlugin::Load(GetParam().plugin, DYNAMO_TEST_PLUGIN_DIR);
    ASSERT_TRUE(plugin.ok()) << plugin.status().ToString();
    plugin_ = plugin.value();
    ASSERT_EQ(plugin_->name(), GetParam().plugin);
    Open();
  }

  void TearDown() override {
    be_.reset();
    plugin_.reset();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  void Open() {
    auto be = Backend::Open(plugin_, GetParam().options(dir_));
    ASSERT_TRUE(be.ok()) << be.status().ToString();
    be_ = std::move(be.value());
  }

  // Closes the engine (which flushes it) and opens it again on the same folder.
  void Reopen() {
    be_.reset();
    Open();
  }

  Status Put(std::string_view key, std::string_view value) {
    return be_->Put(key, TestHash(key), value);
  }

  // Every (key -> (hash, value)) that a scan of [lo, hi] reports; a key seen
  // twice is a failure.
  std::map<std::string, std::pair<uint64_t, std::string>> ScanAll(uint64_t lo, uint64_t hi) {
    std::map<std::string, std::pair<uint64_t, std::string>> seen;
    Status s = be_->Scan(lo, hi, [&](std::string_view k, uint64_t h, std::string_view v) {
      bool fresh = seen.emplace(std::string(k), std::make_pair(h, std::string(v))).second;
      EXPECT_TRUE(fresh) << "scan reported key '" << k << "' twice";
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return seen;
  }

  void ExpectValue(std::string_view key, std::string_view want) {
    auto got = be_->Get(key);
    ASSERT_TRUE(got.ok()) << "key of " << key.size() << " bytes: " << got.status().ToString();
    EXPECT_EQ(got.value().size(), want.size());
    EXPECT_TRUE(got.value() == want) << "value differs for a key of " << key.size() << " bytes";
  }

  void ExpectNotFound(std::string_view key) {
    auto got = be_->Get(key);
    EXPECT_TRUE(got.status().IsNotFound()) << got.status().ToString();
  }

  std::string dir_;
  std::shared_ptr<BackendPlugin> plugin_;
  std::unique_ptr<Backend> be_;
};

TEST_P(BackendConformanceTest, CapabilitiesMatchTheCase) {
  EXPECT_EQ(be_->durable(), GetParam().durable);
}

// On the host's loop (a NoWaitScope) a read gives the value, NotFound, or,
// only for an engine whose single-key calls may run there, WouldBlock.
TEST_P(BackendConformanceTest, ReadsOnTheLoopAnswerOrSayTheyWouldBlock) {
  EXPECT_FALSE(be_->nonblocking() && be_->single_key_inline());
  ASSERT_TRUE(Put("apple", "red").ok());
  NoWaitScope on_loop;
  EXPECT_TRUE(be_->Get("absent").status().IsNotFound());
  auto r = be_->Get("apple");
  if (r.ok()) {
    EXPECT_EQ(*r, "red");
  } else {
    EXPECT_TRUE(r.status().IsWouldBlock()) << r.status().ToString();
    EXPECT_TRUE(be_->single_key_inline());
  }
}

TEST_P(BackendConformanceTest, PutThenGet) {
  ASSERT_TRUE(Put("apple", "red").ok());
  ASSERT_TRUE(Put("banana", "yellow").ok());
  ExpectValue("apple", "red");
  ExpectValue("banana", "yellow");
}

TEST_P(BackendConformanceTest, PutBatchStoresEveryPairAsPutWould) {
  // Natively (ABI 1.1 put_batch) or one put each: the same result.
  const std::string big = RandomBytes(1 << 20, 9);
  ASSERT_TRUE(Put("overwritten", "old").ok());
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"a", "1"},
      {"overwritten", "new"},
      {std::string("b\0in", 4), std::string("\0v", 2)},
      {"empty", ""},
      {"big", big}};
  std::vector<Backend::Item> items;
  for (const auto& [k, v] : pairs) items.push_back({k, TestHash(k), v});
  ASSERT_TRUE(be_->PutBatch(items).ok());
  for (const auto& [k, v] : pairs) ExpectValue(k, v);
  EXPECT_EQ(ScanAll(0, UINT64_MAX).size(), pairs.size());
  EXPECT_TRUE(be_->PutBatch({}).ok());
  if (GetParam().durable) {
    Reopen();
    for (const auto& [k, v] : pairs) ExpectValue(k, v);
  }
}

TEST_P(BackendConformanceTest, GetMissingIsNotFound) {
  ExpectNotFound("never-written");
  ASSERT_TRUE(Put("present", "x").ok());
  ExpectNotFound("never-written");
  ExpectNotFound("presen");  // a prefix of a stored key is a different key
}

TEST_P(BackendConformanceTest, PutOverwrites) {
  ASSERT_TRUE(Put("k", "first").ok());
  ASSERT_TRUE(Put("k", "second, longer than the first").ok());
  ExpectValue("k", "second, longer than the first");
  ASSERT_TRUE(Put("k", "3").ok());
  ExpectValue("k", "3");
  EXPECT_EQ(ScanAll(0, UINT64_MAX).size(), 1u);
}

TEST_P(BackendConformanceTest, RemoveThenGetIsNotFound) {
  ASSERT_TRUE(Put("k", "v").ok());
  ASSERT_TRUE(Put("other", "w").ok());
  Status s = be_->Remove("k");
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectNotFound("k");
  ExpectValue("other", "w");
  EXPECT_TRUE(be_->Remove("k").IsNotFound());
  // A removed key can be written again.
  ASSERT_TRUE(Put("k", "again").ok());
  ExpectValue("k", "again");
}

TEST_P(BackendConformanceTest, RemoveMissingIsNotFound) {
  Status s = be_->Remove("never-written");
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
}

TEST_P(BackendConformanceTest, EmptyValue) {
  ASSERT_TRUE(Put("empty", "").ok());
  auto got = be_->Get("empty");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got.value(), "");
  auto seen = ScanAll(0, UINT64_MAX);
  ASSERT_EQ(seen.count("empty"), 1u);
  EXPECT_EQ(seen["empty"].second, "");
}

TEST_P(BackendConformanceTest, BinaryKeysAndValues) {
  using namespace std::string_literals;
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"a\0b"s, "v\0one"s},      {"a\0c"s, "\0\0\0"s},
      {"a"s, "\xff\xfe\0\x01"s}, {"\0"s, "nul key"s},
      {"\xff\xff"s, "\xff"s},    {"\xff\0\xff"s, std::string(300, '\0') + "\xff"s},
  };
  for (const auto& [k, v] : pairs) ASSERT_TRUE(Put(k, v).ok());
  for (const auto& [k, v] : pairs) ExpectValue(k, v);
  ExpectNotFound("a\0"s);
  ExpectNotFound("\xff"s);
  auto seen = ScanAll(0, UINT64_MAX);
  ASSERT_EQ(seen.size(), pairs.size());
  for (const auto& [k, v] : pairs) {
    ASSERT_EQ(seen.count(k), 1u);
    EXPECT_EQ(seen[k].first, TestHash(k));
    EXPECT_TRUE(seen[k].second == v);
  }
}

TEST_P(BackendConformanceTest, KeysOf64KiB) {
  const std::string k1 = RandomBytes(64 * 1024, 1);
  std::string k2 = k1;
  k2.back() = static_cast<char>(k2.back() ^ 0x5a);  // differs in the last byte only
  ASSERT_TRUE(Put(k1, "one").ok());
  ASSERT_TRUE(Put(k2, "two").ok());
  ExpectValue(k1, "one");
  ExpectValue(k2, "two");
  ASSERT_TRUE(be_->Remove(k1).ok());
  ExpectNotFound(k1);
  ExpectValue(k2, "two");
}

TEST_P(BackendConformanceTest, ValuesOf1And4MiB) {
  const std::string one = RandomBytes(1 << 20, 2);
  const std::string four = RandomBytes(4 << 20, 3);
  ASSERT_TRUE(Put("one-mib", one).ok());
  ASSERT_TRUE(Put("four-mib", four).ok());
  ExpectValue("one-mib", one);
  ExpectValue("four-mib", four);
  auto seen = ScanAll(0, UINT64_MAX);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen["four-mib"].second == four);
}

TEST_P(BackendConformanceTest, ScanReturnsExactlyTheHashRange) {
  const uint64_t lo = 1000, hi = 2000;
  // (key, hash): the bounds, their neighbours, both ends of the space, and
  // two keys sharing one hash.
  const std::vector<std::pair<std::string, uint64_t>> keys = {
      {"zero", 0},         {"one", 1},           {"below-lo", lo - 1},
      {"at-lo", lo},       {"mid", 1500},        {"mid-twin", 1500},
      {"at-hi", hi},       {"above-hi", hi + 1}, {"max-1", UINT64_MAX - 1},
      {"max", UINT64_MAX},
  };
  for (const auto& [k, h] : keys) {
    ASSERT_TRUE(be_->Put(k, h, "value of " + k).ok());
  }
  auto range = ScanAll(lo, hi);
  std::set<std::string> got;
  for (const auto& [k, hv] : range) {
    got.insert(k);
    EXPECT_GE(hv.first, lo) << k;
    EXPECT_LE(hv.first, hi) << k;
    EXPECT_EQ(hv.second, "value of " + k);
  }
  EXPECT_EQ(got, (std::set<std::string>{"at-lo", "mid", "mid-twin", "at-hi"}));

  auto single = ScanAll(lo, lo);
  ASSERT_EQ(single.size(), 1u);
  EXPECT_EQ(single.begin()->first, "at-lo");
  EXPECT_EQ(single.begin()->second.first, lo);

  auto twins = ScanAll(1500, 1500);
  EXPECT_EQ(twins.size(), 2u);
  EXPECT_TRUE(ScanAll(lo + 1, lo + 1).empty());
  EXPECT_TRUE(ScanAll(2, lo - 2).empty());

  auto ends = ScanAll(UINT64_MAX, UINT64_MAX);
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends.begin()->first, "max");
  auto low_end = ScanAll(0, 0);
  ASSERT_EQ(low_end.size(), 1u);
  EXPECT_EQ(low_end.begin()->first, "zero");

  auto all = ScanAll(0, UINT64_MAX);
  ASSERT_EQ(all.size(), keys.size());
  for (const auto& [k, h] : keys) {
    ASSERT_EQ(all.count(k), 1u) << k;
    EXPECT_EQ(all[k].first, h) << k;
  }
}

TEST_P(BackendConformanceTest, ScanSeesCurrentValuesOnly) {
  ASSERT_TRUE(Put("a", "old").ok());
  ASSERT_TRUE(Put("a", "new").ok());
  ASSERT_TRUE(Put("b", "bee").ok());
  ASSERT_TRUE(Put("gone", "x").ok());
  ASSERT_TRUE(be_->Remove("gone").ok());
  auto all = ScanAll(0, UINT64_MAX);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all["a"].second, "new");
  EXPECT_EQ(all["b"].second, "bee");
  EXPECT_EQ(all["a"].first, TestHash("a"));
}

TEST_P(BackendConformanceTest, ScanStopsEarly) {
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(Put("key-" + std::to_string(i), "v").ok());
  int calls = 0;
  Status s = be_->Scan(0, UINT64_MAX, [&](std::string_view, uint64_t, std::string_view) {
    ++calls;
    return calls < 5;  // the fifth call asks to stop
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(calls, 5);
  // Stopping at once on the first key.
  calls = 0;
  s = be_->Scan(0, UINT64_MAX, [&](std::string_view, uint64_t, std::string_view) {
    ++calls;
    return false;
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(calls, 1);
}

TEST_P(BackendConformanceTest, ScanCallbackMayUseTheEngine) {
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(Put("key-" + std::to_string(i), "v").ok());
  int calls = 0;
  Status s = be_->Scan(0, UINT64_MAX, [&](std::string_view k, uint64_t, std::string_view) {
    ++calls;
    auto got = be_->Get(k);  // would deadlock an engine that holds its lock here
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return true;
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(calls, 50);
}

// A volatile engine starts empty on every open; it must not pretend otherwise.
TEST_P(BackendConformanceTest, ReopenOfVolatileEngineStartsEmpty) {
  if (GetParam().durable) {
    // Durable engines are held to the opposite by the next case.
    EXPECT_TRUE(be_->durable());
    return;
  }
  ASSERT_TRUE(Put("kept", "value").ok());
  Reopen();
  EXPECT_TRUE(be_->Get("kept").status().IsNotFound());
  EXPECT_TRUE(ScanAll(0, UINT64_MAX).empty());
}

TEST_P(BackendConformanceTest, ReopenKeepsDataOverwritesAndRemoves) {
  if (!GetParam().durable) {
    // Held to the opposite by ReopenOfVolatileEngineStartsEmpty.
    EXPECT_FALSE(be_->durable());
    return;
  }
  const std::string big = RandomBytes(1 << 20, 4);
  const std::string long_key = RandomBytes(64 * 1024, 5);
  ASSERT_TRUE(Put("kept", "value").ok());
  ASSERT_TRUE(Put("overwritten", "old").ok());
  ASSERT_TRUE(Put("overwritten", "new").ok());
  ASSERT_TRUE(Put("removed", "x").ok());
  ASSERT_TRUE(be_->Remove("removed").ok());
  ASSERT_TRUE(Put("removed-then-put", "1").ok());
  ASSERT_TRUE(be_->Remove("removed-then-put").ok());
  ASSERT_TRUE(Put("removed-then-put", "2").ok());
  ASSERT_TRUE(Put("empty", "").ok());
  ASSERT_TRUE(Put(std::string("bin\0\xff", 5), std::string("\0\xff\0", 3)).ok());
  ASSERT_TRUE(Put("big", big).ok());
  ASSERT_TRUE(Put(long_key, "long").ok());

  for (int round = 0; round < 2; ++round) {  // twice: reopening a reopened engine
    SCOPED_TRACE("reopen " + std::to_string(round + 1));
    Reopen();
    ExpectValue("kept", "value");
    ExpectValue("overwritten", "new");
    ExpectNotFound("removed");
    ExpectValue("removed-then-put", "2");
    ExpectValue("empty", "");
    ExpectValue(std::string("bin\0\xff", 5), std::string("\0\xff\0", 3));
    ExpectValue("big", big);
    ExpectValue(long_key, "long");
    auto all = ScanAll(0, UINT64_MAX);
    EXPECT_EQ(all.size(), 7u);
    EXPECT_EQ(all["kept"].first, TestHash("kept"));
    EXPECT_EQ(all[long_key].first, TestHash(long_key));
  }
  // Changes after a reopen are kept by the next one.
  ASSERT_TRUE(be_->Remove("kept").ok());
  ASSERT_TRUE(Put("overwritten", "newer").ok());
  Reopen();
  ExpectNotFound("kept");
  ExpectValue("overwritten", "newer");
}

TEST_P(BackendConformanceTest, ManyKeys) {
  constexpr int kKeys = 20000;
  auto key = [](int i) { return "many-" + std::to_string(i); };
  auto value = [](int i) { return "value-" + std::to_string(i * 7919); };
  for (int i = 0; i < kKeys; ++i) ASSERT_TRUE(Put(key(i), value(i)).ok()) << i;
  for (int i = 0; i < kKeys; i += 2) ASSERT_TRUE(be_->Remove(key(i)).ok()) << i;
  for (int i = 0; i < kKeys; ++i) {
    auto got = be_->Get(key(i));
    if (i % 2 == 0) {
      ASSERT_TRUE(got.status().IsNotFound()) << i << ": " << got.status().ToString();
    } else {
      ASSERT_TRUE(got.ok()) << i << ": " << got.status().ToString();
      ASSERT_EQ(got.value(), value(i));
    }
  }
  auto all = ScanAll(0, UINT64_MAX);
  EXPECT_EQ(all.size(), static_cast<size_t>(kKeys / 2));
  // Half of the hash space holds about half of the keys, and the two halves
  // add up exactly.
  size_t low = ScanAll(0, UINT64_MAX / 2).size();
  size_t high = ScanAll(UINT64_MAX / 2 + 1, UINT64_MAX).size();
  EXPECT_EQ(low + high, static_cast<size_t>(kKeys / 2));
  EXPECT_GT(low, kKeys / 2 / 4u);
  EXPECT_GT(high, kKeys / 2 / 4u);
  auto stats = be_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(StatsKeys(stats.value()), kKeys / 2) << stats.value();
}

TEST_P(BackendConformanceTest, ConcurrentAccess) {
  constexpr int kThreads = 8;
  constexpr int kOwnKeys = 300;
  constexpr int kSharedKeys = 16;
  std::mutex errors_mu;
  std::vector<std::string> errors;
  auto fail = [&](std::string what) {
    std::lock_guard<std::mutex> lock(errors_mu);
    if (errors.size() < 20) errors.push_back(std::move(what));
  };
  auto own_key = [](int t, int i) { return "t" + std::to_string(t) + "-k" + std::to_string(i); };
  auto shared_key = [](int j) { return "shared-" + std::to_string(j); };

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 gen(t);
      for (int i = 0; i < kOwnKeys; ++i) {
        const std::string k = own_key(t, i);
        if (!Put(k, "first").ok()) fail("put " + k);
        auto got = be_->Get(k);
        if (!got.ok() || got.value() != "first") fail("get after put " + k);
        // i % 3: 0 removed, 1 kept, 2 overwritten.
        if (i % 3 == 0 && !be_->Remove(k).ok()) fail("remove " + k);
        if (i % 3 == 2 && !Put(k, "second-" + k).ok()) fail("overwrite " + k);
        // Interleave work on keys every thread touches.
        const std::string s = shared_key(static_cast<int>(gen() % kSharedKeys));
        switch (gen() % 3) {
          case 0:
            if (!Put(s, s + "-by-" + std::to_string(t)).ok()) fail("put " + s);
            break;
          case 1: {
            auto v = be_->Get(s);
            if (v.ok() ? v.value().rfind(s + "-by-", 0) != 0 : !v.status().IsNotFound()) {
              fail("get " + s + ": " + (v.ok() ? v.value() : v.status().ToString()));
            }
            break;
          }
          default: {
            Status r = be_->Remove(s);
            if (!r.ok() && !r.IsNotFound()) fail("remove " + s + ": " + r.ToString());
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& e : errors) ADD_FAILURE() << e;
  ASSERT_TRUE(errors.empty());

  size_t live = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kOwnKeys; ++i) {
      const std::string k = own_key(t, i);
      auto got = be_->Get(k);
      if (i % 3 == 0) {
        ASSERT_TRUE(got.status().IsNotFound()) << k << ": " << got.status().ToString();
      } else {
        ASSERT_TRUE(got.ok()) << k << ": " << got.status().ToString();
        ASSERT_EQ(got.value(), i % 3 == 1 ? std::string("first") : "second-" + k);
        ++live;
      }
    }
  }
  for (int j = 0; j < kSharedKeys; ++j) {
    auto got = be_->Get(shared_key(j));
    if (got.ok()) {
      EXPECT_EQ(got.value().rfind(shared_key(j) + "-by-", 0), 0u) << got.value();
      ++live;
    } else {
      EXPECT_TRUE(got.status().IsNotFound()) << got.status().ToString();
    }
  }
  EXPECT_EQ(ScanAll(0, UINT64_MAX).size(), live);
}

TEST_P(BackendConformanceTest, SyncSucceeds) {
  Status s = be_->Sync();
  EXPECT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(Put("k", "v").ok());
  s = be_->Sync();
  EXPECT_TRUE(s.ok()) << s.ToString();
  ExpectValue("k", "v");
}

TEST_P(BackendConformanceTest, StatsIsAJsonObjectCountingKeys) {
  auto empty = be_->Stats();
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(StatsKeys(empty.value()), 0) << empty.value();
  ASSERT_TRUE(Put("a", "1").ok());
  ASSERT_TRUE(Put("b", "2").ok());
  ASSERT_TRUE(Put("c", "3").ok());
  ASSERT_TRUE(Put("c", "33").ok());
  ASSERT_TRUE(be_->Remove("a").ok());
  auto stats = be_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  const std::string& json = stats.value();
  ASSERT_FALSE(json.empty());
  EXPECT_EQ(json.front(), '{') << json;
  EXPECT_EQ(json.back(), '}') << json;
  EXPECT_NE(json.find("\"keys\""), std::string::npos) << json;
  EXPECT_EQ(StatsKeys(json), 2) << json;
  // The memory engine counts the bytes of keys and values it holds (kept as
  // they change, not summed per call): "b" "2" and "c" "33".
  if (GetParam().plugin == "memory") {
    EXPECT_EQ(StatsKeys(json, "bytes"), 5) << json;
  }
}

TEST_P(BackendConformanceTest, UnknownOptionIsRefused) {
  BackendOptions options = GetParam().options(dir_);
  options.emplace_back("no_such_option_xyz", "1");
  be_.reset();  // an engine may hold its folder exclusively
  auto be = Backend::Open(plugin_, options);
  ASSERT_FALSE(be.ok());
  EXPECT_TRUE(be.status().IsInvalidArgument()) << be.status().ToString();
  EXPECT_NE(be.status().message().find("no_such_option_xyz"), std::string::npos)
      << be.status().ToString();
}

INSTANTIATE_TEST_SUITE_P(Engines, BackendConformanceTest, ::testing::ValuesIn(Engines()),
                         [](const ::testing::TestParamInfo<EngineCase>& info) {
                           return info.param.label;
                         });

}  // namespace
}  // namespace dynamo
