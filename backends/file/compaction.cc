// FileEngine: compaction of sealed segments.
//
// A sealed segment whose dead bytes reach compact_ratio of its size is
// rewritten: its live records (the PUT each key's index entry points at, and
// the tombstones that still guard against an older PUT, see log_index.h) are
// appended verbatim to the active segment, that is fdatasynced, and only then
// is the old segment unlinked and the folder fsynced. A crash at any point
// leaves either the old segment, or both copies (later records win at
// replay, so duplicates are harmless), never neither.
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "file_engine.h"

namespace dynamo::file {
namespace {

// Records copied per hold of write_mu_: bounds how long writers wait.
constexpr size_t kCopyBatchBytes = 1u << 20;
constexpr size_t kCopyBatchRecords = 1024;
// After a look that found nothing to do, the compactor waits at least this
// long before looking again, so a stream of overwrites does not keep it busy.
constexpr auto kIdlePause = std::chrono::milliseconds(20);
// And it looks at least this often even without a wake-up.
constexpr auto kMaxSleep = std::chrono::seconds(1);

}  // namespace

void FileEngine::CompactorLoop() {
  for (;;) {
    uint64_t seq;
    while (!stopping_.load() && !compaction_disabled_.load() && PickSegmentToCompact(&seq)) {
      Status s = CompactSegment(seq);
      if (!s.ok()) {
        std::fprintf(stderr, "file engine: compaction of %s stopped: %s\n",
                     durable::SegmentDir::FileName(seq).c_str(), s.message().c_str());
        // Once writes are refused, every retry would fail the same way.
        if (failed_.load()) compaction_disabled_ = true;
        break;  // retry after a pause, not in a tight loop
      }
    }
    std::unique_lock<std::mutex> l(bg_mu_);
    bg_cv_.wait_for(l, kIdlePause, [&] { return stop_; });
    bg_cv_.wait_for(l, kMaxSleep, [&] { return stop_ || compact_wanted_; });
    if (stop_) return;
    compact_wanted_ = false;
  }
}

bool FileEngine::PickSegmentToCompact(uint64_t* seq) {
  std::shared_lock<std::shared_mutex> l(index_mu_);
  // The oldest candidate first: compacting it is what lets tombstones in
  // newer segments be dropped.
  for (const auto& [s, st] : index_.segments()) {
    if (s == index_.active()) continue;
    uint64_t dead = st.bytes - std::min(st.bytes, st.live_bytes);
    if (st.bytes == 0 ||
        static_cast<double>(dead) >= options_.compact_ratio * static_cast<double>(st.bytes)) {
      *seq = s;
      return true;
    }
  }
  return false;
}

Status FileEngine::CompactSegment(uint64_t seq) {
  std::shared_ptr<LogFile> file;
  uint64_t size;
  {
    std::shared_lock<std::shared_mutex> l(index_mu_);
    auto it = index_.segments().find(seq);
    if (it == index_.segments().end() || seq == index_.active()) return Status::OK();
    file = FileOf(seq);
    size = it->second.bytes;
  }
  durable::LogReader reader(file, size, framing_);
  durable::Record rec;
  std::string why;
  std::vector<Pending> batch;
  size_t batch_bytes = 0;
  for (bool done = false; !done;) {
    if (stopping_.load()) return Status::OK();  // copies so far are harmless duplicates
    switch (reader.Next(&rec, &why)) {
      case durable::LogReader::Outcome::kRecord:
        batch.push_back({std::string(rec.raw), rec.offset, ViewRecord(rec.raw).header});
        batch_bytes += rec.raw.size();
        break;
      case durable::LogReader::Outcome::kEnd:
        done = true;
        break;
      case durable::LogReader::Outcome::kBad:
        // The segment passed its checks at open, so the media changed under
        // us. Leave it alone: reads of its records will report corruption.
        compaction_disabled_ = true;
        return Status::Corruption("corrupt record in " + file->path() + " at offset " +
                                  std::to_string(reader.offset()) + " (" + why +
                                  "); compaction disabled");
      case durable::LogReader::Outcome::kIOError:
        compaction_disabled_ = true;
        return Status::IOError(why + "; compaction disabled");
    }
    if (done || batch_bytes >= kCopyBatchBytes || batch.size() >= kCopyBatchRecords) {
      Status s = CopyLive(seq, batch);
      if (!s.ok()) return s;
      batch.clear();
      batch_bytes = 0;
    }
  }
  // The copies must be durable before the originals go.
  Status s = Sync();
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> w(write_mu_);
    std::unique_lock<std::shared_mutex> l(index_mu_);
    uint64_t live = index_.segments().at(seq).live_bytes;
    if (live != 0) {
      compaction_disabled_ = true;
      return Status::IOError("internal: " + std::to_string(live) + " live bytes left in " +
                             file->path() + " after copying; compaction disabled");
    }
    index_.RemoveSegment(seq);
    files_.erase(seq);  // readers holding `file` keep its descriptor
  }
  s = segments_.Unlink(seq);
  if (s.ok()) s = segments_.Sync();
  if (!s.ok()) {
    compaction_disabled_ = true;
    return s;
  }
  // Only once the unlink is durable may tombstones that guarded against the
  // segment's PUTs be forgotten.
  bool hint;
  {
    std::lock_guard<std::mutex> w(write_mu_);
    std::unique_lock<std::shared_mutex> l(index_mu_);
    index_.DropUnneededTombstones();
    hint = index_.TakeCompactionHint();
  }
  ++compactions_;
  if (hint) WakeCompactor();
  return Status::OK();
}

Status FileEngine::CopyLive(uint64_t seq, const std::vector<Pending>& batch) {
  struct Move {
    std::string_view key;
    bool tombstone;
    bool copied;  // false: a tombstone no longer needed, dropped
    Location to;
  };
  std::vector<Move> moves;
  std::lock_guard<std::mutex> w(write_mu_);
  auto apply = [&] {
    std::unique_lock<std::shared_mutex> l(index_mu_);
    for (const Move& m : moves) {
      if (m.copied) index_.Appended(m.to);
      if (!m.tombstone) {
        index_.MovePut(m.key, m.to);
      } else if (m.copied) {
        index_.MoveTombstone(m.key, m.to);
      } else {
        index_.DropTombstone(m.key);
      }
    }
    index_.TakeCompactionHint();  // our own kills are not news
  };
  // Holding write_mu_, index_ cannot change under us (only write_mu_ holders
  // mutate it), so it may be read without index_mu_.
  for (const Pending& p : batch) {
    std::string_view key(p.raw.data() + kHeaderSize, p.header.key_len);
    Location here{seq, p.offset, p.raw.size()};
    bool is_put = p.header.kind == RecordKind::kPut;
    const LogIndex::Entry* e = is_put ? index_.Find(key) : index_.FindTombstone(key);
    if (e == nullptr || !(e->loc == here)) continue;  // superseded: dead
    if (!is_put && !index_.TombstoneNeeded(*e)) {
      moves.push_back({key, true, false, {}});
      continue;
    }
    struct iovec iov = {const_cast<char*>(p.raw.data()), p.raw.size()};
    Location to;
    Status s = AppendLocked(&iov, 1, p.raw.size(), &to);
    if (!s.ok()) {
      apply();  // what was copied so far stays valid
      return s;
    }
    moves.push_back({key, !is_put, true, to});
  }
  apply();
  return Status::OK();
}

}  // namespace dynamo::file
