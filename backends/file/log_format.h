// The record format of the file engine's log segments.
//
// A segment is a plain concatenation of records, no file header, so that a
// record can be copied verbatim from one segment to another by compaction.
// Every integer is little-endian:
//
//   offset  size  field
//   0       4     crc        zlib crc32 of bytes [4, end of record)
//   4       1     kind       1 = PUT, 2 = REMOVE
//   5       4     key_len
//   9       4     value_len  0 for REMOVE
//   13      8     key_hash   the host's 64-bit hash of the key
//   21      ...   key bytes, then value bytes
//
// The crc covers every header field after itself and the key and value
// bytes, so a torn write, a zero-filled tail or a flipped bit anywhere in the
// record is caught.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dynamo/durable/record_log.h"

namespace dynamo::file {

enum class RecordKind : uint8_t { kPut = 1, kRemove = 2 };

constexpr size_t kHeaderSize = 21;
// Bounds a record must respect. Well above what the host sends (keys of
// 64 KiB, values of 1 MiB by default); anything larger found at recovery is
// garbage, not data, and anything larger offered by put() is refused.
constexpr uint32_t kMaxKeyBytes = 1u << 20;
constexpr uint32_t kMaxValueBytes = 1u << 30;

struct RecordHeader {
  uint32_t crc = 0;
  RecordKind kind = RecordKind::kPut;
  uint32_t key_len = 0;
  uint32_t value_len = 0;
  uint64_t key_hash = 0;

  uint64_t record_size() const { return kHeaderSize + uint64_t{key_len} + value_len; }
};

// Fills out[0, kHeaderSize) with the header of a record holding key and
// value, crc included.
void EncodeHeader(RecordKind kind, std::string_view key, uint64_t key_hash, std::string_view value,
                  char* out);

// Parses a header. False (with *why set) when the kind is unknown or a
// length exceeds the bounds above; the crc is not checked here.
bool DecodeHeader(const char* in, RecordHeader* h, std::string* why);

// True when rec (a whole record: header, key, value as described by h)
// matches its crc.
bool RecordCrcMatches(const RecordHeader& h, const char* rec);

// The record format as the durable log library reads it.
class RecordFraming : public durable::Framing {
 public:
  size_t header_size() const override { return kHeaderSize; }
  bool Measure(const char* header, uint64_t* size, std::string* why) const override;
  bool Verify(std::string_view record, std::string* why) const override;
};

// A whole, verified record taken apart; the views point into raw.
struct RecordView {
  RecordHeader header;
  std::string_view key;
  std::string_view value;  // empty for REMOVE
};
// Takes apart a record that RecordFraming verified.
RecordView ViewRecord(std::string_view raw);

}  // namespace dynamo::file
