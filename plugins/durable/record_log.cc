#include "dynamo/durable/record_log.h"

#include <zlib.h>

#include <algorithm>

namespace dynamo::durable {
namespace {

// Replay reads this much at a time; a bigger record is read whole.
constexpr uint64_t kReadChunk = 1u << 20;

// True when a whole record that passes its checks starts anywhere in
// tail(from, end of tail).
bool IntactRecordAfter(std::string_view tail, const Framing& framing) {
  const size_t header = framing.header_size();
  std::string why;
  for (size_t y = 1; y + header <= tail.size(); ++y) {
    uint64_t size;
    if (!framing.Measure(tail.data() + y, &size, &why)) continue;
    if (size > tail.size() - y) continue;
    if (framing.Verify(tail.substr(y, static_cast<size_t>(size)), &why)) return true;
  }
  return false;
}

}  // namespace

uint32_t Crc32(uint32_t crc, const char* p, size_t n) {
  // zlib returns 0, not crc, for a NULL buffer, and an empty string_view may
  // well have a NULL data(). crc32_z takes a size_t length.
  if (n == 0) return crc;
  return static_cast<uint32_t>(crc32_z(crc, reinterpret_cast<const Bytef*>(p), n));
}

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void PutU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}

bool CrcLengthFraming::Measure(const char* header, uint64_t* size, std::string* why) const {
  const uint32_t len = GetU32(header + 4);
  if (len < min_body_ || len > max_body_) {
    *why = "bad record length " + std::to_string(len);
    return false;
  }
  if (body_start_ >= 0 && static_cast<unsigned char>(header[kPrefix]) != body_start_) {
    *why = "bad first body byte";
    return false;
  }
  *size = kPrefix + uint64_t{len};
  return true;
}

bool CrcLengthFraming::Verify(std::string_view record, std::string* why) const {
  if (Crc32(0, record.data() + kPrefix, record.size() - kPrefix) != GetU32(record.data())) {
    *why = "checksum mismatch";
    return false;
  }
  return true;
}

void CrcLengthFraming::Append(std::string_view body, std::string* out) {
  char prefix[kPrefix];
  PutU32(prefix, Crc32(0, body.data(), body.size()));
  PutU32(prefix + 4, static_cast<uint32_t>(body.size()));
  out->append(prefix, kPrefix);
  out->append(body);
}

bool LogReader::Fill(uint64_t n, std::string* why) {
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
  Status s = file_->ReadAt(pos_ + old, static_cast<size_t>(want - old), buf_.data() + old);
  if (!s.ok()) {
    *why = s.message();
    buf_.resize(old);
    return false;
  }
  return true;
}

LogReader::Outcome LogReader::Next(Record* rec, std::string* why) {
  if (pos_ >= file_size_) return Outcome::kEnd;
  const uint64_t left = file_size_ - pos_;
  const size_t header = framing_.header_size();
  if (left < header) {
    *why = "short record header (" + std::to_string(left) + " bytes)";
    return Outcome::kBad;
  }
  if (!Fill(header, why)) return Outcome::kIOError;
  uint64_t size;
  if (!framing_.Measure(buf_.data() + (pos_ - buf_start_), &size, why)) return Outcome::kBad;
  if (size > left) {
    *why = "record of " + std::to_string(size) + " bytes runs past the end of the file";
    return Outcome::kBad;
  }
  if (!Fill(size, why)) return Outcome::kIOError;
  std::string_view raw(buf_.data() + (pos_ - buf_start_), static_cast<size_t>(size));
  if (!framing_.Verify(raw, why)) return Outcome::kBad;
  rec->offset = pos_;
  rec->raw = raw;
  pos_ += size;
  return Outcome::kRecord;
}

Status Replay(const std::shared_ptr<LogFile>& file, uint64_t size, const Framing& framing,
              TailRule rule, const std::function<Status(const Record&)>& fn, ReplayResult* result) {
  *result = ReplayResult{};
  LogReader reader(file, size, framing);
  Record rec;
  std::string why;
  for (;;) {
    switch (reader.Next(&rec, &why)) {
      case LogReader::Outcome::kRecord:
        if (Status s = fn(rec); !s.ok()) return s;
        continue;
      case LogReader::Outcome::kEnd:
        result->end = size;
        return Status::OK();
      case LogReader::Outcome::kIOError:
        return Status::IOError("cannot replay " + file->path() + ": " + why);
      case LogReader::Outcome::kBad:
        break;
    }
    const uint64_t at = reader.offset();
    const std::string where = file->path() + " at offset " + std::to_string(at);
    if (rule == TailRule::kNone) {
      return Status::Corruption("bad record in " + where + " (" + why + ")");
    }
    if (rule == TailRule::kTornOnly) {
      std::string tail(static_cast<size_t>(size - at), '\0');
      if (Status s = file->ReadAt(at, tail.size(), tail.data()); !s.ok()) return s;
      if (IntactRecordAfter(tail, framing)) {
        return Status::Corruption("bad record in " + where + " (" + why +
                                  ") with intact records after it");
      }
    }
    if (Status s = file->Truncate(at); !s.ok()) return s;
    result->end = at;
    result->dropped = size - at;
    result->why = why;
    return Status::OK();
  }
}

}  // namespace dynamo::durable
