#include "handoff/hint_store.h"

#include <unistd.h>

#include <cerrno>
#include <set>

#include "dynamo/log.h"
#include "dynamo/msgpack_io.h"

namespace dynamo {
namespace {

constexpr uint32_t kMaxBodyBytes = 80u << 20;  // checked before anything is allocated
constexpr uint32_t kMinBodyBytes = 5;          // [op, "", b"", b""] is longer still
constexpr uint64_t kCompactSlack = 4u << 20;
constexpr size_t kCompactWriteChunk = 1u << 20;
constexpr uint64_t kOpAdd = 1;
constexpr uint64_t kOpRemove = 2;
constexpr unsigned char kBodyStart = 0x94;  // msgpack fixarray of 4
constexpr size_t kMaxBodyDepth = 2;
constexpr const char* kLegacyLog = "hints.log";  // the single file of older versions

// Appends one framed record, [crc32(body)][len(body)][body], to out.
void AppendFrame(uint64_t op, std::string_view target, std::string_view key, std::string_view set,
                 std::string* out) {
  msgpack::sbuffer body;
  mp::Packer pk(body);
  pk.pack_array(4);
  pk.pack_uint64(op);
  mp::PackStr(pk, target);
  mp::PackBin(pk, key);
  mp::PackBin(pk, set);
  durable::CrcLengthFraming::Append(std::string_view(body.data(), body.size()), out);
}

struct Record {
  uint64_t op = 0;
  std::string target;
  std::string key;
  std::string set;
};

bool ParseBody(std::string_view body, Record* r, std::string* why) {
  msgpack::object_handle h;
  if (!mp::Unpack(body, &h, kMaxBodyDepth, why)) return false;
  const msgpack::object& o = h.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 4) {
    *why = "body is not a 4-item array";
    return false;
  }
  const msgpack::object* a = o.via.array.ptr;
  if (!mp::ReadU64(a[0], &r->op) || (r->op != kOpAdd && r->op != kOpRemove)) {
    *why = "unknown op";
    return false;
  }
  if (a[1].type != msgpack::type::STR || !mp::ReadStr(a[1], &r->target) ||
      a[2].type != msgpack::type::BIN || !mp::ReadStr(a[2], &r->key) ||
      a[3].type != msgpack::type::BIN || !mp::ReadStr(a[3], &r->set)) {
    *why = "bad field types";
    return false;
  }
  if (r->target.empty()) {
    *why = "empty target";
    return false;
  }
  if (r->op == kOpRemove && !r->set.empty()) {
    *why = "a remove record with a set";
    return false;
  }
  if (r->op == kOpAdd && r->set.empty()) {
    *why = "an add record without a set";
    return false;
  }
  return true;
}

}  // namespace

HintStore::HintStore(Options options)
    : options_(std::move(options)),
      segments_(options_.dir),
      framing_(kMinBodyBytes, kMaxBodyBytes, kBodyStart) {}

HintStore::~HintStore() = default;

Result<std::unique_ptr<HintStore>> HintStore::Open(Options options) {
  if (options.dir.empty()) return Status::InvalidArgument("hint store: no directory given");
  if (Status s = durable::CreateDirs(options.dir); !s.ok()) {
    return Status::IOError("hint store: " + s.message());
  }
  std::unique_ptr<HintStore> store(new HintStore(std::move(options)));
  if (Status s = durable::DirLock::Acquire(store->options_.dir, "hint store", &store->lock_);
      !s.ok()) {
    return s;
  }
  if (Status s = store->Recover(); !s.ok()) return s;
  return Result<std::unique_ptr<HintStore>>(std::move(store));
}

Status HintStore::MigrateLegacyLog(const std::vector<uint64_t>& seqs) {
  const std::string legacy = options_.dir + "/" + kLegacyLog;
  // A leftover of an older version's rewrite that did not finish: the
  // single log is still whole.
  const std::string tmp = legacy + ".tmp";
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno("hint store: cannot remove " + tmp, errno);
  }
  if (::access(legacy.c_str(), F_OK) != 0) return Status::OK();
  if (!seqs.empty()) {
    return Status::Corruption("hint store " + options_.dir + " holds both " + kLegacyLog +
                              " and segments; move one of them away");
  }
  if (::rename(legacy.c_str(), segments_.PathOf(1).c_str()) != 0) {
    return Status::FromErrno("hint store: cannot rename " + legacy, errno);
  }
  return segments_.Sync();
}

Status HintStore::Recover() {
  std::vector<uint64_t> seqs;
  if (Status s = segments_.List(&seqs); !s.ok()) return s;
  if (Status s = MigrateLegacyLog(seqs); !s.ok()) return s;
  if (Status s = segments_.List(&seqs); !s.ok()) return s;
  if (seqs.empty()) {
    if (Status s = segments_.Create(1, &active_); !s.ok()) return s;
    active_seq_ = 1;
    return Status::OK();
  }
  for (uint64_t seq : seqs) {
    std::shared_ptr<durable::LogFile> file;
    uint64_t size = 0;
    if (Status s = segments_.Open(seq, &file); !s.ok()) return s;
    if (Status s = file->Size(&size); !s.ok()) return s;
    const bool newest = seq == seqs.back();
    durable::ReplayResult result;
    Status s = durable::Replay(
        file, size, framing_, newest ? durable::TailRule::kTornOnly : durable::TailRule::kNone,
        [&](const durable::Record& rec) {
          Status a =
              ApplyRecord(rec.raw.substr(durable::CrcLengthFraming::kPrefix), rec.raw.size());
          if (a.ok()) return a;
          return Status::Corruption(file->path() + ": bad record at offset " +
                                    std::to_string(rec.offset) + ": " + a.message());
        },
        &result);
    if (!s.ok()) return s;
    if (result.dropped > 0) {
      log::Warn("hint store " + file->path() + ": dropping " + std::to_string(result.dropped) +
                " bytes of a torn record at offset " + std::to_string(result.end) + " (" +
                result.why + ")");
    }
    log_size_ += result.end;
    if (newest) {
      active_ = file;
      active_seq_ = seq;
      active_size_ = result.end;
    } else {
      sealed_[seq] = result.end;
    }
  }
  return Status::OK();
}

Status HintStore::ApplyRecord(std::string_view body, uint64_t record_bytes) {
  Record r;
  std::string why;
  if (!ParseBody(body, &r, &why)) return Status::Corruption(why);
  if (r.op == kOpAdd) {
    if (Result<SiblingSet> set = SiblingSet::Decode(r.set); !set.ok()) return set.status();
    auto [it, is_new] = hints_[r.target].try_emplace(std::move(r.key));
    Entry& e = it->second;
    if (is_new) {
      ++pending_;
    } else {
      bytes_ -= e.encoded.size();
      live_record_bytes_ -= e.record_bytes;
    }
    e.encoded = std::move(r.set);
    e.seq = ++next_seq_;
    e.record_bytes = record_bytes;
    bytes_ += e.encoded.size();
    live_record_bytes_ += e.record_bytes;
    return Status::OK();
  }
  auto t = hints_.find(r.target);
  if (t != hints_.end()) {
    auto k = t->second.find(r.key);
    if (k != t->second.end()) EraseLocked(t->second, k);
    if (t->second.empty()) hints_.erase(t);
  }
  return Status::OK();
}

Status HintStore::StartSegmentLocked() {
  // The active segment was synced by the append that filled it.
  std::shared_ptr<durable::LogFile> next;
  if (Status s = segments_.Create(active_seq_ + 1, &next); !s.ok()) return s;
  sealed_[active_seq_] = active_size_;
  active_ = std::move(next);
  ++active_seq_;
  active_size_ = 0;
  return Status::OK();
}

Status HintStore::AppendLocked(const std::string& records) {
  if (active_size_ > 0 && active_size_ + records.size() > options_.segment_bytes) {
    if (Status s = StartSegmentLocked(); !s.ok()) return s;
  }
  if (Status s = active_->WriteAt(active_size_, records); !s.ok()) {
    // Cut a partial record off, so the next append does not land after it.
    if (Status t = active_->Truncate(active_size_); !t.ok()) {
      broken_ = Status::IOError("hint store: cannot cut back a failed write: " + t.message());
    }
    return s;
  }
  if (Status s = active_->Sync(); !s.ok()) {
    // What reached the disk is unknown, and a later sync would not say: stop
    // taking hints rather than claim durability.
    std::string msg = "hint store: " + s.message();
    if (Status t = active_->Truncate(active_size_); !t.ok()) {
      msg += " (and the log could not be cut back: " + t.message() + ")";
    }
    broken_ = Status::IOError(msg);
    return broken_;
  }
  active_size_ += records.size();
  log_size_ += records.size();
  return Status::OK();
}

void HintStore::EraseLocked(KeyMap& keys, KeyMap::iterator entry) {
  bytes_ -= entry->second.encoded.size();
  live_record_bytes_ -= entry->second.record_bytes;
  --pending_;
  keys.erase(entry);
}

Status HintStore::Add(const std::string& target, std::string_view key, const SiblingSet& set) {
  if (target.empty()) return Status::InvalidArgument("hint store: a hint needs a target");
  std::lock_guard<std::mutex> l(mu_);
  if (!broken_.ok()) return broken_;

  Entry* held = nullptr;
  if (auto t = hints_.find(target); t != hints_.end()) {
    if (auto k = t->second.find(key); k != t->second.end()) held = &k->second;
  }
  SiblingSet merged;
  if (held != nullptr) {
    Result<SiblingSet> cur = SiblingSet::Decode(held->encoded);
    if (!cur.ok()) {
      return Status::Internal("hint store " + options_.dir +
                              ": held hint does not decode: " + cur.status().message());
    }
    merged = std::move(cur).value();
  }
  if (!merged.Merge(set)) return Status::OK();
  std::string encoded = merged.Encode();

  if (held == nullptr) {
    if (pending_ >= options_.max_keys) {
      ++dropped_;
      return Status::Unavailable("hint store full: " + std::to_string(pending_) +
                                 " hints held (max_keys " + std::to_string(options_.max_keys) +
                                 ") in " + options_.dir);
    }
    if (bytes_ + encoded.size() > options_.max_bytes) {
      ++dropped_;
      return Status::Unavailable("hint store full: " + std::to_string(bytes_) + " bytes held + " +
                                 std::to_string(encoded.size()) + " would pass max_bytes " +
                                 std::to_string(options_.max_bytes) + " in " + options_.dir);
    }
  }
  std::string record;
  AppendFrame(kOpAdd, target, key, encoded, &record);
  if (record.size() - durable::CrcLengthFraming::kPrefix > kMaxBodyBytes) {
    return Status::InvalidArgument("hint store: a hint of " + std::to_string(record.size()) +
                                   " bytes is too large");
  }
  if (Status s = AppendLocked(record); !s.ok()) return s;

  if (held == nullptr) {
    held = &hints_[target].try_emplace(std::string(key)).first->second;
    ++pending_;
  } else {
    bytes_ -= held->encoded.size();
    live_record_bytes_ -= held->record_bytes;
  }
  held->encoded = std::move(encoded);
  held->seq = ++next_seq_;
  held->record_bytes = record.size();
  bytes_ += held->encoded.size();
  live_record_bytes_ += held->record_bytes;
  MaybeCompactLocked();
  return Status::OK();
}

std::vector<HintStore::Hint> HintStore::Peek(const std::string& target, size_t max_keys,
                                             size_t max_bytes) const {
  std::vector<Hint> out;
  std::lock_guard<std::mutex> l(mu_);
  auto t = hints_.find(target);
  if (t == hints_.end()) return out;
  size_t total = 0;
  for (const auto& [key, e] : t->second) {
    if (out.size() >= max_keys) break;
    if (!out.empty() && total + e.encoded.size() > max_bytes) break;
    total += e.encoded.size();
    out.push_back(Hint{key, e.encoded, e.seq});
  }
  return out;
}

Result<size_t> HintStore::Remove(const std::string& target,
                                 const std::vector<std::pair<std::string, uint64_t>>& delivered) {
  std::lock_guard<std::mutex> l(mu_);
  if (!broken_.ok()) return broken_;
  auto t = hints_.find(target);
  if (t == hints_.end()) return size_t{0};
  std::vector<KeyMap::iterator> doomed;
  std::set<std::string_view> seen;
  std::string records;
  for (const auto& [key, seq] : delivered) {
    auto k = t->second.find(key);
    if (k == t->second.end() || k->second.seq != seq || !seen.insert(k->first).second) continue;
    AppendFrame(kOpRemove, target, key, {}, &records);
    doomed.push_back(k);
  }
  if (doomed.empty()) return size_t{0};
  if (Status s = AppendLocked(records); !s.ok()) return s;
  for (auto k : doomed) EraseLocked(t->second, k);
  if (t->second.empty()) hints_.erase(t);
  MaybeCompactLocked();
  return doomed.size();
}

Result<size_t> HintStore::DropTarget(const std::string& target) {
  std::lock_guard<std::mutex> l(mu_);
  if (!broken_.ok()) return broken_;
  auto t = hints_.find(target);
  if (t == hints_.end()) return size_t{0};
  std::string records;
  for (const auto& [key, e] : t->second) AppendFrame(kOpRemove, target, key, {}, &records);
  if (Status s = AppendLocked(records); !s.ok()) return s;
  const size_t n = t->second.size();
  while (!t->second.empty()) EraseLocked(t->second, t->second.begin());
  hints_.erase(t);
  MaybeCompactLocked();
  return n;
}

std::map<std::string, size_t> HintStore::PendingByTarget() const {
  std::lock_guard<std::mutex> l(mu_);
  std::map<std::string, size_t> out;
  for (const auto& [target, keys] : hints_) {
    if (!keys.empty()) out.emplace(target, keys.size());
  }
  return out;
}

size_t HintStore::pending() const {
  std::lock_guard<std::mutex> l(mu_);
  return pending_;
}

uint64_t HintStore::dropped() const {
  std::lock_guard<std::mutex> l(mu_);
  return dropped_;
}

uint64_t HintStore::bytes() const {
  std::lock_guard<std::mutex> l(mu_);
  return bytes_;
}

uint64_t HintStore::log_bytes() const {
  std::lock_guard<std::mutex> l(mu_);
  return log_size_;
}

uint64_t HintStore::compactions() const {
  std::lock_guard<std::mutex> l(mu_);
  return compactions_;
}

SiblingSet HintStore::ForKey(std::string_view key) const {
  SiblingSet out;
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [target, keys] : hints_) {
    auto k = keys.find(key);
    if (k == keys.end()) continue;
    if (Result<SiblingSet> set = SiblingSet::Decode(k->second.encoded); set.ok()) out.Merge(*set);
  }
  return out;
}

size_t HintStore::segments() const {
  std::lock_guard<std::mutex> l(mu_);
  return sealed_.size() + 1;
}

void HintStore::MaybeCompactLocked() {
  if (!broken_.ok()) return;
  if (log_size_ <= 2 * live_record_bytes_ + kCompactSlack) return;
  if (log_size_ < compact_retry_at_) return;
  if (Status s = CompactLocked(); !s.ok()) {
    log::Warn("hint store: rewriting the log in " + options_.dir + " failed: " + s.message());
    compact_retry_at_ = 2 * log_size_;
  }
}

// Writes every live hint into a new segment, syncs it, and only then makes
// it the active one and removes the older segments. A crash before the
// removals leaves older segments that replay before the new one, which
// holds the whole live state: harmless. A failure before the switch removes
// the new segment, since replayed last it would undo later appends.
Status HintStore::CompactLocked() {
  const uint64_t seq = active_seq_ + 1;
  std::shared_ptr<durable::LogFile> next;
  if (Status s = segments_.Create(seq, &next); !s.ok()) return s;
  std::string buf;
  uint64_t off = 0;
  Status s;
  for (const auto& [target, keys] : hints_) {
    for (const auto& [key, e] : keys) {
      AppendFrame(kOpAdd, target, key, e.encoded, &buf);
      if (buf.size() < kCompactWriteChunk) continue;
      s = next->WriteAt(off, buf);
      if (!s.ok()) break;
      off += buf.size();
      buf.clear();
    }
    if (!s.ok()) break;
  }
  if (s.ok()) s = next->WriteAt(off, buf);
  off += buf.size();
  if (s.ok()) s = next->Sync();
  if (!s.ok()) {
    if (Status u = segments_.Unlink(seq); !u.ok()) {
      broken_ = Status::IOError("hint store: a failed rewrite left " + segments_.PathOf(seq) +
                                " behind: " + u.message());
    }
    return s;
  }
  sealed_[active_seq_] = active_size_;
  active_ = std::move(next);
  active_seq_ = seq;
  active_size_ = off;
  log_size_ = off;
  ++compactions_;
  for (auto it = sealed_.begin(); it != sealed_.end();) {
    if (Status u = segments_.Unlink(it->first); !u.ok()) {
      log::Warn("hint store: " + u.message() + "; it is removed at the next rewrite");
      log_size_ += it->second;
      ++it;
      continue;
    }
    it = sealed_.erase(it);
  }
  if (Status d = segments_.Sync(); !d.ok()) {
    log::Warn("hint store: the removal of old segments may not be durable: " + d.message());
  }
  return Status::OK();
}

}  // namespace dynamo
