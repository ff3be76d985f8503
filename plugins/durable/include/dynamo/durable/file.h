// Files that must survive a crash: a descriptor owner, a log file with
// complete positional reads and writes, and the folder operations that make
// creations and removals durable (mkdir -p, fsync of a folder, a LOCK file).
//
// Part of dynamo_durable, the log library under the file engine and the
// hint store. Every error is a dynamo::Status naming the path; IOError for
// what the operating system refused (Status::FromErrno), Corruption for bytes that are not
// where a caller was promised they would be.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "dynamo/status.h"

namespace dynamo::durable {

// Sole owner of a file descriptor, closed when the owner dies. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// mkdir -p; InvalidArgument for an empty name, IOError when a part exists
// and is not a folder.
Status CreateDirs(const std::string& dir);
// fsync of the folder itself, so that creations, renames and unlinks in it
// are durable.
Status SyncDir(const std::string& dir);

// Replaces path with bytes atomically and durably: a temporary file beside
// it, fsync, rename, fsync of the folder. A crash leaves the old or the new
// contents, never a mix. The file is created with `mode` (before the umask),
// so a private one is never readable by others, not even for a moment.
Status WriteFileAtomically(const std::string& path, std::string_view bytes, mode_t mode = 0644);

// An exclusive flock on <dir>/LOCK, held while the object lives. flock
// belongs to the open file description, so a second Acquire in the same
// process is refused like one from another process.
class DirLock {
 public:
  // `owner` names the holder in the error ("file engine", "hint store").
  static Status Acquire(const std::string& dir, std::string_view owner, DirLock* out);
  void Release() { fd_.Reset(); }

 private:
  UniqueFd fd_;
};

// One append-only log file. Methods are thread-safe (pread, pwritev and
// fdatasync on a fixed descriptor); deciding *where* to write is the
// caller's. Shared through shared_ptr, so a reader that found a record can
// still read it after the file was unlinked: the descriptor closes with the
// last owner.
class LogFile {
 public:
  enum class Mode { kCreateNew, kOpenExisting, kOpenOrCreate };
  static Status Open(const std::string& path, Mode mode, std::shared_ptr<LogFile>* out);

  const std::string& path() const { return path_; }

  // Reads exactly n bytes at offset; a short read is Corruption.
  Status ReadAt(uint64_t offset, size_t n, char* dst) const;
  // As ReadAt, but only from the page cache: WouldBlock when some of the
  // bytes would have to come from the device (preadv2 with RWF_NOWAIT), or
  // when the file system cannot tell.
  Status TryReadAt(uint64_t offset, size_t n, char* dst) const;
  // Writes all of iov at offset, retrying short writes.
  Status WriteAt(uint64_t offset, const struct iovec* iov, int iovcnt);
  Status WriteAt(uint64_t offset, std::string_view bytes);
  Status Sync();                      // fdatasync
  Status Truncate(uint64_t size);     // ftruncate, then fdatasync
  Status Size(uint64_t* size) const;  // fstat

 private:
  LogFile(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  // ReadAt and TryReadAt: preadv2 with flags (0 or RWF_NOWAIT) until n bytes.
  Status Read(uint64_t offset, size_t n, char* dst, int flags) const;
  UniqueFd fd_;
  const std::string path_;
};

}  // namespace dynamo::durable
