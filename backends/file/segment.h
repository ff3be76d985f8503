// One log segment file ("NNNNNNNNNN.log") and a sequential reader of its
// records.
//
// A Segment owns its file descriptor. The engine hands out shared_ptrs to
// it, so a reader that found a record in a segment can still pread it after
// compaction has unlinked the file: the descriptor closes with the last
// owner. Segment methods are thread-safe (pread/pwrite/fdatasync on a fixed
// descriptor); deciding *where* to append is the engine's job.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "file_status.h"
#include "log_format.h"
#include "unique_fd.h"

namespace dynamo::file {

// "0000000042.log" for 42.
std::string SegmentFileName(uint64_t seq);
// The sequence number of a segment file name; false for any other name.
bool ParseSegmentFileName(std::string_view name, uint64_t* seq);
// Sequence numbers of the segments in dir, ascending.
Status ListSegments(const std::string& dir, std::vector<uint64_t>* seqs);
// fsync of the folder itself, so creations and unlinks in it are durable.
Status SyncDir(const std::string& dir);
// mkdir -p.
Status CreateDirs(const std::string& dir);

class Segment {
 public:
  // Opens (create: creates, failing if it exists) segment seq in dir.
  static Status Open(const std::string& dir, uint64_t seq, bool create,
                     std::shared_ptr<Segment>* out);

  uint64_t seq() const { return seq_; }
  const std::string& path() const { return path_; }

  // Reads exactly n bytes at offset; a short read is Corruption (the index
  // promised bytes the file does not have).
  Status ReadAt(uint64_t offset, size_t n, char* dst) const;
  // Writes all of iov at offset (pwritev, retried until complete).
  Status WriteAt(uint64_t offset, const struct iovec* iov, int iovcnt);
  Status Sync();                     // fdatasync
  Status Truncate(uint64_t size);    // ftruncate + fdatasync
  Status Size(uint64_t* size) const; // fstat

 private:
  Segment(UniqueFd fd, uint64_t seq, std::string path)
      : fd_(std::move(fd)), seq_(seq), path_(std::move(path)) {}
  UniqueFd fd_;
  const uint64_t seq_;
  const std::string path_;
};

// One record as found by SegmentReader; the views point into the reader's
// buffer and are valid until its next call.
struct RecordView {
  RecordHeader header;
  uint64_t offset = 0;     // of the record in its segment
  std::string_view raw;    // the whole record, header included
  std::string_view key;
  std::string_view value;  // empty for REMOVE
};

// Reads a segment's records in order from offset 0, through a buffer, so
// replaying a segment of small records costs few syscalls. Single-threaded.
class SegmentReader {
 public:
  SegmentReader(std::shared_ptr<Segment> segment, uint64_t file_size)
      : segment_(std::move(segment)), file_size_(file_size) {}

  enum class Outcome {
    kRecord,  // *rec is the next record
    kEnd,     // clean end of the segment
    kBad,     // the bytes at offset() are not a whole valid record (*why says how)
    kIOError  // reading failed (*why says how)
  };
  Outcome Next(RecordView* rec, std::string* why);
  // Offset of the next record to read; after kBad, of the bad one.
  uint64_t offset() const { return pos_; }

 private:
  // Makes [pos_, pos_ + n) present in buf_; false on a read error.
  bool Fill(uint64_t n, std::string* why);

  std::shared_ptr<Segment> segment_;
  const uint64_t file_size_;
  uint64_t pos_ = 0;        // file offset of the next record
  uint64_t buf_start_ = 0;  // file offset of buf_[0]
  std::string buf_;         // bytes [buf_start_, buf_start_ + buf_.size())
};

}  // namespace dynamo::file
