// Small helpers shared by every msgpack encoding of the project (the wire
// schema, sibling sets, contexts, rings, cluster state). Internal: include it
// only from .cc files, so msgpack stays out of public headers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <msgpack.hpp>
#include <string>
#include <string_view>

namespace dynamo::mp {

using Packer = msgpack::packer<msgpack::sbuffer>;

// A msgpack output stream that writes into a std::string, so an encoding is
// handed over (moved) without the copy out of an sbuffer.
struct StringSink {
  std::string bytes;
  void write(const char* p, size_t n) { bytes.append(p, n); }
};
using StringPacker = msgpack::packer<StringSink>;

template <typename Stream>
inline void PackStr(msgpack::packer<Stream>& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

template <typename Stream>
inline void PackBin(msgpack::packer<Stream>& pk, std::string_view b) {
  pk.pack_bin(static_cast<uint32_t>(b.size()));
  pk.pack_bin_body(b.data(), static_cast<uint32_t>(b.size()));
}

// Reads a str or a bin.
// A view of a str or bin object's bytes: into the unpacked buffer when it
// was unpacked by reference (Unpack below), so valid while that buffer is.
inline bool ReadStr(const msgpack::object& o, std::string_view* out) {
  if (o.type == msgpack::type::STR) {
    *out = std::string_view(o.via.str.ptr, o.via.str.size);
  } else if (o.type == msgpack::type::BIN) {
    *out = std::string_view(o.via.bin.ptr, o.via.bin.size);
  } else {
    return false;
  }
  return true;
}

inline bool ReadStr(const msgpack::object& o, std::string* out) {
  if (o.type == msgpack::type::STR) {
    out->assign(o.via.str.ptr, o.via.str.size);
  } else if (o.type == msgpack::type::BIN) {
    out->assign(o.via.bin.ptr, o.via.bin.size);
  } else {
    return false;
  }
  return true;
}

inline bool ReadU64(const msgpack::object& o, uint64_t* out) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return false;
  *out = o.via.u64;
  return true;
}

// Parses exactly one object spanning all of bytes, referencing (not
// copying) its strings. No container may declare more items than there are
// bytes, so a hostile length cannot reserve memory. False on any error, with
// *why (when given) saying what was wrong.
inline bool Unpack(std::string_view bytes, msgpack::object_handle* h, size_t max_depth,
                   std::string* why = nullptr) {
  const size_t items = std::min<size_t>(bytes.size(), 1u << 20);
  msgpack::unpack_limit limit(items, items, bytes.size(), bytes.size(), 0, max_depth);
  try {
    std::size_t off = 0;
    *h = msgpack::unpack(
        bytes.data(), bytes.size(), off,
        [](msgpack::type::object_type, std::size_t, void*) { return true; }, nullptr, limit);
    if (off == bytes.size()) return true;
    if (why) *why = "trailing bytes after the array";
  } catch (const std::bad_alloc&) {
    if (why) *why = "too large to decode";
  } catch (const std::exception& e) {
    if (why) *why = e.what();
  }
  return false;
}

}  // namespace dynamo::mp
