#include "handoff/hint_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>

#include "dynamo/msgpack_io.h"
#include "dynamo/log.h"

namespace dynamo {
namespace {

constexpr size_t kHeaderBytes = 8;             // u32 crc, u32 body length
constexpr uint32_t kMaxBodyBytes = 80u << 20;  // checked before anything is allocated
constexpr uint32_t kMinBodyBytes = 5;          // [op, "", b"", b""] is longer still
constexpr uint64_t kCompactSlack = 4u << 20;
constexpr size_t kCompactWriteChunk = 1u << 20;
constexpr uint64_t kOpAdd = 1;
constexpr uint64_t kOpRemove = 2;
constexpr unsigned char kBodyStart = 0x94;  // msgpack fixarray of 4
constexpr size_t kMaxBodyDepth = 2;

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}

uint32_t Crc(const char* p, size_t n) {
  // crc32_z returns 0 (not the initial value) for a NULL buffer; bodies are
  // never empty, but keep the two cases apart anyway.
  if (n == 0) return 0;
  return static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef*>(p), n));
}

// One framed record: [crc32(body)][len(body)][body].
std::string Frame(uint64_t op, std::string_view target, std::string_view key,
                  std::string_view set) {
  msgpack::sbuffer body;
  mp::Packer pk(body);
  pk.pack_array(4);
  pk.pack_uint64(op);
  mp::PackStr(pk, target);
  mp::PackBin(pk, key);
  mp::PackBin(pk, set);
  std::string out(kHeaderBytes + body.size(), '\0');
  PutU32(out.data(), Crc(body.data(), body.size()));
  PutU32(out.data() + 4, static_cast<uint32_t>(body.size()));
  std::memcpy(out.data() + kHeaderBytes, body.data(), body.size());
  return out;
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

// The intact (length in bounds, crc matching) record framed at off in
// data[0, size); false with *why otherwise.
bool FrameAt(const char* data, uint64_t size, uint64_t off, std::string_view* body,
             std::string* why) {
  if (size - off < kHeaderBytes) {
    *why = "incomplete header";
    return false;
  }
  const uint32_t len = GetU32(data + off + 4);
  if (len < kMinBodyBytes || len > kMaxBodyBytes) {
    *why = "bad record length " + std::to_string(len);
    return false;
  }
  if (len > size - off - kHeaderBytes) {
    *why = "record of " + std::to_string(len) + " bytes runs past the end of the file";
    return false;
  }
  const char* b = data + off + kHeaderBytes;
  if (Crc(b, len) != GetU32(data + off)) {
    *why = "checksum mismatch";
    return false;
  }
  *body = std::string_view(b, len);
  return true;
}

// True when an intact, well-formed record starts anywhere after `from`: then
// the bad bytes at `from` are not the torn end of the last append.
bool IntactRecordAfter(const char* data, uint64_t size, uint64_t from) {
  for (uint64_t y = from + 1; y + kHeaderBytes < size; ++y) {
    if (static_cast<unsigned char>(data[y + kHeaderBytes]) != kBodyStart) continue;
    std::string_view body;
    std::string why;
    if (!FrameAt(data, size, y, &body, &why)) continue;
    Record r;
    if (ParseBody(body, &r, &why)) return true;
  }
  return false;
}

// 0, or the errno of the failed write.
int WriteAll(int fd, const char* p, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = ::pwrite(fd, p + done, n - done, static_cast<off_t>(off + done));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += static_cast<size_t>(w);
  }
  return 0;
}

// 0, or the errno of the failure.
int FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

class Mapping {
 public:
  Mapping(void* p, size_t n) : p_(p), n_(n) {}
  ~Mapping() { ::munmap(p_, n_); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  const char* data() const { return static_cast<const char*>(p_); }

 private:
  void* p_;
  size_t n_;
};

}  // namespace

HintStore::HintStore(Options options, int lock_fd, int log_fd)
    : options_(std::move(options)),
      log_path_((std::filesystem::path(options_.dir) / "hints.log").string()),
      tmp_path_((std::filesystem::path(options_.dir) / "hints.log.tmp").string()),
      lock_fd_(lock_fd),
      log_fd_(log_fd) {}

HintStore::~HintStore() {
  if (log_fd_ >= 0) ::close(log_fd_);
  ::close(lock_fd_);  // releases the flock
}

Result<std::unique_ptr<HintStore>> HintStore::Open(Options options) {
  if (options.dir.empty()) return Status::InvalidArgument("hint store: no directory given");
  const std::filesystem::path dir(options.dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("hint store " + options.dir + ": cannot create: " + ec.message());

  const std::string lock_path = (dir / "LOCK").string();
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return Status::IOError(lock_path + ": cannot open: " + ErrnoText(errno));
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(lock_fd);
    if (err == EWOULDBLOCK) {
      return Status::IOError("hint store " + options.dir + " is already open (" + lock_path +
                             " is locked)");
    }
    return Status::IOError(lock_path + ": cannot lock: " + ErrnoText(err));
  }

  // A leftover of a rewrite that did not finish: hints.log is still whole.
  const std::string tmp_path = (dir / "hints.log.tmp").string();
  if (::unlink(tmp_path.c_str()) != 0 && errno != ENOENT) {
    int err = errno;
    ::close(lock_fd);
    return Status::IOError(tmp_path + ": cannot remove: " + ErrnoText(err));
  }

  const std::string log_path = (dir / "hints.log").string();
  struct stat st;
  const bool created = ::stat(log_path.c_str(), &st) != 0;
  int log_fd = ::open(log_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    int err = errno;
    ::close(lock_fd);
    return Status::IOError(log_path + ": cannot open: " + ErrnoText(err));
  }
  // From here the store owns (and closes) both descriptors.
  std::unique_ptr<HintStore> store(new HintStore(std::move(options), lock_fd, log_fd));
  if (created) {
    if (int err = FsyncDir(dir.string()); err != 0) {
      return Status::IOError("hint store " + dir.string() + ": cannot sync: " + ErrnoText(err));
    }
  }
  if (Status s = store->Replay(); !s.ok()) return s;
  return Result<std::unique_ptr<HintStore>>(std::move(store));
}

Status HintStore::Replay() {
  struct stat st;
  if (::fstat(log_fd_, &st) != 0) return Status::IOError(log_path_ + ": " + ErrnoText(errno));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size == 0) return Status::OK();
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, log_fd_, 0);
  if (p == MAP_FAILED) return Status::IOError(log_path_ + ": cannot map: " + ErrnoText(errno));
  Mapping map(p, size);
  const char* data = map.data();

  uint64_t off = 0;
  while (off < size) {
    std::string_view body;
    std::string why;
    if (!FrameAt(data, size, off, &body, &why)) {
      if (IntactRecordAfter(data, size, off)) {
        return Status::Corruption(log_path_ + ": bad record at offset " + std::to_string(off) +
                                  ": " + why);
      }
      // Nothing intact follows: the torn end of the last append.
      log::Warn("hint store " + log_path_ + ": dropping " + std::to_string(size - off) +
                " bytes of a torn record at offset " + std::to_string(off) + " (" + why + ")");
      if (::ftruncate(log_fd_, static_cast<off_t>(off)) != 0 || ::fdatasync(log_fd_) != 0) {
        return Status::IOError(log_path_ + ": cannot truncate the torn record at offset " +
                               std::to_string(off) + ": " + ErrnoText(errno));
      }
      break;
    }
    Record r;
    if (!ParseBody(body, &r, &why)) {
      return Status::Corruption(log_path_ + ": bad record at offset " + std::to_string(off) + ": " +
                                why);
    }
    const uint64_t record_bytes = kHeaderBytes + body.size();
    if (r.op == kOpAdd) {
      if (Result<SiblingSet> set = SiblingSet::Decode(r.set); !set.ok()) {
        return Status::Corruption(log_path_ + ": bad record at offset " + std::to_string(off) +
                                  ": " + set.status().message());
      }
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
    } else {
      auto t = hints_.find(r.target);
      if (t != hints_.end()) {
        auto k = t->second.find(r.key);
        if (k != t->second.end()) EraseLocked(t->second, k);
        if (t->second.empty()) hints_.erase(t);
      }
    }
    off += record_bytes;
  }
  log_size_ = off;
  return Status::OK();
}

Status HintStore::CheckUsableLocked() const { return broken_; }

Status HintStore::AppendLocked(const std::string& records) {
  if (int err = WriteAll(log_fd_, records.data(), records.size(), log_size_); err != 0) {
    // Cut a partial record off, so the next append does not land after it.
    if (::ftruncate(log_fd_, static_cast<off_t>(log_size_)) != 0) {
      broken_ =
          Status::IOError(log_path_ + ": cannot cut back a failed write: " + ErrnoText(errno));
    }
    return Status::IOError(log_path_ + ": write failed: " + ErrnoText(err));
  }
  if (::fdatasync(log_fd_) != 0) {
    // What reached the disk is unknown, and a later sync would not say: stop
    // taking hints rather than claim durability.
    std::string msg = log_path_ + ": fdatasync failed: " + ErrnoText(errno);
    if (::ftruncate(log_fd_, static_cast<off_t>(log_size_)) != 0) {
      msg += " (and the log could not be cut back: " + ErrnoText(errno) + ")";
    }
    broken_ = Status::IOError(msg);
    return broken_;
  }
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
  if (Status s = CheckUsableLocked(); !s.ok()) return s;

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
  std::string record = Frame(kOpAdd, target, key, encoded);
  if (record.size() - kHeaderBytes > kMaxBodyBytes) {
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
  if (Status s = CheckUsableLocked(); !s.ok()) return s;
  auto t = hints_.find(target);
  if (t == hints_.end()) return size_t{0};
  std::vector<KeyMap::iterator> doomed;
  std::set<std::string_view> seen;
  std::string records;
  for (const auto& [key, seq] : delivered) {
    auto k = t->second.find(key);
    if (k == t->second.end() || k->second.seq != seq || !seen.insert(k->first).second) continue;
    records += Frame(kOpRemove, target, key, {});
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
  if (Status s = CheckUsableLocked(); !s.ok()) return s;
  auto t = hints_.find(target);
  if (t == hints_.end()) return size_t{0};
  std::string records;
  for (const auto& [key, e] : t->second) records += Frame(kOpRemove, target, key, {});
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

void HintStore::MaybeCompactLocked() {
  if (!broken_.ok()) return;
  if (log_size_ <= 2 * live_record_bytes_ + kCompactSlack) return;
  if (log_size_ < compact_retry_at_) return;
  if (Status s = CompactLocked(); !s.ok()) {
    log::Warn("hint store: rewriting " + log_path_ + " failed: " + s.message());
    compact_retry_at_ = 2 * log_size_;
  }
}

Status HintStore::CompactLocked() {
  int fd = ::open(tmp_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(tmp_path_ + ": cannot create: " + ErrnoText(errno));
  auto fail = [&](const std::string& what, int err) {
    ::close(fd);
    ::unlink(tmp_path_.c_str());
    return Status::IOError(tmp_path_ + ": " + what + ": " + ErrnoText(err));
  };
  std::string buf;
  uint64_t off = 0;
  for (const auto& [target, keys] : hints_) {
    for (const auto& [key, e] : keys) {
      buf += Frame(kOpAdd, target, key, e.encoded);
      if (buf.size() >= kCompactWriteChunk) {
        if (int err = WriteAll(fd, buf.data(), buf.size(), off); err != 0) {
          return fail("write failed", err);
        }
        off += buf.size();
        buf.clear();
      }
    }
  }
  if (int err = WriteAll(fd, buf.data(), buf.size(), off); err != 0)
    return fail("write failed", err);
  off += buf.size();
  if (::fsync(fd) != 0) return fail("fsync failed", errno);
  if (::rename(tmp_path_.c_str(), log_path_.c_str()) != 0) {
    return fail("cannot rename over " + log_path_, errno);
  }
  // The rewritten file is the log now; the old one is gone.
  ::close(log_fd_);
  log_fd_ = fd;
  log_size_ = off;
  ++compactions_;
  if (int err = FsyncDir(options_.dir); err != 0) {
    // Until the rename is durable, a crash could bring the old log back
    // without what is appended to the new one: take no more changes.
    broken_ =
        Status::IOError("hint store " + options_.dir +
                        ": cannot sync the directory after rewriting hints.log: " + ErrnoText(err));
    return broken_;
  }
  return Status::OK();
}

}  // namespace dynamo
