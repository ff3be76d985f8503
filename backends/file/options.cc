#include "options.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string_view>

namespace dynamo::file {
namespace {

constexpr const char* kKnownKeys =
    "path, data_dir, segment_bytes, compact_ratio, sync, sync_interval_ms, cache_bytes";
constexpr uint64_t kMinSegmentBytes = 1024;

bool ParseU64(const std::string& s, uint64_t* out) {
  if (s.empty() || s[0] < '0' || s[0] > '9') return false;  // no sign, no blanks
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || end == nullptr || *end != '\0') return false;
  *out = v;
  return true;
}

Status BadValue(const std::string& key, const std::string& value, const char* expected) {
  return Status::InvalidArgument("file engine: bad value '" + value + "' for option " + key +
                                 " (expected " + expected + ")");
}

}  // namespace

const char* SyncPolicyName(SyncPolicy p) {
  switch (p) {
    case SyncPolicy::kAlways:
      return "always";
    case SyncPolicy::kInterval:
      return "interval";
    case SyncPolicy::kNever:
      return "never";
  }
  return "?";
}

Status ParseOptions(const dynamo_backend_option* options, size_t count, Options* out) {
  Options o;
  std::string path, data_dir;
  for (size_t i = 0; i < count; ++i) {
    if (options[i].key == nullptr)
      return Status::InvalidArgument("file engine: option without a key");
    std::string key = options[i].key;
    std::string value = options[i].value ? options[i].value : "";
    if (key == "path") {
      if (value.empty()) return BadValue(key, value, "a folder");
      path = value;
    } else if (key == "data_dir") {
      data_dir = value;
    } else if (key == "segment_bytes") {
      if (!ParseU64(value, &o.segment_bytes) || o.segment_bytes < kMinSegmentBytes) {
        return BadValue(key, value, "a byte count of at least 1024");
      }
    } else if (key == "compact_ratio") {
      errno = 0;
      char* end = nullptr;
      double r = std::strtod(value.c_str(), &end);
      if (value.empty() || errno != 0 || *end != '\0' || !std::isfinite(r) || r <= 0 || r > 1) {
        return BadValue(key, value, "a number in (0, 1]");
      }
      o.compact_ratio = r;
    } else if (key == "sync") {
      if (value == "always") {
        o.sync = SyncPolicy::kAlways;
      } else if (value == "interval") {
        o.sync = SyncPolicy::kInterval;
      } else if (value == "never") {
        o.sync = SyncPolicy::kNever;
      } else {
        return BadValue(key, value, "always, interval or never");
      }
    } else if (key == "sync_interval_ms") {
      if (!ParseU64(value, &o.sync_interval_ms) || o.sync_interval_ms == 0 ||
          o.sync_interval_ms > 24ull * 3600 * 1000) {
        return BadValue(key, value, "milliseconds, from 1 to 86400000");
      }
    } else if (key == "cache_bytes") {
      if (!ParseU64(value, &o.cache_bytes) || o.cache_bytes > (1ull << 40)) {
        return BadValue(key, value, "a byte count, at most 2^40 (0: no cache)");
      }
    } else {
      return Status::InvalidArgument("file engine: unknown option '" + key +
                                     "' (known options: " + kKnownKeys + ")");
    }
  }
  if (!path.empty()) {
    o.dir = path;
  } else if (!data_dir.empty()) {
    o.dir = data_dir + "/file";
  } else {
    return Status::InvalidArgument("file engine: needs option path or data_dir to know its folder");
  }
  *out = std::move(o);
  return Status::OK();
}

}  // namespace dynamo::file
