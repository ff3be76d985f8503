#include "antientropy/tree_messages.h"

#include <algorithm>

#include "dynamo/merkle.h"

namespace dynamo {

std::string EncodeTreeRequest(const TreeRequest& r) {
  msgpack::sbuffer buf(64 + r.indices.size() * 5);
  mp::Packer pk(buf);
  pk.pack_array(4);
  pk.pack_uint32(r.op);
  pk.pack_uint32(r.partition);
  pk.pack_uint64(r.ring_version);
  if (r.op == kOpFetch) {
    pk.pack_array(static_cast<uint32_t>(r.keys.size()));
    for (const auto& k : r.keys) mp::PackBin(pk, k);
  } else {
    pk.pack_array(static_cast<uint32_t>(r.indices.size()));
    for (uint32_t i : r.indices) pk.pack_uint32(i);
  }
  return std::string(buf.data(), buf.size());
}

Status DecodeTreeRequest(std::string_view bytes, TreeRequest* r) {
  const Status bad = Status::InvalidArgument("malformed tree exchange");
  msgpack::object_handle h;
  if (!mp::Unpack(bytes, &h, kMaxTreeDepth)) return bad;
  const msgpack::object& o = h.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 4) return bad;
  const msgpack::object* f = o.via.array.ptr;
  uint64_t op = 0, p = 0;
  if (!mp::ReadU64(f[0], &op) || !mp::ReadU64(f[1], &p) || !mp::ReadU64(f[2], &r->ring_version) ||
      f[3].type != msgpack::type::ARRAY || op < kOpRoot || op > kOpFetch || p > UINT32_MAX) {
    return bad;
  }
  r->op = static_cast<uint32_t>(op);
  r->partition = static_cast<uint32_t>(p);
  const uint32_t n = f[3].via.array.size;
  for (uint32_t i = 0; i < n; ++i) {
    const msgpack::object& e = f[3].via.array.ptr[i];
    if (r->op == kOpFetch) {
      std::string k;
      if (!mp::ReadStr(e, &k) || k.empty()) return bad;
      r->keys.push_back(std::move(k));
    } else {
      uint64_t idx = 0;
      const uint64_t limit = r->op == kOpLeaves ? MerkleTree::kInner : MerkleTree::kLeaves;
      if (!mp::ReadU64(e, &idx) || idx >= limit) return bad;
      r->indices.push_back(static_cast<uint32_t>(idx));
    }
  }
  // Each index once: a repeated one would only multiply the reply.
  std::sort(r->indices.begin(), r->indices.end());
  r->indices.erase(std::unique(r->indices.begin(), r->indices.end()), r->indices.end());
  if (r->keys.size() > kMaxKeysPerExchange) return bad;
  return Status::OK();
}

bool ReadU64Array(const msgpack::object& o, std::vector<uint64_t>* out) {
  if (o.type != msgpack::type::ARRAY) return false;
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    uint64_t v = 0;
    if (!mp::ReadU64(o.via.array.ptr[i], &v)) return false;
    out->push_back(v);
  }
  return true;
}

bool ReadPairs(std::string_view bytes, bool second_is_bytes,
               std::vector<std::pair<std::string, uint64_t>>* digests,
               std::vector<std::pair<std::string, std::string>>* sets) {
  msgpack::object_handle h;
  if (!mp::Unpack(bytes, &h, kMaxTreeDepth)) return false;
  const msgpack::object& o = h.get();
  if (o.type != msgpack::type::ARRAY) return false;
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    const msgpack::object& e = o.via.array.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size != 2) return false;
    std::string k;
    if (!mp::ReadStr(e.via.array.ptr[0], &k)) return false;
    if (second_is_bytes) {
      std::string v;
      if (!mp::ReadStr(e.via.array.ptr[1], &v)) return false;
      sets->emplace_back(std::move(k), std::move(v));
    } else {
      uint64_t d = 0;
      if (!mp::ReadU64(e.via.array.ptr[1], &d)) return false;
      digests->emplace_back(std::move(k), d);
    }
  }
  return true;
}

wire::Reply TreeReply(uint64_t id, const msgpack::sbuffer& buf) {
  wire::Reply r;
  r.type = wire::MsgType::kTreeReply;
  r.id = id;
  r.payload.assign(buf.data(), buf.size());
  return r;
}

}  // namespace dynamo
