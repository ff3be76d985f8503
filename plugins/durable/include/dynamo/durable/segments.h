// A folder of numbered log segments, "0000000042.log": the unit of rotation
// and compaction. A writer appends to the newest segment; when it is full
// the writer seals it (fdatasync) and creates the next; compaction copies
// what is still live out of old segments into the newest and then removes
// them. The invariants that make a crash at any point safe:
//   - a segment is synced whole before its successor exists, so only the
//     newest segment can end in a torn record (replay it with kTornOnly or
//     kPointInTime, the others with kNone);
//   - records are replayed oldest segment first, later records win;
//   - a segment is removed only after the copies of its live records are
//     synced, and the removal is made durable (fsync of the folder) before
//     anything that depends on it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dynamo/durable/file.h"

namespace dynamo::durable {

class SegmentDir {
 public:
  explicit SegmentDir(std::string dir) : dir_(std::move(dir)) {}

  const std::string& dir() const { return dir_; }
  // "0000000042.log" for 42.
  static std::string FileName(uint64_t seq);
  // The sequence number of a segment's file name; false for other names.
  static bool ParseFileName(std::string_view name, uint64_t* seq);
  std::string PathOf(uint64_t seq) const { return dir_ + "/" + FileName(seq); }

  // Sequence numbers of the segments in the folder, ascending.
  Status List(std::vector<uint64_t>* seqs) const;
  Status Open(uint64_t seq, std::shared_ptr<LogFile>* out) const;
  // Creates segment seq (which must not exist) durably: the folder is synced.
  Status Create(uint64_t seq, std::shared_ptr<LogFile>* out) const;
  // Unlinks segment seq without syncing the folder (see SyncDir).
  Status Unlink(uint64_t seq) const;
  Status Sync() const { return SyncDir(dir_); }

 private:
  std::string dir_;
};

}  // namespace dynamo::durable
