#include "dynamo/versioning.h"

#include <algorithm>
#include <tuple>

#include "dynamo/key_hash.h"
#include "dynamo/msgpack_io.h"

namespace dynamo {
namespace {

using mp::Packer;
using mp::PackStr;
using mp::ReadStr;
using mp::ReadU64;

constexpr uint32_t kSiblingFormat = 2;
constexpr size_t kMaxNodeName = 1024;

void PackEntry(Packer& pk, std::string_view node, uint64_t counter, uint64_t ts) {
  pk.pack_array(3);
  PackStr(pk, node);
  pk.pack_uint64(counter);
  pk.pack_uint64(ts);
}

// [clock, dots], in an array of 2 + extra items: the caller packs the extra ones.
void PackContext(Packer& pk, const CausalContext& c, uint32_t extra = 0) {
  pk.pack_array(2 + extra);
  pk.pack_array(static_cast<uint32_t>(c.clock().size()));
  for (const auto& e : c.clock().entries()) PackEntry(pk, e.node, e.counter, e.timestamp_ms);
  pk.pack_array(static_cast<uint32_t>(c.dots().size()));
  for (const auto& d : c.dots()) PackEntry(pk, d.node, d.counter, d.timestamp_ms);
}

bool ReadEntries(const msgpack::object& o, std::vector<ClockEntry>* out) {
  if (o.type != msgpack::type::ARRAY) return false;
  std::vector<ClockEntry> entries;
  entries.reserve(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    const msgpack::object& e = o.via.array.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size != 3) return false;
    ClockEntry ce;
    if (!ReadStr(e.via.array.ptr[0], &ce.node) || ce.node.empty() ||
        ce.node.size() > kMaxNodeName || !ReadU64(e.via.array.ptr[1], &ce.counter) ||
        !ReadU64(e.via.array.ptr[2], &ce.timestamp_ms) || ce.counter == 0) {
      return false;
    }
    entries.push_back(std::move(ce));
  }
  *out = std::move(entries);
  return true;
}

// A context: [clock, dots]; with coordinator != nullptr, a client's context,
// which may add the coordinator hint as a third item (a string).
bool ReadContext(const msgpack::object& o, CausalContext* out, std::string* coordinator = nullptr) {
  if (o.type != msgpack::type::ARRAY) return false;
  const uint32_t n = o.via.array.size;
  if (n != 2 && !(n == 3 && coordinator != nullptr)) return false;
  if (n == 3) {
    const msgpack::object& hint = o.via.array.ptr[2];
    if (hint.type != msgpack::type::STR || hint.via.str.size > 1024) return false;
    coordinator->assign(hint.via.str.ptr, hint.via.str.size);
  }
  std::vector<ClockEntry> clock, dots;
  if (!ReadEntries(o.via.array.ptr[0], &clock) || !ReadEntries(o.via.array.ptr[1], &dots)) {
    return false;
  }
  CausalContext c(VectorClock::FromEntries(std::move(clock)));
  for (const auto& d : dots) c.Add(d.node, d.counter, d.timestamp_ms);
  *out = std::move(c);
  return true;
}

bool Unpack(std::string_view bytes, msgpack::object_handle* h) { return mp::Unpack(bytes, h, 8); }

}  // namespace

// ---- CausalContext

bool CausalContext::Covers(std::string_view node, uint64_t counter) const {
  if (clock_.Get(node) >= counter) return true;
  return std::any_of(dots_.begin(), dots_.end(),
                     [&](const Dot& d) { return d.counter == counter && d.node == node; });
}

uint64_t CausalContext::Max(std::string_view node) const {
  uint64_t m = clock_.Get(node);
  for (const auto& d : dots_) {
    if (d.node == node) m = std::max(m, d.counter);
  }
  return m;
}

void CausalContext::Add(std::string_view node, uint64_t counter, uint64_t timestamp_ms) {
  if (Covers(node, counter)) return;
  dots_.push_back(Dot{std::string(node), counter, timestamp_ms});
  Normalize();
}

void CausalContext::Merge(const CausalContext& other) {
  clock_.Merge(other.clock_);
  dots_.insert(dots_.end(), other.dots_.begin(), other.dots_.end());
  Normalize();
}

void CausalContext::Normalize() {
  std::sort(dots_.begin(), dots_.end(), [](const Dot& a, const Dot& b) {
    return a.node != b.node ? a.node < b.node : a.counter < b.counter;
  });
  // In (node, counter) order, a dot right after its node's clock entry
  // extends the clock, which may let the next dot extend it too.
  std::vector<Dot> kept;
  for (auto& d : dots_) {
    const uint64_t have = clock_.Get(d.node);
    if (d.counter <= have) continue;
    if (d.counter == have + 1) {
      clock_.Set(d.node, d.counter, d.timestamp_ms);
      continue;
    }
    if (!kept.empty() && kept.back().node == d.node && kept.back().counter == d.counter) continue;
    kept.push_back(std::move(d));
  }
  dots_ = std::move(kept);
}

void CausalContext::Truncate(size_t max_entries) {
  clock_.Truncate(max_entries);
  if (dots_.size() > max_entries) {
    std::vector<Dot> by_age = dots_;
    std::sort(by_age.begin(), by_age.end(), [](const Dot& a, const Dot& b) {
      return a.timestamp_ms > b.timestamp_ms;  // newest first
    });
    by_age.resize(max_entries);
    dots_ = std::move(by_age);
  }
  Normalize();
}

// ---- Version and SiblingSet

CausalContext Version::History() const {
  CausalContext h = context;
  h.Add(dot_node, dot_counter, timestamp_ms);
  return h;
}

const Version& SiblingSet::Apply(const CausalContext& context, std::string_view node,
                                 uint64_t now_ms, std::string value, bool tombstone,
                                 size_t max_clock_entries, uint64_t min_counter) {
  uint64_t counter = context.Max(node);
  for (const auto& v : versions_) counter = std::max(counter, v.History().Max(node));
  if (min_counter > 0) counter = std::max(counter, min_counter - 1);
  Version nv;
  nv.context = context;
  nv.context.Truncate(max_clock_entries > 0 ? max_clock_entries - 1 : 0);
  nv.dot_node = std::string(node);
  nv.dot_counter = counter + 1;
  nv.timestamp_ms = now_ms;
  nv.tombstone = tombstone;
  nv.value = std::move(value);
  // The full context decides what is obsolete, even if the stored one was
  // truncated: the client did read those versions.
  std::erase_if(versions_, [&](const Version& v) { return v.CoveredBy(context); });
  versions_.push_back(std::move(nv));
  return versions_.back();
}

CausalContext SiblingSet::ApplyAt(const CausalContext& context, const Dot& dot, std::string value,
                                  bool tombstone, size_t max_clock_entries) {
  Version nv;
  nv.context = context;
  nv.context.Truncate(max_clock_entries > 0 ? max_clock_entries - 1 : 0);
  nv.dot_node = dot.node;
  nv.dot_counter = dot.counter;
  nv.timestamp_ms = dot.timestamp_ms;
  nv.tombstone = tombstone;
  nv.value = std::move(value);
  CausalContext history = nv.History();
  // What the full context covers is obsolete whether or not this version is
  // new here (a later write that covers it covers those too).
  std::erase_if(versions_,
                [&](const Version& v) { return v.CoveredBy(context) && !v.SameEvent(nv); });
  Add(std::move(nv));
  return history;
}

bool SiblingSet::Add(Version v) {
  for (const auto& have : versions_) {
    if (have.SameEvent(v) || v.CoveredBy(have.context)) return false;
  }
  std::erase_if(versions_, [&](const Version& have) { return have.CoveredBy(v.context); });
  versions_.push_back(std::move(v));
  return true;
}

bool SiblingSet::Merge(const SiblingSet& other) {
  bool changed = false;
  for (const auto& v : other.versions_) changed = Add(v) || changed;
  return changed;
}

CausalContext SiblingSet::Context() const {
  CausalContext c;
  for (const auto& v : versions_) c.Merge(v.History());
  return c;
}

bool SiblingSet::IsDeleted() const {
  return std::all_of(versions_.begin(), versions_.end(),
                     [](const Version& v) { return v.tombstone; });
}

std::vector<std::string_view> SiblingSet::LiveValues() const {
  // Order by (timestamp, dot) so every replica lists siblings alike.
  std::vector<const Version*> live;
  for (const auto& v : versions_) {
    if (!v.tombstone) live.push_back(&v);
  }
  std::sort(live.begin(), live.end(), [](const Version* a, const Version* b) {
    if (a->timestamp_ms != b->timestamp_ms) return a->timestamp_ms < b->timestamp_ms;
    if (a->dot_node != b->dot_node) return a->dot_node < b->dot_node;
    return a->dot_counter < b->dot_counter;
  });
  std::vector<std::string_view> out;
  out.reserve(live.size());
  for (const Version* v : live) out.push_back(v->value);
  return out;
}

bool SiblingSet::operator==(const SiblingSet& o) const {
  if (versions_.size() != o.versions_.size()) return false;
  for (const auto& v : versions_) {
    auto it = std::find_if(o.versions_.begin(), o.versions_.end(),
                           [&](const Version& w) { return w.SameEvent(v); });
    if (it == o.versions_.end() || it->value != v.value || it->tombstone != v.tombstone ||
        !(it->context == v.context)) {
      return false;
    }
  }
  return true;
}

// [format, [[context, dot_node, dot_counter, timestamp_ms, tombstone, value], ...]]
std::string SiblingSet::Encode() const {
  size_t hint = 16;
  for (const auto& v : versions_)
    hint += v.value.size() + 32 + (v.context.clock().size() + v.context.dots().size()) * 24;
  msgpack::sbuffer buf(hint);
  Packer pk(buf);
  pk.pack_array(2);
  pk.pack_uint32(kSiblingFormat);
  pk.pack_array(static_cast<uint32_t>(versions_.size()));
  for (const auto& v : versions_) {
    pk.pack_array(6);
    PackContext(pk, v.context);
    PackStr(pk, v.dot_node);
    pk.pack_uint64(v.dot_counter);
    pk.pack_uint64(v.timestamp_ms);
    if (v.tombstone)
      pk.pack_true();
    else
      pk.pack_false();
    mp::PackBin(pk, v.value);
  }
  return std::string(buf.data(), buf.size());
}

uint64_t SiblingSet::Digest() const {
  if (versions_.empty()) return 0;
  SiblingSet sorted = *this;
  std::sort(sorted.versions_.begin(), sorted.versions_.end(),
            [](const Version& a, const Version& b) {
              return std::tie(a.dot_node, a.dot_counter) < std::tie(b.dot_node, b.dot_counter);
            });
  const uint64_t d = KeyHash(sorted.Encode());
  return d == 0 ? 1 : d;
}

Result<SiblingSet> SiblingSet::Decode(std::string_view bytes) {
  auto bad = [](const char* why) {
    return Status::Corruption(std::string("undecodable sibling set: ") + why);
  };
  msgpack::object_handle h;
  if (!Unpack(bytes, &h)) return bad("not msgpack");
  const msgpack::object& o = h.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 2) return bad("not [format, versions]");
  uint64_t format = 0;
  if (!ReadU64(o.via.array.ptr[0], &format) || format != kSiblingFormat) {
    return bad("unknown format");
  }
  const msgpack::object& vs = o.via.array.ptr[1];
  if (vs.type != msgpack::type::ARRAY) return bad("versions not an array");
  SiblingSet set;
  set.versions_.reserve(vs.via.array.size);
  for (uint32_t i = 0; i < vs.via.array.size; ++i) {
    const msgpack::object& e = vs.via.array.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size != 6) return bad("bad version");
    const msgpack::object* f = e.via.array.ptr;
    Version v;
    if (!ReadContext(f[0], &v.context) || !ReadStr(f[1], &v.dot_node) ||
        !ReadU64(f[2], &v.dot_counter) || !ReadU64(f[3], &v.timestamp_ms) ||
        f[4].type != msgpack::type::BOOLEAN || !ReadStr(f[5], &v.value)) {
      return bad("bad version field");
    }
    if (v.dot_node.empty() || v.dot_node.size() > kMaxNodeName || v.dot_counter == 0) {
      return bad("bad dot");
    }
    v.tombstone = f[4].via.boolean;
    // Through Add, as every set is built: a second version of one event, or
    // one another version's context covers, is dropped (no encoder writes
    // them, but outside bytes may hold them; found by fuzzing).
    set.Add(std::move(v));
  }
  return set;
}

std::string EncodeContext(const CausalContext& context, std::string_view coordinator) {
  msgpack::sbuffer buf(16 + coordinator.size() +
                       (context.clock().size() + context.dots().size()) * 32);
  Packer pk(buf);
  PackContext(pk, context, coordinator.empty() ? 0 : 1);
  if (!coordinator.empty()) {
    pk.pack_str(static_cast<uint32_t>(coordinator.size()));
    pk.pack_str_body(coordinator.data(), static_cast<uint32_t>(coordinator.size()));
  }
  return std::string(buf.data(), buf.size());
}

Result<CausalContext> DecodeContext(std::string_view bytes, std::string* coordinator) {
  std::string hint;
  if (coordinator != nullptr) coordinator->clear();
  if (bytes.empty()) return CausalContext();
  msgpack::object_handle h;
  CausalContext c;
  if (!Unpack(bytes, &h) || !ReadContext(h.get(), &c, &hint)) {
    return Status::InvalidArgument("bad context: not a context returned by dynamo");
  }
  if (coordinator != nullptr) *coordinator = std::move(hint);
  return c;
}

}  // namespace dynamo
