#include "log_format.h"

#include <cstring>

namespace dynamo::file {
namespace {

using durable::GetU32;
using durable::GetU64;
using durable::PutU32;
using durable::PutU64;

constexpr uint32_t kCrcInit = 0;  // crc32's documented initial value

uint32_t Crc(uint32_t crc, const char* p, size_t n) { return durable::Crc32(crc, p, n); }

}  // namespace

void EncodeHeader(RecordKind kind, std::string_view key, uint64_t key_hash, std::string_view value,
                  char* out) {
  out[4] = static_cast<char>(kind);
  PutU32(out + 5, static_cast<uint32_t>(key.size()));
  PutU32(out + 9, static_cast<uint32_t>(value.size()));
  PutU64(out + 13, key_hash);
  uint32_t crc = Crc(kCrcInit, out + 4, kHeaderSize - 4);
  crc = Crc(crc, key.data(), key.size());
  crc = Crc(crc, value.data(), value.size());
  PutU32(out, crc);
}

bool DecodeHeader(const char* in, RecordHeader* h, std::string* why) {
  h->crc = GetU32(in);
  uint8_t kind = static_cast<uint8_t>(in[4]);
  h->key_len = GetU32(in + 5);
  h->value_len = GetU32(in + 9);
  h->key_hash = GetU64(in + 13);
  if (kind != static_cast<uint8_t>(RecordKind::kPut) &&
      kind != static_cast<uint8_t>(RecordKind::kRemove)) {
    *why = "unknown record kind " + std::to_string(kind);
    return false;
  }
  h->kind = static_cast<RecordKind>(kind);
  if (h->key_len > kMaxKeyBytes || h->value_len > kMaxValueBytes) {
    *why = "absurd record lengths (key " + std::to_string(h->key_len) + ", value " +
           std::to_string(h->value_len) + ")";
    return false;
  }
  if (h->kind == RecordKind::kRemove && h->value_len != 0) {
    *why = "a REMOVE record with a value";
    return false;
  }
  return true;
}

bool RecordCrcMatches(const RecordHeader& h, const char* rec) {
  uint32_t crc = Crc(kCrcInit, rec + 4, static_cast<size_t>(h.record_size() - 4));
  return crc == h.crc;
}

bool RecordFraming::Measure(const char* header, uint64_t* size, std::string* why) const {
  RecordHeader h;
  if (!DecodeHeader(header, &h, why)) return false;
  *size = h.record_size();
  return true;
}

bool RecordFraming::Verify(std::string_view record, std::string* why) const {
  RecordHeader h;
  if (!DecodeHeader(record.data(), &h, why)) return false;
  if (!RecordCrcMatches(h, record.data())) {
    *why = "checksum mismatch";
    return false;
  }
  return true;
}

RecordView ViewRecord(std::string_view raw) {
  RecordView v;
  std::string why;
  DecodeHeader(raw.data(), &v.header, &why);
  v.key = raw.substr(kHeaderSize, v.header.key_len);
  v.value = raw.substr(kHeaderSize + v.header.key_len, v.header.value_len);
  return v;
}

}  // namespace dynamo::file
