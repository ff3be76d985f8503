#include "segment.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace dynamo::file {
namespace {

// Replay reads this much at a time; a bigger record is read whole.
constexpr uint64_t kReadChunk = 1u << 20;
constexpr size_t kSeqDigits = 10;

}  // namespace

std::string SegmentFileName(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%010llu.log", static_cast<unsigned long long>(seq));
  return buf;
}

bool ParseSegmentFileName(std::string_view name, uint64_t* seq) {
  if (name.size() != kSeqDigits + 4 || name.substr(kSeqDigits) != ".log") return false;
  uint64_t v = 0;
  for (size_t i = 0; i < kSeqDigits; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    v = v * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  *seq = v;
  return true;
}

Status ListSegments(const std::string& dir, std::vector<uint64_t>* seqs) {
  seqs->clear();
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Status::FromErrno("cannot list " + dir, errno);
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    uint64_t seq;
    if (ParseSegmentFileName(e->d_name, &seq)) seqs->push_back(seq);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return Status::FromErrno("cannot list " + dir, err);
  std::sort(seqs->begin(), seqs->end());
  return Status::OK();
}

Status SyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("cannot open folder " + dir, errno);
  if (::fsync(fd.get()) != 0) return Status::FromErrno("cannot fsync folder " + dir, errno);
  return Status::OK();
}

Status CreateDirs(const std::string& dir) {
  if (dir.empty()) return Status::Invalid("empty folder name");
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

Status Segment::Open(const std::string& dir, uint64_t seq, bool create,
                     std::shared_ptr<Segment>* out) {
  std::string path = dir + "/" + SegmentFileName(seq);
  int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
  UniqueFd fd(::open(path.c_str(), flags, 0644));
  if (!fd.valid()) return Status::FromErrno("cannot open segment " + path, errno);
  out->reset(new Segment(std::move(fd), seq, std::move(path)));
  return Status::OK();
}

Status Segment::ReadAt(uint64_t offset, size_t n, char* dst) const {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd_.get(), dst + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("cannot read " + path_, errno);
    }
    if (r == 0) {
      return Status::Corruption("segment " + path_ + " ends before the record at offset " +
                                std::to_string(offset));
    }
    done += static_cast<size_t>(r);
  }
  return Status::OK();
}

Status Segment::WriteAt(uint64_t offset, const struct iovec* iov, int iovcnt) {
  std::vector<struct iovec> rest(iov, iov + iovcnt);
  size_t first = 0;
  while (first < rest.size()) {
    ssize_t w = ::pwritev(fd_.get(), rest.data() + first, static_cast<int>(rest.size() - first),
                          static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("cannot write " + path_, errno);
    }
    // A short write: skip what went out and retry with the remainder.
    offset += static_cast<uint64_t>(w);
    size_t left = static_cast<size_t>(w);
    while (first < rest.size() && left >= rest[first].iov_len) {
      left -= rest[first].iov_len;
      ++first;
    }
    if (first < rest.size()) {
      rest[first].iov_base = static_cast<char*>(rest[first].iov_base) + left;
      rest[first].iov_len -= left;
    }
  }
  return Status::OK();
}

Status Segment::Sync() {
  if (::fdatasync(fd_.get()) != 0) return Status::FromErrno("cannot fdatasync " + path_, errno);
  return Status::OK();
}

Status Segment::Truncate(uint64_t size) {
  if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) {
    return Status::FromErrno("cannot truncate " + path_, errno);
  }
  return Sync();
}

Status Segment::Size(uint64_t* size) const {
  struct stat st;
  if (::fstat(fd_.get(), &st) != 0) return Status::FromErrno("cannot stat " + path_, errno);
  *size = static_cast<uint64_t>(st.st_size);
  return Status::OK();
}

bool SegmentReader::Fill(uint64_t n, std::string* why) {
  uint64_t have_end = buf_start_ + buf_.size();
  if (pos_ >= buf_start_ && pos_ + n <= have_end) return true;
  // Keep the unread tail, then read at least a chunk (or the whole record).
  if (pos_ >= buf_start_ && pos_ < have_end) {
    buf_.erase(0, static_cast<size_t>(pos_ - buf_start_));
  } else {
    buf_.clear();
  }
  buf_start_ = pos_;
  uint64_t want = std::min(std::max(n, kReadChunk), file_size_ - pos_);
  size_t old = buf_.size();
  if (want <= old) return true;
  buf_.resize(static_cast<size_t>(want));
  Status s = segment_->ReadAt(pos_ + old, static_cast<size_t>(want - old), buf_.data() + old);
  if (!s.ok()) {
    *why = s.message();
    buf_.resize(old);
    return false;
  }
  return true;
}

SegmentReader::Outcome SegmentReader::Next(RecordView* rec, std::string* why) {
  if (pos_ >= file_size_) return Outcome::kEnd;
  uint64_t left = file_size_ - pos_;
  if (left < kHeaderSize) {
    *why = "short record header (" + std::to_string(left) + " bytes)";
    return Outcome::kBad;
  }
  if (!Fill(kHeaderSize, why)) return Outcome::kIOError;
  const char* p = buf_.data() + (pos_ - buf_start_);
  RecordHeader h;
  if (!DecodeHeader(p, &h, why)) return Outcome::kBad;
  uint64_t size = h.record_size();
  if (size > left) {
    *why = "record of " + std::to_string(size) + " bytes extends past the end of the file";
    return Outcome::kBad;
  }
  if (!Fill(size, why)) return Outcome::kIOError;
  p = buf_.data() + (pos_ - buf_start_);
  if (!RecordCrcMatches(h, p)) {
    *why = "checksum mismatch";
    return Outcome::kBad;
  }
  rec->header = h;
  rec->offset = pos_;
  rec->raw = std::string_view(p, static_cast<size_t>(size));
  rec->key = std::string_view(p + kHeaderSize, h.key_len);
  rec->value = std::string_view(p + kHeaderSize + h.key_len, h.value_len);
  pos_ += size;
  return Outcome::kRecord;
}

}  // namespace dynamo::file
