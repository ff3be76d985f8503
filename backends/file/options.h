// Options of the file engine, parsed from the host's key/value pairs
// (--backend-opt KEY=VALUE, plus "data_dir" which the host always passes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "dynamo/backend_plugin.h"
#include "file_status.h"

namespace dynamo::file {

enum class SyncPolicy {
  kAlways,    // put/remove return after fdatasync (group commit)
  kInterval,  // a background thread fdatasyncs every sync_interval_ms
  kNever      // only sync() and close() fdatasync
};
const char* SyncPolicyName(SyncPolicy p);

struct Options {
  // Folder of the segments and the LOCK file. Option "path"; default
  // "<data_dir>/file". Created if missing.
  std::string dir;
  // A new segment is started when appending would take the active one past
  // this size. Option "segment_bytes". Default: 64 MiB. At least 1024.
  uint64_t segment_bytes = 64ull << 20;
  // A sealed segment whose dead bytes are at least this fraction of its size
  // is compacted. Option "compact_ratio", in (0, 1]. Default: 0.5.
  double compact_ratio = 0.5;
  // Option "sync": always | interval | never. Default: interval.
  SyncPolicy sync = SyncPolicy::kInterval;
  // Period of the interval syncer. Option "sync_interval_ms", >= 1.
  // Default: 1000.
  uint64_t sync_interval_ms = 1000;
  // Bytes of recently read and written values kept in memory (keys, values
  // and a per-entry overhead), so reads of hot keys make no system call.
  // Option "cache_bytes"; 0 turns the cache off. Default: 64 MiB.
  uint64_t cache_bytes = 64ull << 20;
  // Whether a background thread compacts sealed segments. Not an option of
  // the plugin: always on there; off only for programs that open a folder
  // briefly to read it (the recovery fuzz target opens one per input).
  bool compaction = true;
};

// Validates options; unknown keys and malformed values are Invalid, with a
// message naming the key (and, for unknown keys, listing the known ones).
Status ParseOptions(const dynamo_backend_option* options, size_t count, Options* out);

}  // namespace dynamo::file
