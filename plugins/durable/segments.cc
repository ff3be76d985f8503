#include "dynamo/durable/segments.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

namespace dynamo::durable {
namespace {

constexpr size_t kSeqDigits = 10;
constexpr std::string_view kSuffix = ".log";

}  // namespace

std::string SegmentDir::FileName(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%010llu.log", static_cast<unsigned long long>(seq));
  return buf;
}

bool SegmentDir::ParseFileName(std::string_view name, uint64_t* seq) {
  if (name.size() != kSeqDigits + kSuffix.size() || name.substr(kSeqDigits) != kSuffix) {
    return false;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < kSeqDigits; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    v = v * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  *seq = v;
  return true;
}

Status SegmentDir::List(std::vector<uint64_t>* seqs) const {
  seqs->clear();
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return Status::FromErrno("cannot list " + dir_, errno);
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    uint64_t seq;
    if (ParseFileName(e->d_name, &seq)) seqs->push_back(seq);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return Status::FromErrno("cannot list " + dir_, err);
  std::sort(seqs->begin(), seqs->end());
  return Status::OK();
}

Status SegmentDir::Open(uint64_t seq, std::shared_ptr<LogFile>* out) const {
  return LogFile::Open(PathOf(seq), LogFile::Mode::kOpenExisting, out);
}

Status SegmentDir::Create(uint64_t seq, std::shared_ptr<LogFile>* out) const {
  Status s = LogFile::Open(PathOf(seq), LogFile::Mode::kCreateNew, out);
  if (!s.ok()) return s;
  return Sync();
}

Status SegmentDir::Unlink(uint64_t seq) const {
  const std::string path = PathOf(seq);
  if (::unlink(path.c_str()) != 0) return Status::FromErrno("cannot unlink " + path, errno);
  return Status::OK();
}

}  // namespace dynamo::durable
