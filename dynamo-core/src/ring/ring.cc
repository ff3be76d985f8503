// Ring ownership after paper 6.2 strategy 3: Q equal, fixed partitions are
// the unit of placement, so a membership change only reassigns whole
// partitions and a partition's data moves as one piece.
//
// Claim: a joining node takes partitions one at a time from the most loaded
// node, and a leaver's partitions go one at a time to the least loaded ones,
// which keeps ownership within one partition of even and moves nothing else.
// Which partition (or which receiver) is chosen follows a spacing heuristic,
// as riak_core's claim does: keep a node's partitions far apart, so that the
// N consecutive partitions a preference list walks tend to have N different
// owners and the walk stays short.
#include "dynamo/ring.h"

#include <algorithm>
#include <bit>
#include "dynamo/msgpack_io.h"
#include <queue>
#include <tuple>

#include "dynamo/key_hash.h"

namespace dynamo {
namespace {

constexpr uint32_t kRingFormat = 1;
using mp::ReadU64;

bool Unpack(std::string_view bytes, msgpack::object_handle* h) { return mp::Unpack(bytes, h, 4); }

using mp::Packer;

bool ValidName(std::string_view name) { return !name.empty() && name.size() <= Ring::kMaxNodeName; }

}  // namespace

Ring Ring::Create(uint32_t partitions, uint32_t replicas, const std::string& first) {
  Ring r;
  if (!std::has_single_bit(partitions) || partitions > kMaxPartitions || replicas == 0 ||
      !ValidName(first)) {
    return r;
  }
  r.version_ = 1;
  r.replicas_ = replicas;
  r.names_.push_back(first);
  r.owners_.assign(partitions, 0);
  return r;
}

uint32_t Ring::IndexOf(std::string_view node) const {
  auto it = std::lower_bound(names_.begin(), names_.end(), node);
  if (it == names_.end() || *it != node) return static_cast<uint32_t>(names_.size());
  return static_cast<uint32_t>(it - names_.begin());
}

bool Ring::Contains(const std::string& node) const { return IndexOf(node) < names_.size(); }

const std::string& Ring::Owner(uint32_t partition) const {
  static const std::string kNone;
  return partition < owners_.size() ? names_[owners_[partition]] : kNone;
}

uint32_t Ring::PartitionForKey(std::string_view key) const {
  return empty() ? 0 : PartitionOf(KeyHash(key), partitions());
}

size_t Ring::OwnedBy(const std::string& node) const {
  const uint32_t i = IndexOf(node);
  if (i == names_.size()) return 0;
  return static_cast<size_t>(std::count(owners_.begin(), owners_.end(), i));
}

std::vector<std::string> Ring::Walk(uint32_t partition, size_t limit) const {
  std::vector<std::string> out;
  if (partition >= owners_.size()) return out;
  limit = std::min(limit, names_.size());
  std::vector<bool> seen(names_.size(), false);
  const uint32_t q = partitions();
  for (uint32_t k = 0; k < q && out.size() < limit; ++k) {
    const uint32_t o = owners_[(partition + k) & (q - 1)];
    if (!seen[o]) {
      seen[o] = true;
      out.push_back(names_[o]);
    }
  }
  return out;
}

std::vector<std::string> Ring::PreferenceList(uint32_t partition) const {
  return Walk(partition, replicas_);
}

std::vector<std::string> Ring::ExtendedPreferenceList(uint32_t partition) const {
  return Walk(partition, names_.size());
}

// How far the leave heuristic looks for a node's own partitions. Distances
// past N still matter on small rings (two nodes and N = 3, say), where no
// spacing reaches N and interleaving owners beats leaving runs; a node
// ideally holds every nodes-th partition, so twice that is as far as it
// helps, and the cap bounds the work per partition.
uint32_t Ring::SpreadCap(size_t nodes) const {
  const uint64_t cap = std::max<uint64_t>(replicas_, 2 * static_cast<uint64_t>(nodes));
  return static_cast<uint32_t>(std::min<uint64_t>(cap, partitions()));
}

bool Ring::Join(const std::string& node) {
  if (empty() || !ValidName(node) || Contains(node) || names_.size() >= owners_.size()) {
    return false;
  }
  const auto pos = std::lower_bound(names_.begin(), names_.end(), node);
  const uint32_t self = static_cast<uint32_t>(pos - names_.begin());
  names_.insert(pos, node);
  for (uint32_t& o : owners_) o += (o >= self) ? 1 : 0;

  const uint32_t q = partitions();
  const uint32_t mask = q - 1;
  const size_t s = names_.size();
  // dist[p]: distance from p to the nearest partition the new node owns
  // (q while it owns none).
  std::vector<uint32_t> dist(q, q);
  // Which of the donor's partitions to take, best first: one no window of N
  // shares with the new node's others; then one whose window already holds
  // another of the donor's (taking it removes a repeat); then the farthest
  // from the new node's others, which spreads them evenly; then the lowest.
  // Every part only falls as the join proceeds, so a lazy greedy is exact:
  // pop the best, and if its score fell since it was pushed, push it back.
  const uint32_t reach = std::min<uint32_t>(replicas_ - 1, q / 2);
  auto score = [&](uint32_t donor, uint32_t p) {
    bool repeat = false;
    for (uint32_t k = 1; k <= reach && !repeat; ++k) {
      repeat = owners_[(p + k) & mask] == donor || owners_[(p - k) & mask] == donor;
    }
    return std::tuple(std::min(dist[p], replicas_), repeat, dist[p], ~p);
  };
  using Entry = std::pair<decltype(score(0, 0)), uint32_t>;
  std::vector<std::priority_queue<Entry>> best(s);
  std::vector<uint32_t> load(s, 0);
  for (uint32_t p = 0; p < q; ++p) {
    ++load[owners_[p]];
    best[owners_[p]].emplace(score(owners_[p], p), p);
  }

  for (;;) {
    // The most loaded node gives one partition; ties go to the first name.
    uint32_t donor = self == 0 ? 1 : 0;
    for (uint32_t i = 0; i < s; ++i) {
      if (i != self && load[i] > load[donor]) donor = i;
    }
    // Stop once the donor has at most one more than the new node: every
    // other node has at least as many as the new node, so max-min <= 1.
    if (load[donor] <= load[self] + 1) break;

    uint32_t take = q;
    while (take == q) {
      auto [was, p] = best[donor].top();
      best[donor].pop();
      const auto now = score(donor, p);
      if (now == was) {
        take = p;
      } else {
        best[donor].emplace(now, p);
      }
    }
    owners_[take] = self;
    --load[donor];
    ++load[self];
    // dist is 1-Lipschitz around the ring, so the update stops where the
    // old distance is already as small.
    dist[take] = 0;
    for (uint32_t k = 1; k <= q / 2 && dist[(take + k) & mask] > k; ++k) {
      dist[(take + k) & mask] = k;
    }
    for (uint32_t k = 1; k <= q / 2 && dist[(take - k) & mask] > k; ++k) {
      dist[(take - k) & mask] = k;
    }
  }
  ++version_;
  return true;
}

bool Ring::Leave(const std::string& node) {
  const uint32_t gone = IndexOf(node);
  if (gone == names_.size() || names_.size() == 1) return false;

  const uint32_t q = partitions();
  const size_t s = names_.size();
  const uint32_t cap = SpreadCap(s - 1);
  std::vector<uint32_t> load(s, 0);
  for (uint32_t o : owners_) ++load[o];
  // Distance from p to the nearest partition node i owns, capped.
  auto spacing = [&](uint32_t i, uint32_t p) {
    for (uint32_t k = 1; k < cap; ++k) {
      if (owners_[(p + k) & (q - 1)] == i || owners_[(p + q - k) & (q - 1)] == i) return k;
    }
    return cap;
  };

  for (uint32_t p = 0; p < q; ++p) {
    if (owners_[p] != gone) continue;
    uint32_t least = UINT32_MAX;
    for (uint32_t i = 0; i < s; ++i) {
      if (i != gone) least = std::min(least, load[i]);
    }
    // Among the least loaded, the one whose own partitions are farthest from
    // p; then the first name.
    uint32_t pick = 0;
    uint32_t pick_spacing = 0;
    for (uint32_t i = 0; i < s; ++i) {
      if (i == gone || load[i] != least) continue;
      const uint32_t d = spacing(i, p);
      if (d > pick_spacing) {
        pick = i;
        pick_spacing = d;
      }
    }
    owners_[p] = pick;
    ++load[pick];
  }

  names_.erase(names_.begin() + gone);
  for (uint32_t& o : owners_) o -= (o > gone) ? 1 : 0;
  ++version_;
  return true;
}

std::string Ring::Encode() const {
  msgpack::sbuffer buf(32 + owners_.size() * 2 + names_.size() * 16);
  Packer pk(buf);
  pk.pack_array(6);
  pk.pack_uint32(kRingFormat);
  pk.pack_uint64(version_);
  pk.pack_uint32(partitions());
  pk.pack_uint32(replicas_);
  pk.pack_array(static_cast<uint32_t>(names_.size()));
  for (const auto& n : names_) {
    pk.pack_str(static_cast<uint32_t>(n.size()));
    pk.pack_str_body(n.data(), static_cast<uint32_t>(n.size()));
  }
  pk.pack_array(static_cast<uint32_t>(owners_.size()));
  for (uint32_t o : owners_) pk.pack_uint32(o);
  return std::string(buf.data(), buf.size());
}

Result<Ring> Ring::Decode(std::string_view bytes) {
  auto bad = [](const char* why) {
    return Status::Corruption(std::string("undecodable ring: ") + why);
  };
  msgpack::object_handle h;
  if (!Unpack(bytes, &h)) return bad("not msgpack");
  const msgpack::object& o = h.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 6) return bad("not a 6-item array");
  const msgpack::object* f = o.via.array.ptr;
  uint64_t format = 0, version = 0, q = 0, n = 0;
  if (!ReadU64(f[0], &format) || format != kRingFormat) return bad("unknown format");
  if (!ReadU64(f[1], &version) || !ReadU64(f[2], &q) || !ReadU64(f[3], &n)) {
    return bad("bad header");
  }
  const msgpack::object& names = f[4];
  const msgpack::object& owners = f[5];
  if (names.type != msgpack::type::ARRAY || owners.type != msgpack::type::ARRAY) {
    return bad("names or owners not an array");
  }
  // The empty ring encodes as [1, 0, 0, 0, [], []].
  if (q == 0 && version == 0 && n == 0 && names.via.array.size == 0 && owners.via.array.size == 0) {
    return Ring();
  }
  if (q > kMaxPartitions || !std::has_single_bit(q)) return bad("Q not a power of two <= 65536");
  if (n == 0 || n > UINT32_MAX) return bad("N out of range");
  if (version == 0) return bad("version 0");
  if (owners.via.array.size != q) return bad("owner count is not Q");
  if (names.via.array.size == 0 || names.via.array.size > q) return bad("bad node count");

  Ring r;
  r.version_ = version;
  r.replicas_ = static_cast<uint32_t>(n);
  r.names_.reserve(names.via.array.size);
  for (uint32_t i = 0; i < names.via.array.size; ++i) {
    const msgpack::object& e = names.via.array.ptr[i];
    if (e.type != msgpack::type::STR) return bad("node name not a string");
    std::string name(e.via.str.ptr, e.via.str.size);
    if (!ValidName(name)) return bad("empty or oversized node name");
    // Sorted and unique keeps one encoding per ring, so == means the same ring.
    if (!r.names_.empty() && r.names_.back() >= name) return bad("node names not sorted");
    r.names_.push_back(std::move(name));
  }
  r.owners_.reserve(q);
  std::vector<bool> used(r.names_.size(), false);
  for (uint32_t p = 0; p < q; ++p) {
    uint64_t idx = 0;
    if (!ReadU64(owners.via.array.ptr[p], &idx) || idx >= r.names_.size()) {
      return bad("owner index out of range");
    }
    used[idx] = true;
    r.owners_.push_back(static_cast<uint32_t>(idx));
  }
  if (std::find(used.begin(), used.end(), false) != used.end()) {
    return bad("node owning no partition");
  }
  return r;
}

}  // namespace dynamo
