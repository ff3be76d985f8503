// FileEngine: get, put, remove and scan.
#include <sys/uio.h>

#include <cstring>

#include "file_engine.h"

namespace dynamo::file {
namespace {

// Keys collected per index visit during a scan: bounds how long the index
// lock is held and how much a scan buffers.
constexpr size_t kScanBatch = 256;

// The most bytes of a batch written at once: write_mu_ is held for one run,
// so this bounds how long a batch keeps single puts waiting.
constexpr uint64_t kRunBytes = 256 * 1024;

// A put's key and value within the record format's bounds.
Status CheckSizes(std::string_view key, std::string_view value) {
  if (key.size() <= kMaxKeyBytes && value.size() <= kMaxValueBytes) return Status::OK();
  return Status::InvalidArgument("file engine: key or value too large (limits " +
                                 std::to_string(kMaxKeyBytes) + " and " +
                                 std::to_string(kMaxValueBytes) + " bytes)");
}

struct iovec Iov(const void* p, size_t n) {
  return {const_cast<void*>(p), n};
}

}  // namespace

std::shared_ptr<durable::LogFile> FileEngine::FileOf(uint64_t seq) const {
  auto it = files_.find(seq);
  return it == files_.end() ? nullptr : it->second;
}

Status FileEngine::ReadRecord(const std::shared_ptr<LogFile>& file, const Location& loc,
                              std::string_view key, std::string* record, std::string_view* value,
                              bool no_wait) const {
  if (file == nullptr) {
    return Status::Corruption("file engine: index points at missing segment " +
                              durable::SegmentDir::FileName(loc.seg));
  }
  record->resize(static_cast<size_t>(loc.size));
  Status s = no_wait ? file->TryReadAt(loc.offset, record->size(), record->data())
                     : file->ReadAt(loc.offset, record->size(), record->data());
  if (!s.ok()) return s;
  RecordHeader h;
  std::string why;
  bool good = loc.size >= kHeaderSize && DecodeHeader(record->data(), &h, &why) &&
              h.record_size() == loc.size && h.kind == RecordKind::kPut &&
              RecordCrcMatches(h, record->data()) &&
              std::string_view(record->data() + kHeaderSize, h.key_len) == key;
  if (!good) {
    return Status::Corruption("file engine: the record at " + file->path() + " offset " +
                              std::to_string(loc.offset) + " fails its checksum");
  }
  *value = std::string_view(record->data() + kHeaderSize + h.key_len, h.value_len);
  return Status::OK();
}

Status FileEngine::Get(std::string_view key, std::string* record, std::string_view* value,
                       bool no_wait) {
  if (cache_.Get(key, record)) {
    *value = *record;
    return Status::OK();
  }
  Location loc;
  std::shared_ptr<LogFile> file;
  {
    std::shared_lock<std::shared_mutex> l(index_mu_);
    const LogIndex::Entry* e = index_.Find(key);
    if (e == nullptr) return Status::NotFound("no such key");
    loc = e->loc;
    file = FileOf(loc.seg);
  }
  // Read without the lock; `file` keeps the descriptor open even if
  // compaction unlinks the segment meanwhile.
  Status s = ReadRecord(file, loc, key, record, value, no_wait);
  if (s.ok() && cache_.enabled()) {
    // Kept only if the key still is what was read: a put or remove since
    // changed the cache itself (compaction moves a record, same value).
    std::shared_lock<std::shared_mutex> l(index_mu_);
    const LogIndex::Entry* e = index_.Find(key);
    if (e != nullptr && e->loc == loc) cache_.Put(key, *value);
  }
  return s;
}

Status FileEngine::Put(std::string_view key, uint64_t key_hash, std::string_view value) {
  if (Status s = CheckSizes(key, value); !s.ok()) return s;
  char header[kHeaderSize];
  EncodeHeader(RecordKind::kPut, key, key_hash, value, header);
  struct iovec iov[3] = {Iov(header, kHeaderSize), Iov(key.data(), key.size()),
                         Iov(value.data(), value.size())};
  uint64_t size = kHeaderSize + key.size() + value.size();
  uint64_t lsn;
  bool hint;
  {
    std::lock_guard<std::mutex> w(write_mu_);
    Location loc;
    Status s = AppendLocked(iov, 3, size, &loc);
    if (!s.ok()) return s;
    lsn = appended_lsn_;
    std::unique_lock<std::shared_mutex> l(index_mu_);
    index_.Appended(loc);
    index_.ApplyPut(key, key_hash, loc);
    cache_.Put(key, value);
    hint = index_.TakeCompactionHint();
  }
  if (hint) WakeCompactor();
  if (options_.sync == SyncPolicy::kAlways) return WaitDurable(lsn);
  return Status::OK();
}

Status FileEngine::AppendRunLocked(const BatchItem* items, size_t count, size_t* taken) {
  *taken = 0;
  Status s = CheckWritable();
  if (!s.ok()) return s;
  auto size_of = [items](size_t i) {
    return kHeaderSize + items[i].key.size() + items[i].value.size();
  };
  if (active_size_ > 0 && active_size_ + size_of(0) > options_.segment_bytes) {
    s = RollLocked();
    if (!s.ok()) return s;
  }
  // The first item always (a record larger than a segment gets one of its
  // own, as with Put), then as many as fit in the segment and the run.
  size_t n = 0;
  uint64_t bytes = 0;
  do {
    bytes += size_of(n++);
  } while (n < count && bytes + size_of(n) <= kRunBytes &&
           active_size_ + bytes + size_of(n) <= options_.segment_bytes);
  std::string buf(static_cast<size_t>(bytes), '\0');
  char* p = buf.data();
  for (size_t i = 0; i < n; ++i) {
    const BatchItem& it = items[i];
    EncodeHeader(RecordKind::kPut, it.key, it.key_hash, it.value, p);
    p += kHeaderSize;
    std::memcpy(p, it.key.data(), it.key.size());
    p += it.key.size();
    if (!it.value.empty()) std::memcpy(p, it.value.data(), it.value.size());
    p += it.value.size();
  }
  s = active_->WriteAt(active_size_, buf);
  if (!s.ok()) {
    if (!active_->Truncate(active_size_).ok()) failed_ = true;
    return s;
  }
  uint64_t offset = active_size_;
  active_size_ += bytes;
  appended_lsn_ += bytes;
  std::unique_lock<std::shared_mutex> l(index_mu_);
  for (size_t i = 0; i < n; ++i) {
    const Location loc{active_seq_, offset, size_of(i)};
    offset += loc.size;
    index_.Appended(loc);
    index_.ApplyPut(items[i].key, items[i].key_hash, loc);
    cache_.Erase(items[i].key);
  }
  *taken = n;
  return Status::OK();
}

Status FileEngine::PutBatch(const BatchItem* items, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (Status s = CheckSizes(items[i].key, items[i].value); !s.ok()) return s;
  }
  uint64_t lsn = 0;
  bool hint = false;
  for (size_t done = 0; done < count;) {
    std::lock_guard<std::mutex> w(write_mu_);  // one run at a time: single puts interleave
    size_t taken = 0;
    Status s = AppendRunLocked(items + done, count - done, &taken);
    if (!s.ok()) {
      if (hint) WakeCompactor();
      return s;
    }
    done += taken;
    lsn = appended_lsn_;
    std::unique_lock<std::shared_mutex> l(index_mu_);
    hint = index_.TakeCompactionHint() || hint;
  }
  if (hint) WakeCompactor();
  if (count > 0 && options_.sync == SyncPolicy::kAlways) return WaitDurable(lsn);
  return Status::OK();
}

Status FileEngine::Remove(std::string_view key) {
  uint64_t lsn;
  bool hint;
  {
    std::lock_guard<std::mutex> w(write_mu_);
    const LogIndex::Entry* e = index_.Find(key);  // write_mu_ excludes mutators
    if (e == nullptr) return Status::NotFound("no such key");
    uint64_t key_hash = e->key_hash;
    char header[kHeaderSize];
    EncodeHeader(RecordKind::kRemove, key, key_hash, std::string_view(), header);
    struct iovec iov[2] = {Iov(header, kHeaderSize), Iov(key.data(), key.size())};
    Location loc;
    Status s = AppendLocked(iov, 2, kHeaderSize + key.size(), &loc);
    if (!s.ok()) return s;
    lsn = appended_lsn_;
    std::unique_lock<std::shared_mutex> l(index_mu_);
    index_.Appended(loc);
    index_.ApplyRemove(key, key_hash, loc);
    cache_.Erase(key);
    hint = index_.TakeCompactionHint();
  }
  if (hint) WakeCompactor();
  if (options_.sync == SyncPolicy::kAlways) return WaitDurable(lsn);
  return Status::OK();
}

Status FileEngine::Scan(uint64_t hash_lo, uint64_t hash_hi, const ScanFn& fn) {
  if (hash_lo > hash_hi) return Status::OK();
  struct Item {
    LogIndex::ScanItem where;
    std::shared_ptr<LogFile> file;
  };
  std::vector<LogIndex::ScanItem> found;
  std::vector<Item> batch;
  std::string record;
  bool resume = false;
  uint64_t after_hash = 0;
  std::string after_key;
  for (;;) {
    found.clear();
    batch.clear();
    {
      std::shared_lock<std::shared_mutex> l(index_mu_);
      index_.CollectRange(hash_lo, hash_hi, resume, after_hash, after_key, kScanBatch, &found);
      for (auto& f : found) {
        std::shared_ptr<LogFile> file = FileOf(f.loc.seg);
        batch.push_back({std::move(f), std::move(file)});
      }
    }
    // Values are read and handed out with no lock held: the callback may be
    // slow, and writers must not wait for it.
    for (const Item& item : batch) {
      std::string_view value;
      Status s = ReadRecord(item.file, item.where.loc, item.where.key, &record, &value);
      if (!s.ok()) return s;
      if (!fn(item.where.key, item.where.key_hash, value)) return Status::OK();
    }
    if (batch.size() < kScanBatch) return Status::OK();
    resume = true;
    after_hash = batch.back().where.key_hash;
    after_key = batch.back().where.key;
  }
}

}  // namespace dynamo::file
