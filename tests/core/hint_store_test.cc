#include "handoff/hint_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace dynamo {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxClock = 10;

// A set with one version of value, coordinated by node.
SiblingSet One(const std::string& node, const std::string& value) {
  SiblingSet s;
  s.Apply(CausalContext(), node, 1, value, false, kMaxClock);
  return s;
}

std::vector<std::string> Values(const SiblingSet& s) {
  auto live = s.LiveValues();
  std::vector<std::string> v(live.begin(), live.end());
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<std::string> Values(const std::string& encoded) {
  Result<SiblingSet> s = SiblingSet::Decode(encoded);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? Values(*s) : std::vector<std::string>{};
}

std::vector<std::string> Keys(const std::vector<HintStore::Hint>& hints) {
  std::vector<std::string> keys;
  for (const auto& h : hints) keys.push_back(h.key);
  return keys;
}

class HintStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "hint_store_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = (fs::path(root_) / "hints").string();          // Open creates it
    log_ = (fs::path(dir_) / "0000000001.log").string();  // the first segment
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::unique_ptr<HintStore> OpenStore(size_t max_keys = 100000, size_t max_bytes = 256u << 20) {
    HintStore::Options o;
    o.dir = dir_;
    o.max_keys = max_keys;
    o.max_bytes = max_bytes;
    auto r = HintStore::Open(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return nullptr;
    return std::move(r).value();
  }

  Status OpenStatus() {
    HintStore::Options o;
    o.dir = dir_;
    return HintStore::Open(o).status();
  }

  // Bytes of every segment.
  uint64_t LogSize() const {
    uint64_t n = 0;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().extension() == ".log") n += e.file_size();
    }
    return n;
  }
  std::vector<std::string> SegmentNames() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().extension() == ".log") names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  void AppendToLog(const std::string& bytes) {
    std::ofstream f(log_, std::ios::binary | std::ios::app);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(f.good());
  }

  // Everything a store shows, to compare two stores.
  static std::string Dump(const HintStore& s) {
    std::string out;
    for (const auto& [target, n] : s.PendingByTarget()) {
      out += target + ":" + std::to_string(n) + "{";
      for (const auto& h : s.Peek(target, 1u << 30, SIZE_MAX)) {
        out += h.key + "=" + std::to_string(h.encoded.size()) + ":";
        for (const auto& v : Values(h.encoded)) out += v + ",";
        out += ";";
      }
      out += "}";
    }
    out += " pending=" + std::to_string(s.pending()) + " bytes=" + std::to_string(s.bytes());
    return out;
  }

  std::string root_, dir_, log_;
};

TEST_F(HintStoreTest, AddPeekRemove) {
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Add("B", "k2", One("A", "v2")).ok());
  ASSERT_TRUE(s->Add("B", "k1", One("A", "v1")).ok());
  ASSERT_TRUE(s->Add("C", "k3", One("A", "v3")).ok());
  EXPECT_EQ(s->pending(), 3u);

  auto hints = s->Peek("B", 10, 1u << 20);
  ASSERT_EQ(Keys(hints), (std::vector<std::string>{"k1", "k2"}));
  EXPECT_EQ(Values(hints[0].encoded), std::vector<std::string>{"v1"});
  EXPECT_EQ(Values(hints[1].encoded), std::vector<std::string>{"v2"});
  EXPECT_EQ(hints[0].encoded, One("A", "v1").Encode());
  EXPECT_NE(hints[0].seq, hints[1].seq);
  EXPECT_TRUE(s->Peek("nobody", 10, 1u << 20).empty());

  // A wrong seq removes nothing; the right ones remove.
  auto none = s->Remove("B", {{"k1", hints[0].seq + 1000}});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);
  EXPECT_EQ(s->pending(), 3u);
  auto removed = s->Remove("B", {{"k1", hints[0].seq}, {"k2", hints[1].seq}, {"k1", hints[0].seq}});
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, 2u);
  EXPECT_EQ(s->pending(), 1u);
  EXPECT_TRUE(s->Peek("B", 10, 1u << 20).empty());
  EXPECT_EQ(s->bytes(), One("A", "v3").Encode().size());
}

TEST_F(HintStoreTest, HintMergedAgainAfterPeekIsNotRemoved) {
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Add("B", "k", One("A", "x")).ok());
  auto first = s->Peek("B", 10, 1u << 20);
  ASSERT_EQ(first.size(), 1u);
  // A concurrent write arrives while the first one is being delivered.
  ASSERT_TRUE(s->Add("B", "k", One("C", "y")).ok());
  auto r = s->Remove("B", {{"k", first[0].seq}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0u);
  auto second = s->Peek("B", 10, 1u << 20);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(second[0].seq, first[0].seq);
  EXPECT_EQ(Values(second[0].encoded), (std::vector<std::string>{"x", "y"}));
  r = s->Remove("B", {{"k", second[0].seq}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 1u);
  EXPECT_EQ(s->pending(), 0u);
  EXPECT_EQ(s->bytes(), 0u);
}

TEST_F(HintStoreTest, MergeKeepsConcurrentSiblingsAndDropsObsolete) {
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  SiblingSet a = One("A", "a");
  ASSERT_TRUE(s->Add("B", "k", a).ok());
  ASSERT_TRUE(s->Add("B", "k", One("C", "c")).ok());
  EXPECT_EQ(Values(s->ForKey("k")), (std::vector<std::string>{"a", "c"}));

  // The same versions again change nothing: no seq change, no log growth.
  const uint64_t seq = s->Peek("B", 1, 1u << 20)[0].seq;
  const uint64_t size = s->log_bytes();
  ASSERT_TRUE(s->Add("B", "k", a).ok());
  EXPECT_EQ(s->Peek("B", 1, 1u << 20)[0].seq, seq);
  EXPECT_EQ(s->log_bytes(), size);
  EXPECT_EQ(LogSize(), size);
  ASSERT_TRUE(s->Add("B", "k", SiblingSet()).ok());
  EXPECT_EQ(s->log_bytes(), size);

  // A version that had seen both replaces them.
  SiblingSet both = s->ForKey("k");
  SiblingSet newer = both;
  newer.Apply(both.Context(), "A", 5, "z", false, kMaxClock);
  ASSERT_TRUE(s->Add("B", "k", newer).ok());
  EXPECT_EQ(Values(s->ForKey("k")), std::vector<std::string>{"z"});
  EXPECT_GT(s->log_bytes(), size);
  EXPECT_EQ(s->pending(), 1u);
}

TEST_F(HintStoreTest, ReopenRestoresTheSameState) {
  std::string before;
  uint64_t bytes_before = 0;
  {
    auto s = OpenStore();
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->Add("B", "k1", One("A", "1")).ok());
    ASSERT_TRUE(s->Add("B", "k2", One("A", "2")).ok());
    ASSERT_TRUE(s->Add("B", "k1", One("C", "1c")).ok());
    ASSERT_TRUE(s->Add("C", "k1", One("E", "c1")).ok());
    ASSERT_TRUE(s->Add("C", "k3", One("A", "c3")).ok());
    ASSERT_TRUE(s->Add("D", "k4", One("A", "d4")).ok());
    auto peek = s->Peek("C", 10, 1u << 20);
    ASSERT_EQ(Keys(peek), (std::vector<std::string>{"k1", "k3"}));
    ASSERT_EQ(*s->Remove("C", {{"k3", peek[1].seq}}), 1u);
    ASSERT_EQ(*s->DropTarget("D"), 1u);
    before = Dump(*s);
    bytes_before = s->bytes();
  }
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(Dump(*s), before);
  EXPECT_EQ(s->PendingByTarget(), (std::map<std::string, size_t>{{"B", 2}, {"C", 1}}));
  EXPECT_EQ(s->pending(), 3u);
  EXPECT_EQ(s->bytes(), bytes_before);
  EXPECT_EQ(Values(s->ForKey("k1")), (std::vector<std::string>{"1", "1c", "c1"}));
  EXPECT_EQ(Values(s->ForKey("k2")), std::vector<std::string>{"2"});
  EXPECT_TRUE(s->ForKey("k3").empty());
  EXPECT_TRUE(s->ForKey("k4").empty());
  EXPECT_EQ(s->log_bytes(), LogSize());
  // Seqs still work after a reopen.
  auto peek = s->Peek("B", 10, 1u << 20);
  ASSERT_EQ(peek.size(), 2u);
  EXPECT_EQ(*s->Remove("B", {{peek[0].key, peek[0].seq}, {peek[1].key, peek[1].seq}}), 2u);
  EXPECT_EQ(s->PendingByTarget(), (std::map<std::string, size_t>{{"C", 1}}));
}

TEST_F(HintStoreTest, TornTailIsDroppedAndTruncated) {
  uint64_t after_k1 = 0, after_k2 = 0;
  {
    auto s = OpenStore();
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->Add("B", "k1", One("A", "one")).ok());
    after_k1 = s->log_bytes();
    ASSERT_TRUE(s->Add("B", "k2", One("A", std::string(100, 'x'))).ok());
    after_k2 = s->log_bytes();
  }
  ASSERT_EQ(LogSize(), after_k2);
  // A crash halfway through writing k2's record.
  fs::resize_file(log_, after_k1 + (after_k2 - after_k1) / 2);
  {
    auto s = OpenStore();
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->pending(), 1u);
    EXPECT_EQ(Values(s->ForKey("k1")), std::vector<std::string>{"one"});
    EXPECT_TRUE(s->ForKey("k2").empty());
    EXPECT_EQ(LogSize(), after_k1);
    // Appends after the cut are replayed.
    ASSERT_TRUE(s->Add("B", "k3", One("A", "three")).ok());
  }
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(Keys(s->Peek("B", 10, 1u << 20)), (std::vector<std::string>{"k1", "k3"}));
}

TEST_F(HintStoreTest, TornHeaderIsDropped) {
  uint64_t after_k1 = 0;
  {
    auto s = OpenStore();
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->Add("B", "k1", One("A", "one")).ok());
    after_k1 = s->log_bytes();
    ASSERT_TRUE(s->Add("B", "k2", One("A", "two")).ok());
  }
  fs::resize_file(log_, after_k1 + 5);  // part of the next header only
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(Keys(s->Peek("B", 10, 1u << 20)), std::vector<std::string>{"k1"});
  EXPECT_EQ(LogSize(), after_k1);
}

TEST_F(HintStoreTest, GarbageTailIsDropped) {
  uint64_t size = 0;
  {
    auto s = OpenStore();
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->Add("B", "k1", One("A", "one")).ok());
    ASSERT_TRUE(s->Add("C", "k2", One("A", "two")).ok());
    size = s->log_bytes();
  }
  AppendToLog("this is not a record at all, just some trailing garbage");
  {
    auto s = OpenStore();
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->PendingByTarget(), (std::map<std::string, size_t>{{"B", 1}, {"C", 1}}));
    EXPECT_EQ(LogSize(), size);
  }
  // A plausible header whose body reached the disk as zeros.
  std::string zeros(4 + 4 + 40, '\0');
  zeros[0] = '\x12';
  zeros[4] = static_cast<char>(40);
  AppendToLog(zeros);
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->pending(), 2u);
  EXPECT_EQ(Values(s->ForKey("k2")), std::vector<std::string>{"two"});
  EXPECT_EQ(LogSize(), size);
}

TEST_F(HintStoreTest, CorruptionBeforeTheEndFailsOpen) {
  uint64_t after_k1 = 0;
  {
    auto s = OpenStore();
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->Add("B", "k1", One("A", "one")).ok());
    after_k1 = s->log_bytes();
    ASSERT_TRUE(s->Add("B", "k2", One("A", "two-two-two")).ok());
    ASSERT_TRUE(s->Add("B", "k3", One("A", "three")).ok());
  }
  const uint64_t size = LogSize();
  {
    // Flip a byte inside k2's body.
    std::fstream f(log_, std::ios::binary | std::ios::in | std::ios::out);
    f.seekg(static_cast<std::streamoff>(after_k1 + 12));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(after_k1 + 12));
    c = static_cast<char>(c ^ 0x5a);
    f.write(&c, 1);
    ASSERT_TRUE(f.good());
  }
  Status st = OpenStatus();
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find(log_), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("offset " + std::to_string(after_k1)), std::string::npos)
      << st.message();
  EXPECT_EQ(LogSize(), size);  // nothing truncated
}

TEST_F(HintStoreTest, BadLengthBeforeTheEndFailsOpen) {
  uint64_t after_k1 = 0;
  {
    auto s = OpenStore();
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->Add("B", "k1", One("A", "one")).ok());
    after_k1 = s->log_bytes();
    ASSERT_TRUE(s->Add("B", "k2", One("A", "two")).ok());
    ASSERT_TRUE(s->Add("B", "k3", One("A", "three")).ok());
  }
  {
    // k2's length now claims more than the file holds.
    std::fstream f(log_, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(after_k1 + 6));
    f.write("\x7f", 1);
    ASSERT_TRUE(f.good());
  }
  Status st = OpenStatus();
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find(log_), std::string::npos) << st.message();
}

TEST_F(HintStoreTest, FullByKeysRefusesNewHintsButMergesHeldOnes) {
  auto s = OpenStore(/*max_keys=*/2);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Add("B", "k1", One("A", "1")).ok());
  ASSERT_TRUE(s->Add("C", "k2", One("A", "2")).ok());
  const uint64_t size = s->log_bytes();
  Status st = s->Add("B", "k3", One("A", "3"));
  EXPECT_EQ(st.code(), Status::Code::kUnavailable);
  EXPECT_EQ(st.message().rfind("hint store full: ", 0), 0u) << st.message();
  EXPECT_EQ(s->dropped(), 1u);
  EXPECT_EQ(s->Add("D", "k1", One("A", "1")).code(), Status::Code::kUnavailable);
  EXPECT_EQ(s->dropped(), 2u);
  EXPECT_EQ(s->pending(), 2u);
  EXPECT_TRUE(s->ForKey("k3").empty());
  EXPECT_EQ(s->log_bytes(), size);
  // Held hints still take new versions.
  ASSERT_TRUE(s->Add("B", "k1", One("C", "1c")).ok());
  EXPECT_EQ(Values(s->ForKey("k1")), (std::vector<std::string>{"1", "1c"}));
  EXPECT_EQ(s->dropped(), 2u);
  // Room again after a removal.
  auto p = s->Peek("C", 1, 1u << 20);
  ASSERT_EQ(*s->Remove("C", {{p[0].key, p[0].seq}}), 1u);
  EXPECT_TRUE(s->Add("B", "k3", One("A", "3")).ok());
  EXPECT_EQ(s->pending(), 2u);
}

TEST_F(HintStoreTest, FullByBytesRefusesNewHintsButMergesHeldOnes) {
  const size_t small = One("A", "small").Encode().size();
  auto s = OpenStore(100000, /*max_bytes=*/small + 50);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Add("B", "k1", One("A", "small")).ok());
  EXPECT_EQ(s->bytes(), small);
  Status st = s->Add("B", "k2", One("A", std::string(60, 'x')));
  EXPECT_EQ(st.code(), Status::Code::kUnavailable);
  EXPECT_EQ(st.message().rfind("hint store full: ", 0), 0u) << st.message();
  EXPECT_EQ(s->dropped(), 1u);
  EXPECT_EQ(s->pending(), 1u);
  // A small new one still fits.
  ASSERT_TRUE(s->Add("B", "k3", One("A", "s")).ok());
  EXPECT_EQ(s->pending(), 2u);
  // Merging into a held hint may pass max_bytes.
  ASSERT_TRUE(s->Add("B", "k1", One("C", std::string(200, 'y'))).ok());
  EXPECT_GT(s->bytes(), small + 50);
  EXPECT_EQ(s->ForKey("k1").versions().size(), 2u);
  EXPECT_EQ(s->dropped(), 1u);
}

TEST_F(HintStoreTest, PeekHonoursLimits) {
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  for (const char* k : {"d", "a", "c", "b"}) ASSERT_TRUE(s->Add("B", k, One("A", "value")).ok());
  const size_t each = One("A", "value").Encode().size();
  EXPECT_EQ(Keys(s->Peek("B", 2, 1u << 20)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Keys(s->Peek("B", 10, 3 * each)), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(Keys(s->Peek("B", 10, 3 * each - 1)), (std::vector<std::string>{"a", "b"}));
  // At least one, even when it alone is over max_bytes.
  EXPECT_EQ(Keys(s->Peek("B", 10, 1)), std::vector<std::string>{"a"});
  EXPECT_TRUE(s->Peek("B", 0, 1u << 20).empty());
}

TEST_F(HintStoreTest, PendingByTarget) {
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->PendingByTarget().empty());
  ASSERT_TRUE(s->Add("B", "k1", One("A", "1")).ok());
  ASSERT_TRUE(s->Add("B", "k2", One("A", "2")).ok());
  ASSERT_TRUE(s->Add("C", "k1", One("A", "1")).ok());
  ASSERT_TRUE(s->Add("B", "k1", One("C", "1")).ok());  // merge, not a new hint
  EXPECT_EQ(s->PendingByTarget(), (std::map<std::string, size_t>{{"B", 2}, {"C", 1}}));
  auto p = s->Peek("C", 10, 1u << 20);
  ASSERT_EQ(*s->Remove("C", {{p[0].key, p[0].seq}}), 1u);
  EXPECT_EQ(s->PendingByTarget(), (std::map<std::string, size_t>{{"B", 2}}));
  EXPECT_EQ(s->pending(), 2u);
}

TEST_F(HintStoreTest, DropTargetIsDurable) {
  {
    auto s = OpenStore();
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->Add("B", "k1", One("A", "1")).ok());
    ASSERT_TRUE(s->Add("B", "k2", One("A", "2")).ok());
    ASSERT_TRUE(s->Add("B", "k3", One("A", "3")).ok());
    ASSERT_TRUE(s->Add("C", "k1", One("A", "c")).ok());
    auto n = s->DropTarget("B");
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 3u);
    EXPECT_EQ(*s->DropTarget("B"), 0u);
    EXPECT_EQ(*s->DropTarget("nobody"), 0u);
    EXPECT_EQ(s->pending(), 1u);
    EXPECT_EQ(s->bytes(), One("A", "c").Encode().size());
  }
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->PendingByTarget(), (std::map<std::string, size_t>{{"C", 1}}));
  EXPECT_EQ(Values(s->ForKey("k1")), std::vector<std::string>{"c"});
  EXPECT_TRUE(s->ForKey("k2").empty());
}

TEST_F(HintStoreTest, CompactionShrinksTheLogAndKeepsTheState) {
  uint64_t largest = 0;
  std::string last_value;
  {
    auto s = OpenStore();
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->Add("C", "other", One("A", "keep me")).ok());
    SiblingSet cur;
    for (int i = 0; i < 100; ++i) {
      // Each write supersedes the previous one: one live version of 64 KiB.
      last_value = std::string(64 << 10, static_cast<char>('a' + i % 26)) + std::to_string(i);
      cur.Apply(cur.Context(), "A", static_cast<uint64_t>(i + 1), last_value, false, kMaxClock);
      ASSERT_TRUE(s->Add("B", "hot", cur).ok()) << i;
      largest = std::max(largest, s->log_bytes());
      EXPECT_EQ(s->log_bytes(), LogSize()) << i;
    }
    EXPECT_GE(s->compactions(), 1u);
    EXPECT_GT(largest, uint64_t{4} << 20);
    EXPECT_LT(s->log_bytes(), largest);
    EXPECT_LE(s->log_bytes(), 2 * s->bytes() + (uint64_t{4} << 20) + 4096);
    EXPECT_EQ(s->segments(), 1u);  // the rewritten one; the older ones are gone
    EXPECT_EQ(SegmentNames().size(), 1u);
    EXPECT_EQ(s->pending(), 2u);
  }
  const uint64_t size = LogSize();
  EXPECT_LT(size, largest);
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->PendingByTarget(), (std::map<std::string, size_t>{{"B", 1}, {"C", 1}}));
  EXPECT_EQ(Values(s->ForKey("hot")), std::vector<std::string>{last_value});
  EXPECT_EQ(Values(s->ForKey("other")), std::vector<std::string>{"keep me"});
  EXPECT_EQ(LogSize(), size);
}

TEST_F(HintStoreTest, ALogGrowsIntoSegmentsThatReplayInOrder) {
  std::string before;
  {
    HintStore::Options o;
    o.dir = dir_;
    o.segment_bytes = 4096;
    auto r = HintStore::Open(o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto& s = *r;
    for (int i = 0; i < 200; ++i) {
      const std::string key = "k" + std::to_string(i % 37);
      ASSERT_TRUE(
          s->Add(i % 2 ? "B" : "C", key, One("A", std::string(100, 'v') + std::to_string(i))).ok());
      if (i % 5 == 0) {
        auto peek = s->Peek("B", 1, 1u << 20);
        if (!peek.empty()) {
          ASSERT_TRUE(s->Remove("B", {{peek[0].key, peek[0].seq}}).ok());
        }
      }
    }
    EXPECT_GT(s->segments(), 3u);
    EXPECT_EQ(SegmentNames().size(), s->segments());
    EXPECT_EQ(s->log_bytes(), LogSize());
    before = Dump(*s);
  }
  // Later segments win: a replay in any other order would bring back removed
  // hints or older sets.
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(Dump(*s), before);
}

TEST_F(HintStoreTest, ABadRecordInASealedSegmentFailsOpen) {
  {
    HintStore::Options o;
    o.dir = dir_;
    o.segment_bytes = 1024;
    auto r = HintStore::Open(o);
    ASSERT_TRUE(r.ok());
    for (int i = 0; i < 40; ++i) {
      ASSERT_TRUE((*r)->Add("B", "k" + std::to_string(i), One("A", std::string(100, 'x'))).ok());
    }
    ASSERT_GT((*r)->segments(), 2u);
  }
  // The first segment's last byte: its end was synced before the next began,
  // so this is damage, not a torn append, even with nothing intact after it.
  const uint64_t size = fs::file_size(log_);
  {
    std::fstream f(log_, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(size - 1));
    f.write("\x01", 1);
    ASSERT_TRUE(f.good());
  }
  Status st = OpenStatus();
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find(log_), std::string::npos) << st.message();
  EXPECT_EQ(fs::file_size(log_), size);
}

TEST_F(HintStoreTest, AHintsLogOfAnOlderVersionBecomesTheFirstSegment) {
  std::string before;
  {
    auto s = OpenStore();
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->Add("B", "k1", One("A", "one")).ok());
    ASSERT_TRUE(s->Add("C", "k2", One("A", "two")).ok());
    ASSERT_TRUE(s->Add("C", "k3", One("A", "three")).ok());
    before = Dump(*s);
  }
  // The single file older versions kept, and a leftover of their rewrite.
  fs::rename(log_, fs::path(dir_) / "hints.log");
  std::ofstream(fs::path(dir_) / "hints.log.tmp") << "half a rewrite";
  {
    auto s = OpenStore();
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(Dump(*s), before);
    ASSERT_TRUE(s->Add("D", "k4", One("A", "four")).ok());
    before = Dump(*s);
  }
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "hints.log"));
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "hints.log.tmp"));
  EXPECT_EQ(SegmentNames(), std::vector<std::string>{"0000000001.log"});
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(Dump(*s), before);
  // Both at once is refused rather than guessed at.
  s.reset();
  std::ofstream(fs::path(dir_) / "hints.log") << "";
  Status st = OpenStatus();
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("hints.log"), std::string::npos) << st.message();
}

TEST_F(HintStoreTest, SegmentsARewriteFailedToRemoveAreHarmless) {
  // A crash after a rewrite synced its new segment but before the removal of
  // the older ones reached the disk: they come back, and replay first.
  std::string before;
  const fs::path saved = fs::path(root_) / "saved";
  {
    auto s = OpenStore();
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->Add("C", "gone", One("A", "delivered soon")).ok());
    SiblingSet cur;
    for (int i = 0; i < 100 && s->compactions() == 0; ++i) {
      if (i == 10) {
        auto peek = s->Peek("C", 1, 1u << 20);
        ASSERT_EQ(*s->Remove("C", {{peek[0].key, peek[0].seq}}), 1u);
      }
      if (i == 20) fs::copy(log_, saved);  // the first segment, before the rewrite
      cur.Apply(cur.Context(), "A", static_cast<uint64_t>(i + 1), std::string(64 << 10, 'h'), false,
                kMaxClock);
      ASSERT_TRUE(s->Add("B", "hot", cur).ok()) << i;
    }
    ASSERT_EQ(s->compactions(), 1u);
    before = Dump(*s);
  }
  ASSERT_EQ(SegmentNames().size(), 1u);
  fs::copy(saved, log_);
  ASSERT_EQ(SegmentNames().size(), 2u);
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(Dump(*s), before);
  EXPECT_TRUE(s->ForKey("gone").empty());
}

TEST_F(HintStoreTest, SecondOpenOfTheSameDirFails) {
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  Status st = OpenStatus();
  EXPECT_EQ(st.code(), Status::Code::kIOError) << st.ToString();
  EXPECT_NE(st.message().find(dir_), std::string::npos) << st.message();
  s.reset();
  EXPECT_TRUE(OpenStatus().ok());
}

TEST_F(HintStoreTest, ForKeyMergesAcrossTargets) {
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Add("B", "k", One("A", "from-a")).ok());
  ASSERT_TRUE(s->Add("C", "k", One("D", "from-d")).ok());
  ASSERT_TRUE(s->Add("C", "other", One("A", "x")).ok());
  SiblingSet merged = s->ForKey("k");
  EXPECT_EQ(Values(merged), (std::vector<std::string>{"from-a", "from-d"}));
  EXPECT_EQ(merged.versions().size(), 2u);
  EXPECT_TRUE(s->ForKey("missing").empty());
}

TEST_F(HintStoreTest, ConcurrentAdds) {
  auto s = OpenStore();
  ASSERT_NE(s, nullptr);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        EXPECT_TRUE(s->Add("T" + std::to_string(t % 2),
                           "k" + std::to_string(t) + "-" + std::to_string(i), One("A", "v"))
                        .ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(s->PendingByTarget(), (std::map<std::string, size_t>{{"T0", 40}, {"T1", 40}}));
  s.reset();
  s = OpenStore();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->pending(), 80u);
}

}  // namespace
}  // namespace dynamo
