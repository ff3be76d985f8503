// Records in a log file: how they are framed, how a file of them is read
// back, and what recovery does with bytes that are not a whole record.
//
// A log is a plain concatenation of records. Each user of the library keeps
// its own on-disk framing (the file engine's 21-byte header, the hint
// store's [crc][length][body]); a Framing tells the reader where a record
// ends and whether its checksum holds, and the rest is shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "dynamo/durable/file.h"

namespace dynamo::durable {

// zlib's crc32 continued over [p, p+n); n == 0 leaves crc unchanged.
uint32_t Crc32(uint32_t crc, const char* p, size_t n);
// Little-endian fixed-width integers.
void PutU32(char* p, uint32_t v);
void PutU64(char* p, uint64_t v);
uint32_t GetU32(const char* p);
uint64_t GetU64(const char* p);

class Framing {
 public:
  virtual ~Framing() = default;
  // Bytes of a record's fixed-size header: enough to know its length.
  virtual size_t header_size() const = 0;
  // The whole record's size from its header; false (with *why) when the
  // header cannot start a record (bad kind, lengths out of bounds).
  virtual bool Measure(const char* header, uint64_t* size, std::string* why) const = 0;
  // True when a whole record (as measured) passes its checksum and any
  // other check the format makes; else false with *why.
  virtual bool Verify(std::string_view record, std::string* why) const = 0;
};

// [u32 crc32(body)][u32 body length][body], little-endian; the body length
// within [min_body, max_body]. When body_start >= 0, a body must begin with
// that byte (the header then counts it, so a scan for intact records past a
// bad one rejects most offsets before reading a body).
class CrcLengthFraming : public Framing {
 public:
  static constexpr size_t kPrefix = 8;
  CrcLengthFraming(uint32_t min_body, uint32_t max_body, int body_start = -1)
      : min_body_(min_body), max_body_(max_body), body_start_(body_start) {}
  size_t header_size() const override { return kPrefix + (body_start_ >= 0 ? 1 : 0); }
  bool Measure(const char* header, uint64_t* size, std::string* why) const override;
  bool Verify(std::string_view record, std::string* why) const override;
  // Appends the framed record of body to out.
  static void Append(std::string_view body, std::string* out);

 private:
  const uint32_t min_body_;
  const uint32_t max_body_;
  const int body_start_;
};

// One record found by LogReader. The view points into the reader's buffer
// and is valid until its next call.
struct Record {
  uint64_t offset = 0;   // of the record in its file
  std::string_view raw;  // the whole record, header included
};

// Reads a log file's records in order from offset 0 through a buffer, so
// replaying many small records costs few syscalls. Single-threaded.
class LogReader {
 public:
  LogReader(std::shared_ptr<LogFile> file, uint64_t file_size, const Framing& framing)
      : file_(std::move(file)), file_size_(file_size), framing_(framing) {}

  enum class Outcome {
    kRecord,  // *rec is the next record
    kEnd,     // clean end of the file
    kBad,     // the bytes at offset() are not a whole valid record (*why says how)
    kIOError  // reading failed (*why says how)
  };
  Outcome Next(Record* rec, std::string* why);
  // Offset of the next record to read; after kBad, of the bad one.
  uint64_t offset() const { return pos_; }

 private:
  // Makes [pos_, pos_ + n) present in buf_; false on a read error.
  bool Fill(uint64_t n, std::string* why);

  std::shared_ptr<LogFile> file_;
  const uint64_t file_size_;
  const Framing& framing_;
  uint64_t pos_ = 0;
  uint64_t buf_start_ = 0;  // file offset of buf_[0]
  std::string buf_;
};

// What replay does with the first bad record (one that is cut short or
// fails its checks).
enum class TailRule {
  // Corruption: the file was synced whole (a sealed segment), so a bad
  // record can only be damage.
  kNone,
  // The tail from the first bad record on is dropped (the file cut there)
  // when no intact record follows it: the end of an append a crash cut
  // short. A bad record with an intact one after it is Corruption.
  kTornOnly,
  // The tail from the first bad record on is always dropped: the state
  // replayed is the log up to its first damage (writes since the last
  // fdatasync may reach the disk in any order).
  kPointInTime,
};

struct ReplayResult {
  uint64_t end = 0;      // offset after the last good record: the file's size now
  uint64_t dropped = 0;  // bytes cut off the tail
  std::string why;       // what was wrong with the first dropped byte, if any
};

// Calls fn for each good record of file[0, size) in order; fn's error stops
// the replay and is returned. At the first bad record, applies `rule`
// (cutting the file with Truncate when the rule drops the tail). Errors name
// the file and the offset.
Status Replay(const std::shared_ptr<LogFile>& file, uint64_t size, const Framing& framing,
              TailRule rule, const std::function<Status(const Record&)>& fn, ReplayResult* result);

}  // namespace dynamo::durable
