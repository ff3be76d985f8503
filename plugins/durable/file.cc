#include "dynamo/durable/file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace dynamo::durable {

Status CreateDirs(const std::string& dir) {
  if (dir.empty()) return Status::InvalidArgument("empty folder name");
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return Status::FromErrno("cannot create folder " + prefix, errno);
    }
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::IOError(dir + " is not a folder");
  }
  return Status::OK();
}

Status SyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("cannot open folder " + dir, errno);
  if (::fsync(fd.get()) != 0) return Status::FromErrno("cannot fsync folder " + dir, errno);
  return Status::OK();
}

Status WriteFileAtomically(const std::string& path, std::string_view bytes, mode_t mode) {
  const std::string tmp = path + ".tmp";
  {
    // A temporary file left by a crash keeps the mode it was made with:
    // made again, so that it takes this one.
    if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) {
      return Status::FromErrno("cannot remove " + tmp, errno);
    }
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (!fd.valid()) return Status::FromErrno("cannot write " + tmp, errno);
    size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::write(fd.get(), bytes.data() + off, bytes.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno("cannot write " + tmp, errno);
      }
      off += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) return Status::FromErrno("cannot fsync " + tmp, errno);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::FromErrno("cannot rename " + tmp + " to " + path, errno);
  }
  const size_t slash = path.rfind('/');
  return SyncDir(slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash));
}

Status DirLock::Acquire(const std::string& dir, std::string_view owner, DirLock* out) {
  const std::string path = dir + "/LOCK";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno("cannot open " + path, errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::IOError(std::string(owner) + ": folder " + dir + " is already in use (" +
                             path + " is locked)");
    }
    return Status::FromErrno("cannot lock " + path, errno);
  }
  out->fd_ = std::move(fd);
  return Status::OK();
}

Status LogFile::Open(const std::string& path, Mode mode, std::shared_ptr<LogFile>* out) {
  int flags = O_RDWR | O_CLOEXEC;
  if (mode == Mode::kCreateNew) flags |= O_CREAT | O_EXCL;
  if (mode == Mode::kOpenOrCreate) flags |= O_CREAT;
  UniqueFd fd(::open(path.c_str(), flags, 0644));
  if (!fd.valid()) return Status::FromErrno("cannot open " + path, errno);
  out->reset(new LogFile(std::move(fd), path));
  return Status::OK();
}

Status LogFile::ReadAt(uint64_t offset, size_t n, char* dst) const {
  return Read(offset, n, dst, 0);
}

Status LogFile::TryReadAt(uint64_t offset, size_t n, char* dst) const {
  return Read(offset, n, dst, RWF_NOWAIT);
}

Status LogFile::Read(uint64_t offset, size_t n, char* dst, int flags) const {
  size_t done = 0;
  while (done < n) {
    struct iovec iov = {dst + done, n - done};
    ssize_t r = ::preadv2(fd_.get(), &iov, 1, static_cast<off_t>(offset + done), flags);
    if (r < 0) {
      if (errno == EINTR) continue;
      if ((flags & RWF_NOWAIT) && (errno == EAGAIN || errno == EOPNOTSUPP)) {
        return Status::WouldBlock(path_ + ": not in the page cache");
      }
      return Status::FromErrno("cannot read " + path_, errno);
    }
    if (r == 0) {
      return Status::Corruption(path_ + " ends before the " + std::to_string(n) +
                                " bytes at offset " + std::to_string(offset));
    }
    done += static_cast<size_t>(r);
  }
  return Status::OK();
}

Status LogFile::WriteAt(uint64_t offset, const struct iovec* iov, int iovcnt) {
  // The common case, everything in one call, copies nothing; only a short
  // write makes the adjustable copy of iov that the retries need.
  size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
  std::vector<struct iovec> rest;
  size_t first = 0;
  for (;;) {
    const struct iovec* from = rest.empty() ? iov : rest.data() + first;
    int count = rest.empty() ? iovcnt : static_cast<int>(rest.size() - first);
    ssize_t w = ::pwritev(fd_.get(), from, count, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("cannot write " + path_, errno);
    }
    total -= static_cast<size_t>(w);
    if (total == 0) return Status::OK();
    // A short write: skip what went out and go on with the remainder.
    if (rest.empty()) rest.assign(iov, iov + iovcnt);
    offset += static_cast<uint64_t>(w);
    size_t left = static_cast<size_t>(w);
    while (first < rest.size() && left >= rest[first].iov_len) {
      left -= rest[first].iov_len;
      ++first;
    }
    rest[first].iov_base = static_cast<char*>(rest[first].iov_base) + left;
    rest[first].iov_len -= left;
  }
}

Status LogFile::WriteAt(uint64_t offset, std::string_view bytes) {
  struct iovec iov = {const_cast<char*>(bytes.data()), bytes.size()};
  return WriteAt(offset, &iov, 1);
}

Status LogFile::Sync() {
  if (::fdatasync(fd_.get()) != 0) return Status::FromErrno("cannot fdatasync " + path_, errno);
  return Status::OK();
}

Status LogFile::Truncate(uint64_t size) {
  if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) {
    return Status::FromErrno("cannot truncate " + path_, errno);
  }
  return Sync();
}

Status LogFile::Size(uint64_t* size) const {
  struct stat st;
  if (::fstat(fd_.get(), &st) != 0) return Status::FromErrno("cannot stat " + path_, errno);
  *size = static_cast<uint64_t>(st.st_size);
  return Status::OK();
}

}  // namespace dynamo::durable
