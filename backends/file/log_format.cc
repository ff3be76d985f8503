#include "log_format.h"

#include <zlib.h>

#include <cstring>

namespace dynamo::file {
namespace {

constexpr uint32_t kCrcInit = 0;  // crc32's documented initial value

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

uint32_t Crc(uint32_t crc, const char* p, size_t n) {
  // zlib's crc32 returns 0, not crc, for a NULL buffer, and an empty
  // string_view may well have a NULL data(): a REMOVE's empty value would
  // reset the checksum. crc32_z takes a size_t length, so values beyond
  // 4 GiB would still work.
  if (n == 0) return crc;
  return static_cast<uint32_t>(crc32_z(crc, reinterpret_cast<const Bytef*>(p), n));
}

}  // namespace

void EncodeHeader(RecordKind kind, std::string_view key, uint64_t key_hash,
                  std::string_view value, char* out) {
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
  uint32_t crc = Crc(kCrcInit, rec + 4,
                     static_cast<size_t>(h.record_size() - 4));
  return crc == h.crc;
}

}  // namespace dynamo::file
