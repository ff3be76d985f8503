// FileEngine: the durable single-node storage engine behind the "file"
// plugin (DESIGN.md 3.4).
//
// Writes append records (log_format.h) to the active segment of a folder of
// segments (dynamo/durable/segments.h); an in-memory LogIndex maps each key to its latest
// record and is rebuilt at Open by replaying the segments in order. A
// background thread compacts sealed segments that are mostly dead; another
// one fdatasyncs periodically under sync=interval.
//
// Thread-safety: every public method may be called from several threads at
// once, except that nothing may be called during or after Close() (the
// destructor calls it). Locks, always taken in this order:
//   write_mu_  serializes appends, segment roll-over and index mutations;
//   index_mu_  (shared_mutex) guards index_ and files_: readers share it,
//              mutators hold it exclusively and briefly, with write_mu_;
//   sync_mu_   guards the group-commit state (never held while waiting for
//              write_mu_);
//   bg_mu_     guards stop_ and the background threads' wake-ups.
// A thread holding write_mu_ may read index_ without index_mu_, since only
// holders of write_mu_ change it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dynamo/durable/file.h"
#include "dynamo/durable/record_log.h"
#include "dynamo/durable/segments.h"
#include "file_status.h"
#include "log_format.h"
#include "log_index.h"
#include "options.h"
#include "value_cache.h"

namespace dynamo::file {

class FileEngine {
 public:
  // Locks the folder, replays its segments (dropping a torn tail of the
  // newest one), and starts the background threads.
  static Status Open(const Options& options, std::unique_ptr<FileEngine>* out);
  ~FileEngine();
  FileEngine(const FileEngine&) = delete;
  FileEngine& operator=(const FileEngine&) = delete;

  // On OK, *value views into *record (which the call fills). With no_wait,
  // WouldBlock when the record is not in the page cache.
  Status Get(std::string_view key, std::string* record, std::string_view* value,
             bool no_wait = false);
  // put and remove wait for no device (only the page cache) unless every
  // write is synced: the host may call them, and Get with no_wait, on its
  // event loop.
  bool SingleKeyInline() const { return options_.sync != SyncPolicy::kAlways; }
  Status Put(std::string_view key, uint64_t key_hash, std::string_view value);
  // As Put for each item in order, in runs of records written at once (a
  // run ends at 256 KiB or at a segment's end); nothing is written unless every item is
  // within the limits. The values go to the page cache, not the value
  // cache: a batch is bulk data (a partition streamed in), and keeping it
  // would evict the keys clients read. On an error, a prefix of the items
  // may have been stored.
  struct BatchItem {
    std::string_view key;
    uint64_t key_hash;
    std::string_view value;
  };
  Status PutBatch(const BatchItem* items, size_t count);
  Status Remove(std::string_view key);
  // fn returns false to stop early. Called without any engine lock held.
  using ScanFn =
      std::function<bool(std::string_view key, uint64_t key_hash, std::string_view value)>;
  Status Scan(uint64_t hash_lo, uint64_t hash_hi, const ScanFn& fn);
  // Makes every completed put/remove durable.
  Status Sync();
  std::string StatsJson();
  // Stops the threads, syncs, releases the folder. Idempotent.
  Status Close();

 private:
  using LogFile = durable::LogFile;
  explicit FileEngine(Options options)
      : options_(std::move(options)), segments_(options_.dir), cache_(options_.cache_bytes) {}

  // file_engine.cc
  Status Recover();
  Status ReplaySegment(uint64_t seq, bool newest);
  // Appends one record to the active segment, rolling over first if it would
  // overflow. REQUIRES write_mu_. Does not touch index_ beyond roll-over.
  Status AppendLocked(const struct iovec* iov, int iovcnt, uint64_t size, Location* loc);
  Status RollLocked();
  // Appends items[0, count) as one write to the active segment, rolling
  // over first when the first would not fit; *taken is how many fitted.
  // REQUIRES write_mu_.
  Status AppendRunLocked(const BatchItem* items, size_t count, size_t* taken);
  Status WaitDurable(uint64_t lsn);
  Status CheckWritable() const;
  void SyncerLoop();
  void WakeCompactor();

  // file_engine_ops.cc
  Status ReadRecord(const std::shared_ptr<LogFile>& file, const Location& loc, std::string_view key,
                    std::string* record, std::string_view* value, bool no_wait = false) const;
  std::shared_ptr<LogFile> FileOf(uint64_t seq) const;  // REQUIRES index_mu_ (any mode)

  // compaction.cc
  void CompactorLoop();
  bool PickSegmentToCompact(uint64_t* seq);
  Status CompactSegment(uint64_t seq);
  struct Pending {  // one record of the segment being compacted
    std::string raw;
    uint64_t offset;
    RecordHeader header;
  };
  Status CopyLive(uint64_t seq, const std::vector<Pending>& batch);

  const Options options_;
  const durable::SegmentDir segments_;  // options_.dir
  const RecordFraming framing_;
  durable::DirLock lock_;  // <dir>/LOCK, released on close

  std::mutex write_mu_;
  std::shared_ptr<LogFile> active_;  // GUARDED_BY(write_mu_)
  uint64_t active_seq_ = 0;          // GUARDED_BY(write_mu_)
  uint64_t active_size_ = 0;         // GUARDED_BY(write_mu_)
  uint64_t appended_lsn_ = 0;        // bytes appended since open; GUARDED_BY(write_mu_)

  mutable std::shared_mutex index_mu_;
  LogIndex index_;  // GUARDED_BY(index_mu_)
  // Values of recent keys. Changed for a key only with index_mu_ held
  // exclusively (with its index entry), or filled after a read with it held
  // shared and the entry unchanged, so it never holds a stale value.
  ValueCache cache_;
  std::map<uint64_t, std::shared_ptr<LogFile>> files_;  // GUARDED_BY(index_mu_)

  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  uint64_t durable_lsn_ = 0;  // GUARDED_BY(sync_mu_)
  bool sync_leader_ = false;  // GUARDED_BY(sync_mu_)

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool stop_ = false;                  // GUARDED_BY(bg_mu_)
  bool compact_wanted_ = false;        // GUARDED_BY(bg_mu_)
  std::atomic<bool> stopping_{false};  // stop_, readable without bg_mu_
  std::thread syncer_;
  std::thread compactor_;
  bool closed_ = false;

  // Set when the log may hold a partial record or an unsynced failure
  // (a failed write that could not be undone, a failed fdatasync): from then
  // on writes are refused rather than risk acknowledging lost data.
  std::atomic<bool> failed_{false};
  // Set when compaction met a problem it cannot safely retry.
  std::atomic<bool> compaction_disabled_{false};

  std::atomic<uint64_t> compactions_{0};
  std::atomic<uint64_t> torn_bytes_dropped_{0};
};

}  // namespace dynamo::file
