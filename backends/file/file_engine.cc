// FileEngine: opening (lock, replay, recovery), appending, group commit,
// closing and statistics. Reads and writes of keys are in file_engine_ops.cc,
// compaction in compaction.cc.
#include "file_engine.h"

#include <chrono>
#include <cstdio>

namespace dynamo::file {

Status FileEngine::Open(const Options& options, std::unique_ptr<FileEngine>* out) {
  Status s = durable::CreateDirs(options.dir);
  if (!s.ok()) return s;
  std::unique_ptr<FileEngine> engine(new FileEngine(options));
  s = durable::DirLock::Acquire(options.dir, "file engine", &engine->lock_);
  if (!s.ok()) return s;
  s = engine->Recover();
  if (!s.ok()) return s;
  if (options.sync == SyncPolicy::kInterval) {
    engine->syncer_ = std::thread([e = engine.get()] { e->SyncerLoop(); });
  }
  if (options.compaction) {
    engine->compactor_ = std::thread([e = engine.get()] { e->CompactorLoop(); });
  }
  *out = std::move(engine);
  return Status::OK();
}

FileEngine::~FileEngine() {
  Status s = Close();
  if (!s.ok()) std::fprintf(stderr, "file engine: close: %s\n", s.message().c_str());
}

Status FileEngine::Recover() {
  std::vector<uint64_t> seqs;
  Status s = segments_.List(&seqs);
  if (!s.ok()) return s;
  if (seqs.empty()) {
    std::shared_ptr<LogFile> first;
    s = segments_.Create(1, &first);
    if (!s.ok()) return s;
    seqs.push_back(1);
  }
  // Every segment is known before replay starts, so LogIndex can tell
  // whether a tombstone still guards against an older PUT.
  for (uint64_t seq : seqs) {
    std::shared_ptr<LogFile> file;
    s = segments_.Open(seq, &file);
    if (!s.ok()) return s;
    uint64_t size = 0;
    s = file->Size(&size);
    if (!s.ok()) return s;
    files_[seq] = file;
    index_.AddSegment(seq, size);
  }
  index_.SetActive(seqs.back());
  for (uint64_t seq : seqs) {
    s = ReplaySegment(seq, seq == seqs.back());
    if (!s.ok()) return s;
  }
  index_.TakeCompactionHint();
  active_seq_ = seqs.back();
  active_ = files_[active_seq_];
  active_size_ = index_.segments().at(active_seq_).bytes;
  // A previous process may have died with acknowledged but unsynced records
  // in the page cache: make the state we serve from durable first.
  return active_->Sync();
}

Status FileEngine::ReplaySegment(uint64_t seq, bool newest) {
  const std::shared_ptr<LogFile>& file = files_[seq];
  const uint64_t size = index_.segments().at(seq).bytes;
  // Decision: a bad record in a sealed segment is not a crash artefact.
  // Segments are fdatasynced before the next one is created, so only media
  // corruption or outside tampering explain it. Truncating would silently
  // drop (or, for REMOVE records, resurrect) data that later segments depend
  // on, so the engine refuses to open and lets the operator decide (move the
  // file away and let anti-entropy refill this replica). The newest segment
  // may end in records a crash cut short, or, under sync=interval, in
  // unsynced pages that reached the disk out of order: everything from its
  // first bad record on is dropped, and what precedes is served.
  durable::ReplayResult result;
  Status s = durable::Replay(
      file, size, framing_, newest ? durable::TailRule::kPointInTime : durable::TailRule::kNone,
      [&](const durable::Record& rec) {
        RecordView v = ViewRecord(rec.raw);
        Location loc{seq, rec.offset, rec.raw.size()};
        if (v.header.kind == RecordKind::kPut) {
          index_.ApplyPut(v.key, v.header.key_hash, loc);
        } else {
          index_.ApplyRemove(v.key, v.header.key_hash, loc);
        }
        return Status::OK();
      },
      &result);
  if (!s.ok()) {
    if (s.code() == Status::Code::kCorruption) {
      return Status::Corruption("file engine: " + s.message() + "; refusing to open");
    }
    return s;
  }
  if (result.dropped > 0) {
    std::fprintf(stderr,
                 "file engine: dropped %llu torn bytes at the tail of %s offset %llu (%s)\n",
                 static_cast<unsigned long long>(result.dropped), file->path().c_str(),
                 static_cast<unsigned long long>(result.end), result.why.c_str());
    // Records before the cut were already applied; only the size changes.
    index_.SetSegmentBytes(seq, result.end);
    torn_bytes_dropped_ += result.dropped;
  }
  return Status::OK();
}

Status FileEngine::CheckWritable() const {
  if (failed_.load()) {
    return Status::IOError(
        "file engine: refusing writes after an earlier I/O failure left the log in doubt; "
        "reopen the engine");
  }
  return Status::OK();
}

Status FileEngine::AppendLocked(const struct iovec* iov, int iovcnt, uint64_t size, Location* loc) {
  Status s = CheckWritable();
  if (!s.ok()) return s;
  if (active_size_ > 0 && active_size_ + size > options_.segment_bytes) {
    s = RollLocked();
    if (!s.ok()) return s;
  }
  s = active_->WriteAt(active_size_, iov, iovcnt);
  if (!s.ok()) {
    // Cut off whatever part of the record reached the file, so the next
    // append does not follow garbage.
    if (!active_->Truncate(active_size_).ok()) failed_ = true;
    return s;
  }
  *loc = Location{active_seq_, active_size_, size};
  active_size_ += size;
  appended_lsn_ += size;
  return Status::OK();
}

Status FileEngine::RollLocked() {
  // The sealed segment is made durable before its successor exists; this is
  // what lets recovery treat a bad record in a sealed segment as corruption
  // rather than as a torn write.
  Status s = active_->Sync();
  if (!s.ok()) {
    failed_ = true;
    return s;
  }
  {
    std::lock_guard<std::mutex> l(sync_mu_);
    durable_lsn_ = std::max(durable_lsn_, appended_lsn_);
  }
  uint64_t next_seq = active_seq_ + 1;
  std::shared_ptr<LogFile> next;
  s = segments_.Create(next_seq, &next);
  if (!s.ok()) return s;
  {
    std::unique_lock<std::shared_mutex> l(index_mu_);
    files_[next_seq] = next;
    index_.AddSegment(next_seq, 0);
    index_.SetActive(next_seq);
  }
  active_ = std::move(next);
  active_seq_ = next_seq;
  active_size_ = 0;
  WakeCompactor();  // the newly sealed segment may already be mostly dead
  return Status::OK();
}

// Group commit: the first waiter becomes the leader and fdatasyncs up to the
// current end of the log; waiters whose records that covered return with it,
// the others elect the next leader. One fdatasync serves many writers.
Status FileEngine::WaitDurable(uint64_t lsn) {
  std::unique_lock<std::mutex> l(sync_mu_);
  while (durable_lsn_ < lsn) {
    if (sync_leader_) {
      sync_cv_.wait(l);
      continue;
    }
    sync_leader_ = true;
    l.unlock();
    std::shared_ptr<LogFile> active;
    uint64_t target;
    {
      std::lock_guard<std::mutex> w(write_mu_);
      active = active_;
      target = appended_lsn_;
    }
    // Older segments were synced when they were sealed, so syncing the
    // active one makes everything up to target durable.
    Status s = active->Sync();
    l.lock();
    sync_leader_ = false;
    if (s.ok()) durable_lsn_ = std::max(durable_lsn_, target);
    sync_cv_.notify_all();
    if (!s.ok()) {
      // After a failed fdatasync the kernel may have dropped the dirty pages:
      // nothing since the last good sync can be promised any more.
      failed_ = true;
      return s;
    }
  }
  return Status::OK();
}

Status FileEngine::Sync() {
  uint64_t lsn;
  {
    std::lock_guard<std::mutex> w(write_mu_);
    lsn = appended_lsn_;
  }
  return WaitDurable(lsn);
}

void FileEngine::SyncerLoop() {
  auto period = std::chrono::milliseconds(options_.sync_interval_ms);
  std::unique_lock<std::mutex> l(bg_mu_);
  while (!stop_) {
    bg_cv_.wait_for(l, period, [&] { return stop_; });
    if (stop_) break;
    l.unlock();
    Status s = Sync();
    if (!s.ok()) std::fprintf(stderr, "file engine: background sync: %s\n", s.message().c_str());
    l.lock();
  }
}

void FileEngine::WakeCompactor() {
  {
    std::lock_guard<std::mutex> l(bg_mu_);
    compact_wanted_ = true;
  }
  bg_cv_.notify_all();
}

Status FileEngine::Close() {
  if (closed_) return Status::OK();
  closed_ = true;
  {
    std::lock_guard<std::mutex> l(bg_mu_);
    stop_ = true;
    stopping_ = true;
  }
  bg_cv_.notify_all();
  if (syncer_.joinable()) syncer_.join();
  if (compactor_.joinable()) compactor_.join();
  Status s = active_ ? Sync() : Status::OK();
  lock_.Release();
  return s;
}

std::string FileEngine::StatsJson() {
  std::shared_lock<std::shared_mutex> l(index_mu_);
  uint64_t live = 0, total = 0;
  for (const auto& [seq, st] : index_.segments()) {
    live += st.live_bytes;
    total += st.bytes;
  }
  auto num = [](uint64_t v) { return std::to_string(v); };
  return std::string("{\"engine\":\"file\"") + ",\"keys\":" + num(index_.key_count()) +
         ",\"tombstones\":" + num(index_.tombstone_count()) +
         ",\"segments\":" + num(index_.segments().size()) + ",\"live_bytes\":" + num(live) +
         ",\"dead_bytes\":" + num(total - live) + ",\"compactions\":" + num(compactions_) +
         ",\"torn_bytes_dropped\":" + num(torn_bytes_dropped_) + ",\"sync\":\"" +
         SyncPolicyName(options_.sync) + "\",\"segment_bytes\":" + num(options_.segment_bytes) +
         ",\"cache\":{\"capacity_bytes\":" + num(cache_.capacity()) +
         ",\"bytes\":" + num(cache_.bytes()) + ",\"hits\":" + num(cache_.hits()) +
         ",\"misses\":" + num(cache_.misses()) + "}}";
}

}  // namespace dynamo::file
