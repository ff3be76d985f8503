// Tests of dynamo_durable, the log library under the file engine and the
// hint store: log files, framing, the buffered reader, the three tail rules
// of replay, numbered segments and the folder lock. Real files in a
// temporary folder, real fdatasync.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "dynamo/durable/file.h"
#include "dynamo/durable/record_log.h"
#include "dynamo/durable/segments.h"

namespace dynamo::durable {
namespace {

namespace fs = std::filesystem;

class DurableLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "durable_log_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/log";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A file of the framed bodies, in order; returns each record's offset.
  std::vector<uint64_t> WriteLog(const std::vector<std::string>& bodies) {
    std::string bytes;
    std::vector<uint64_t> offsets;
    for (const auto& b : bodies) {
      offsets.push_back(bytes.size());
      CrcLengthFraming::Append(b, &bytes);
    }
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;
    return offsets;
  }
  std::shared_ptr<LogFile> OpenLog() {
    std::shared_ptr<LogFile> f;
    Status s = LogFile::Open(path_, LogFile::Mode::kOpenExisting, &f);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return f;
  }
  void Poke(uint64_t offset, char c) {
    std::fstream f(path_, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(&c, 1);
    ASSERT_TRUE(f.good());
  }
  // Replays the whole file; the bodies seen go to *bodies.
  Status ReplayAll(TailRule rule, std::vector<std::string>* bodies, ReplayResult* result) {
    auto f = OpenLog();
    uint64_t size = 0;
    EXPECT_TRUE(f->Size(&size).ok());
    return Replay(
        f, size, framing_, rule,
        [&](const Record& r) {
          bodies->emplace_back(r.raw.substr(CrcLengthFraming::kPrefix));
          return Status::OK();
        },
        result);
  }

  const CrcLengthFraming framing_{1, 1u << 24};
  std::string dir_, path_;
};

TEST_F(DurableLogTest, WritesAndReadsBackAcrossIovecs) {
  std::shared_ptr<LogFile> f;
  ASSERT_TRUE(LogFile::Open(path_, LogFile::Mode::kCreateNew, &f).ok());
  std::string a = "hello ", b(100000, 'x'), c = " end";
  struct iovec iov[3] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
  ASSERT_TRUE(f->WriteAt(0, iov, 3).ok());
  ASSERT_TRUE(f->Sync().ok());
  uint64_t size = 0;
  ASSERT_TRUE(f->Size(&size).ok());
  EXPECT_EQ(size, a.size() + b.size() + c.size());
  std::string back(size, '\0');
  ASSERT_TRUE(f->ReadAt(0, back.size(), back.data()).ok());
  EXPECT_EQ(back, a + b + c);
  // Reading past the end is Corruption, naming the file.
  Status s = f->ReadAt(size - 2, 4, back.data());
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(path_), std::string::npos);
  // kCreateNew refuses an existing file; kOpenExisting a missing one.
  std::shared_ptr<LogFile> g;
  EXPECT_EQ(LogFile::Open(path_, LogFile::Mode::kCreateNew, &g).code(), Status::Code::kIOError);
  EXPECT_EQ(LogFile::Open(dir_ + "/none", LogFile::Mode::kOpenExisting, &g).code(),
            Status::Code::kIOError);
  ASSERT_TRUE(f->Truncate(3).ok());
  ASSERT_TRUE(f->Size(&size).ok());
  EXPECT_EQ(size, 3u);
}

TEST_F(DurableLogTest, ReaderReturnsEveryRecordAcrossItsBufferChunks) {
  // Records larger than the reader's 1 MiB chunk and many small ones.
  std::vector<std::string> bodies;
  for (int i = 0; i < 300; ++i) bodies.push_back("small-" + std::to_string(i));
  bodies.push_back(std::string(3u << 20, 'L'));
  for (int i = 0; i < 300; ++i)
    bodies.push_back(std::string(5000, static_cast<char>('a' + i % 26)));
  auto offsets = WriteLog(bodies);
  auto f = OpenLog();
  uint64_t size = 0;
  ASSERT_TRUE(f->Size(&size).ok());
  LogReader reader(f, size, framing_);
  Record rec;
  std::string why;
  for (size_t i = 0; i < bodies.size(); ++i) {
    ASSERT_EQ(reader.Next(&rec, &why), LogReader::Outcome::kRecord) << i << " " << why;
    EXPECT_EQ(rec.offset, offsets[i]);
    ASSERT_EQ(rec.raw.substr(CrcLengthFraming::kPrefix), bodies[i]) << i;
  }
  EXPECT_EQ(reader.Next(&rec, &why), LogReader::Outcome::kEnd);
}

TEST_F(DurableLogTest, EveryRuleReplaysAWholeLog) {
  WriteLog({"one", "two", "three"});
  for (TailRule rule : {TailRule::kNone, TailRule::kTornOnly, TailRule::kPointInTime}) {
    std::vector<std::string> seen;
    ReplayResult r;
    ASSERT_TRUE(ReplayAll(rule, &seen, &r).ok());
    EXPECT_EQ(seen, (std::vector<std::string>{"one", "two", "three"}));
    EXPECT_EQ(r.dropped, 0u);
    EXPECT_EQ(r.end, fs::file_size(path_));
  }
}

TEST_F(DurableLogTest, ATornTailIsCutByBothTailRulesAndRefusedByNone) {
  for (TailRule rule : {TailRule::kNone, TailRule::kTornOnly, TailRule::kPointInTime}) {
    auto offsets = WriteLog({"one", "two", std::string(50, 'z')});
    fs::resize_file(path_, offsets[2] + 20);  // the last append cut short
    std::vector<std::string> seen;
    ReplayResult r;
    Status s = ReplayAll(rule, &seen, &r);
    if (rule == TailRule::kNone) {
      EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
      EXPECT_NE(s.message().find("offset " + std::to_string(offsets[2])), std::string::npos);
      EXPECT_EQ(fs::file_size(path_), offsets[2] + 20);  // untouched
      continue;
    }
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(seen, (std::vector<std::string>{"one", "two"}));
    EXPECT_EQ(r.end, offsets[2]);
    EXPECT_EQ(r.dropped, 20u);
    EXPECT_FALSE(r.why.empty());
    EXPECT_EQ(fs::file_size(path_), offsets[2]);  // the file is cut
  }
}

TEST_F(DurableLogTest, DamageBeforeAnIntactRecordIsCorruptionOnlyForTornOnly) {
  for (TailRule rule : {TailRule::kTornOnly, TailRule::kPointInTime}) {
    auto offsets = WriteLog({"one", "two-two", "three"});
    const uint64_t size = fs::file_size(path_);
    Poke(offsets[1] + CrcLengthFraming::kPrefix + 2, '#');  // inside two's body
    std::vector<std::string> seen;
    ReplayResult r;
    Status s = ReplayAll(rule, &seen, &r);
    if (rule == TailRule::kTornOnly) {
      EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
      EXPECT_NE(s.message().find(path_), std::string::npos);
      EXPECT_NE(s.message().find("offset " + std::to_string(offsets[1])), std::string::npos);
      EXPECT_EQ(fs::file_size(path_), size);  // nothing cut
    } else {
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(seen, std::vector<std::string>{"one"});  // the state up to the first damage
      EXPECT_EQ(fs::file_size(path_), offsets[1]);
    }
  }
}

TEST_F(DurableLogTest, ALengthBeyondItsBoundsIsABadRecord) {
  auto offsets = WriteLog({"one", "two"});
  Poke(offsets[1] + 7, '\x7f');  // length's top byte: far beyond max_body
  std::vector<std::string> seen;
  ReplayResult r;
  ASSERT_TRUE(ReplayAll(TailRule::kTornOnly, &seen, &r).ok());
  EXPECT_EQ(seen, std::vector<std::string>{"one"});
  EXPECT_NE(r.why.find("length"), std::string::npos) << r.why;
}

TEST_F(DurableLogTest, TheCallbacksErrorStopsTheReplay) {
  WriteLog({"one", "two", "three"});
  auto f = OpenLog();
  uint64_t size = 0;
  ASSERT_TRUE(f->Size(&size).ok());
  int calls = 0;
  ReplayResult r;
  Status s = Replay(
      f, size, framing_, TailRule::kPointInTime,
      [&](const Record&) { return ++calls == 2 ? Status::Corruption("no thanks") : Status::OK(); },
      &r);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_EQ(s.message(), "no thanks");
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(fs::file_size(path_), size);
}

TEST_F(DurableLogTest, AFramingWithABodyStartRejectsOtherBodies) {
  const CrcLengthFraming strict(1, 100, 0x94);
  std::string good, bad;
  CrcLengthFraming::Append("\x94rest", &good);
  CrcLengthFraming::Append("xrest", &bad);
  uint64_t size = 0;
  std::string why;
  ASSERT_TRUE(strict.Measure(good.data(), &size, &why)) << why;
  EXPECT_EQ(size, good.size());
  EXPECT_TRUE(strict.Verify(good, &why)) << why;
  EXPECT_FALSE(strict.Measure(bad.data(), &size, &why));
  good[good.size() - 1] ^= 1;
  EXPECT_FALSE(strict.Verify(good, &why));
  EXPECT_EQ(why, "checksum mismatch");
}

TEST_F(DurableLogTest, SegmentsAreNumberedListedInOrderCreatedOnceAndUnlinked) {
  SegmentDir segs(dir_);
  EXPECT_EQ(SegmentDir::FileName(42), "0000000042.log");
  uint64_t seq = 0;
  EXPECT_TRUE(SegmentDir::ParseFileName("0000000042.log", &seq));
  EXPECT_EQ(seq, 42u);
  for (const char* name : {"42.log", "000000004x.log", "0000000042.lo", "0000000042.log.tmp"}) {
    EXPECT_FALSE(SegmentDir::ParseFileName(name, &seq)) << name;
  }
  std::shared_ptr<LogFile> f;
  for (uint64_t s : {3u, 1u, 12u}) ASSERT_TRUE(segs.Create(s, &f).ok());
  std::ofstream(dir_ + "/LOCK") << "";
  std::ofstream(dir_ + "/notes.txt") << "x";
  std::vector<uint64_t> seqs;
  ASSERT_TRUE(segs.List(&seqs).ok());
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 3, 12}));
  EXPECT_EQ(segs.Create(3, &f).code(), Status::Code::kIOError);  // never overwritten
  ASSERT_TRUE(segs.Unlink(3).ok());
  ASSERT_TRUE(segs.Sync().ok());
  ASSERT_TRUE(segs.List(&seqs).ok());
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 12}));
  EXPECT_EQ(segs.Open(3, &f).code(), Status::Code::kIOError);
}

TEST_F(DurableLogTest, TheFolderLockIsExclusiveUntilReleased) {
  DirLock first, second;
  ASSERT_TRUE(DirLock::Acquire(dir_, "test store", &first).ok());
  Status s = DirLock::Acquire(dir_, "test store", &second);
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_NE(s.message().find("test store"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(dir_), std::string::npos) << s.message();
  first.Release();
  EXPECT_TRUE(DirLock::Acquire(dir_, "test store", &second).ok());
}

TEST_F(DurableLogTest, CreateDirsMakesEveryLevelAndRefusesAFile) {
  const std::string deep = dir_ + "/a/b/c";
  ASSERT_TRUE(CreateDirs(deep).ok());
  EXPECT_TRUE(fs::is_directory(deep));
  EXPECT_TRUE(CreateDirs(deep).ok());  // again: fine
  std::ofstream(dir_ + "/file") << "x";
  EXPECT_FALSE(CreateDirs(dir_ + "/file").ok());
  EXPECT_EQ(CreateDirs("").code(), Status::Code::kInvalidArgument);
}

TEST_F(DurableLogTest, AFileWrittenAtomicallyReplacesTheOldOneWithItsMode) {
  const std::string path = dir_ + "/record";
  ASSERT_TRUE(WriteFileAtomically(path, "first").ok());
  // A private file: 0600 from its creation, even over a temporary file a
  // crash left readable by others.
  std::ofstream(path + ".tmp") << "left by a crash";
  fs::permissions(path + ".tmp", fs::perms::all);
  ASSERT_TRUE(WriteFileAtomically(path, "second", 0600).ok());
  EXPECT_EQ(fs::status(path).permissions(), fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  std::ifstream in(path);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, "second");
}

}  // namespace
}  // namespace dynamo::durable
