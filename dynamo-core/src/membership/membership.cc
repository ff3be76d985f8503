#include "dynamo/membership.h"

#include "dynamo/msgpack_io.h"

namespace dynamo {
namespace {

constexpr uint32_t kFormat = 1;
using mp::Packer;
using mp::PackStr;
using mp::ReadStr;

}  // namespace

const char* MemberStateName(MemberState s) {
  switch (s) {
    case MemberState::kJoining:
      return "joining";
    case MemberState::kUp:
      return "up";
    case MemberState::kLeaving:
      return "leaving";
    case MemberState::kDown:
      return "down";
    case MemberState::kRemoved:
      return "removed";
  }
  return "unknown";
}

const Member* ClusterState::Find(const std::string& node_id) const {
  auto it = members_.find(node_id);
  return it == members_.end() ? nullptr : &it->second;
}

bool ClusterState::AddMember(const std::string& node_id, const std::string& endpoint,
                             MemberState state) {
  if (members_.count(node_id)) return false;
  members_[node_id] = Member{node_id, endpoint, state, 1};
  return true;
}

bool ClusterState::Update(const std::string& node_id, const std::string& endpoint,
                          MemberState state) {
  auto it = members_.find(node_id);
  if (it == members_.end()) return false;
  Member& m = it->second;
  if (m.state == state && m.endpoint == endpoint) return false;
  m.state = state;
  m.endpoint = endpoint;
  ++m.version;
  return true;
}

bool ClusterState::Merge(const ClusterState& other) {
  bool changed = false;
  for (const auto& [id, theirs] : other.members_) {
    auto it = members_.find(id);
    if (it == members_.end()) {
      members_[id] = theirs;
      changed = true;
    } else if (theirs.version > it->second.version) {
      it->second = theirs;
      changed = true;
    }
  }
  if (other.ring_.empty()) return changed;
  if (ring_.empty() || other.ring_.version() > ring_.version() ||
      (other.ring_.version() == ring_.version() && !(other.ring_ == ring_) &&
       other.ring_.Encode() > ring_.Encode())) {
    ring_ = other.ring_;
    changed = true;
  }
  return changed;
}

std::string ClusterState::Claimant() const {
  if (ring_.empty()) return std::string();
  for (const auto& [id, m] : members_) {  // std::map: smallest id first
    if (m.state != MemberState::kLeaving && m.state != MemberState::kRemoved &&
        ring_.Contains(id)) {
      return id;
    }
  }
  return std::string();
}

// [format, [[node_id, endpoint, state, version], ...], ring:bin]
std::string ClusterState::Encode() const {
  msgpack::sbuffer buf(256 + members_.size() * 64);
  Packer pk(buf);
  pk.pack_array(3);
  pk.pack_uint32(kFormat);
  pk.pack_array(static_cast<uint32_t>(members_.size()));
  for (const auto& [id, m] : members_) {
    pk.pack_array(4);
    PackStr(pk, m.node_id);
    PackStr(pk, m.endpoint);
    pk.pack_uint8(static_cast<uint8_t>(m.state));
    pk.pack_uint64(m.version);
  }
  // An empty ring (a node still joining) travels as empty bytes.
  std::string ring = ring_.empty() ? std::string() : ring_.Encode();
  mp::PackBin(pk, ring);
  return std::string(buf.data(), buf.size());
}

Result<ClusterState> ClusterState::Decode(std::string_view bytes) {
  auto bad = [](const char* why) {
    return Status::Corruption(std::string("undecodable cluster state: ") + why);
  };
  msgpack::object_handle h;
  if (!mp::Unpack(bytes, &h, 8)) return bad("not one msgpack object");
  const msgpack::object& o = h.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 3) return bad("not an array of 3");
  const msgpack::object* f = o.via.array.ptr;
  if (f[0].type != msgpack::type::POSITIVE_INTEGER || f[0].via.u64 != kFormat) {
    return bad("unknown format");
  }
  if (f[1].type != msgpack::type::ARRAY) return bad("members not an array");
  ClusterState cs;
  for (uint32_t i = 0; i < f[1].via.array.size; ++i) {
    const msgpack::object& e = f[1].via.array.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size != 4) return bad("bad member");
    Member m;
    const msgpack::object* g = e.via.array.ptr;
    if (!ReadStr(g[0], &m.node_id) || m.node_id.empty() || !ReadStr(g[1], &m.endpoint) ||
        g[2].type != msgpack::type::POSITIVE_INTEGER || g[2].via.u64 > 4 ||
        g[3].type != msgpack::type::POSITIVE_INTEGER) {
      return bad("bad member field");
    }
    m.state = static_cast<MemberState>(g[2].via.u64);
    m.version = g[3].via.u64;
    cs.members_[m.node_id] = std::move(m);
  }
  std::string ring_bytes;
  if (!ReadStr(f[2], &ring_bytes)) return bad("ring not bytes");
  if (ring_bytes.empty()) return cs;
  auto ring = Ring::Decode(ring_bytes);
  if (!ring.ok()) return ring.status();
  cs.ring_ = std::move(ring).value();
  return cs;
}

}  // namespace dynamo
