// The "memory" storage engine: a thread-safe hash map, for tests and caches.
//
// Keys are spread over kShardCount shards by a hash of the key; each shard is
// an unordered_map guarded by its own shared_mutex, so readers never contend
// with one another and writers only contend within one shard. Nothing is
// durable: close() drops every key. Calls never block on I/O, so the engine
// declares DYNAMO_BACKEND_CAP_NONBLOCKING.
//
// Options: "data_dir" (accepted and ignored, the host passes it to every
// engine); any other key is refused with DYNAMO_BACKEND_INVALID.
#include <array>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <new>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dynamo/backend_plugin.h"
#include "dynamo/backend_plugin_util.h"

namespace {

constexpr size_t kShardCount = 16;

// Lets the maps be searched with a string_view, without copying the key.
struct KeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct Entry {
  uint64_t key_hash;
  std::string value;
};

struct Shard {
  mutable std::shared_mutex mutex;
  std::unordered_map<std::string, Entry, KeyHash, std::equal_to<>> map;  // GUARDED_BY(mutex)
  // The same keys ordered by key hash, so a scan of a hash range visits only
  // the keys in it. The views point into map's keys (nodes never move).
  std::set<std::pair<uint64_t, std::string_view>> by_hash;  // GUARDED_BY(mutex)
  // Bytes of map's keys and values, kept as they change, so stats need not
  // walk the map (holding the lock writers wait for).
  uint64_t bytes = 0;  // GUARDED_BY(mutex)
};

using dynamo::plugin::BadBytes;
using dynamo::plugin::Fail;
using dynamo::plugin::GiveBytes;
using dynamo::plugin::GiveText;
using dynamo::plugin::Guarded;

}  // namespace

struct dynamo_backend {
  std::array<Shard, kShardCount> shards;

  Shard& ShardFor(std::string_view key) { return shards[KeyHash{}(key) % kShardCount]; }
};

namespace {

dynamo_backend_status MemoryOpen(const dynamo_backend_option* options, size_t option_count,
                                 dynamo_backend** out, char** errmsg) {
  return Guarded(errmsg, [&]() -> dynamo_backend_status {
    if (out == nullptr) return Fail(DYNAMO_BACKEND_INVALID, errmsg, "open: no output handle");
    *out = nullptr;
    if (options == nullptr && option_count != 0) {
      return Fail(DYNAMO_BACKEND_INVALID, errmsg, "open: options missing");
    }
    for (size_t i = 0; i < option_count; ++i) {
      const char* key = options[i].key;
      if (key == nullptr) return Fail(DYNAMO_BACKEND_INVALID, errmsg, "option without a key");
      if (std::strcmp(key, "data_dir") == 0) continue;
      return Fail(
          DYNAMO_BACKEND_INVALID, errmsg,
          std::string("unknown option '") + key + "' (the memory engine accepts only data_dir)");
    }
    *out = new dynamo_backend();
    return DYNAMO_BACKEND_OK;
  });
}

void MemoryClose(dynamo_backend* be) { delete be; }

dynamo_backend_status MemoryGet(dynamo_backend* be, const char* key, size_t key_len, char** value,
                                size_t* value_len, char** errmsg) {
  return Guarded(errmsg, [&]() -> dynamo_backend_status {
    if (be == nullptr || value == nullptr || value_len == nullptr || BadBytes(key, key_len)) {
      return Fail(DYNAMO_BACKEND_INVALID, errmsg, "get: invalid argument");
    }
    std::string_view k(key, key_len);
    Shard& shard = be->ShardFor(k);
    std::shared_lock lock(shard.mutex);
    auto it = shard.map.find(k);
    if (it == shard.map.end()) return DYNAMO_BACKEND_NOT_FOUND;
    GiveBytes(it->second.value, value, value_len);
    return DYNAMO_BACKEND_OK;
  });
}

dynamo_backend_status MemoryPut(dynamo_backend* be, const char* key, size_t key_len,
                                uint64_t key_hash, const char* value, size_t value_len,
                                char** errmsg) {
  return Guarded(errmsg, [&]() -> dynamo_backend_status {
    if (be == nullptr || BadBytes(key, key_len) || BadBytes(value, value_len)) {
      return Fail(DYNAMO_BACKEND_INVALID, errmsg, "put: invalid argument");
    }
    std::string_view k(key, key_len);
    // Build the copies before taking the lock, so the lock is held briefly.
    Entry entry{key_hash, std::string(value == nullptr ? "" : value, value_len)};
    Shard& shard = be->ShardFor(k);
    std::unique_lock lock(shard.mutex);
    auto it = shard.map.find(k);
    if (it != shard.map.end()) {
      if (it->second.key_hash != entry.key_hash) {
        shard.by_hash.erase({it->second.key_hash, it->first});
        shard.by_hash.insert({entry.key_hash, it->first});
      }
      shard.bytes += entry.value.size();
      shard.bytes -= it->second.value.size();
      it->second = std::move(entry);
    } else {
      const uint64_t h = entry.key_hash;
      shard.bytes += k.size() + entry.value.size();
      auto placed = shard.map.emplace(std::string(k), std::move(entry)).first;
      shard.by_hash.insert({h, placed->first});
    }
    return DYNAMO_BACKEND_OK;
  });
}

dynamo_backend_status MemoryRemove(dynamo_backend* be, const char* key, size_t key_len,
                                   char** errmsg) {
  return Guarded(errmsg, [&]() -> dynamo_backend_status {
    if (be == nullptr || BadBytes(key, key_len)) {
      return Fail(DYNAMO_BACKEND_INVALID, errmsg, "remove: invalid argument");
    }
    std::string_view k(key, key_len);
    Shard& shard = be->ShardFor(k);
    std::unique_lock lock(shard.mutex);
    auto it = shard.map.find(k);
    if (it == shard.map.end()) return DYNAMO_BACKEND_NOT_FOUND;
    shard.by_hash.erase({it->second.key_hash, it->first});
    shard.bytes -= it->first.size() + it->second.value.size();
    shard.map.erase(it);
    return DYNAMO_BACKEND_OK;
  });
}

dynamo_backend_status MemoryScan(dynamo_backend* be, uint64_t hash_lo, uint64_t hash_hi,
                                 dynamo_backend_scan_fn fn, void* ctx, char** errmsg) {
  return Guarded(errmsg, [&]() -> dynamo_backend_status {
    if (be == nullptr || fn == nullptr) {
      return Fail(DYNAMO_BACKEND_INVALID, errmsg, "scan: invalid argument");
    }
    struct Match {
      std::string key;
      uint64_t key_hash;
      std::string value;
    };
    std::vector<Match> matches;
    for (Shard& shard : be->shards) {
      // Copy one shard's matches, then call back without the lock held, so
      // the callback may use the engine (or take its time) without blocking
      // writers or deadlocking.
      matches.clear();
      {
        std::shared_lock lock(shard.mutex);
        for (auto it = shard.by_hash.lower_bound({hash_lo, std::string_view()});
             it != shard.by_hash.end() && it->first <= hash_hi; ++it) {
          const Entry& entry = shard.map.find(it->second)->second;
          matches.push_back({std::string(it->second), it->first, entry.value});
        }
      }
      for (const Match& m : matches) {
        if (fn(ctx, m.key.data(), m.key.size(), m.key_hash, m.value.data(), m.value.size()) != 0) {
          return DYNAMO_BACKEND_OK;
        }
      }
    }
    return DYNAMO_BACKEND_OK;
  });
}

dynamo_backend_status MemorySync(dynamo_backend* be, char** errmsg) {
  if (be == nullptr) return Fail(DYNAMO_BACKEND_INVALID, errmsg, "sync: invalid argument");
  return DYNAMO_BACKEND_OK;  // nothing to make durable
}

dynamo_backend_status MemoryStats(dynamo_backend* be, char** json, char** errmsg) {
  return Guarded(errmsg, [&]() -> dynamo_backend_status {
    if (be == nullptr || json == nullptr) {
      return Fail(DYNAMO_BACKEND_INVALID, errmsg, "stats: invalid argument");
    }
    uint64_t keys = 0;
    uint64_t bytes = 0;
    for (const Shard& shard : be->shards) {
      std::shared_lock lock(shard.mutex);
      keys += shard.map.size();
      bytes += shard.bytes;
    }
    // snprintf rather than std::to_string: the latter would add a libstdc++
    // GNU-unique symbol to the plugin's exports, which should be the entry only.
    char text[96];
    std::snprintf(text, sizeof text,
                  "{\"engine\":\"memory\",\"keys\":%" PRIu64 ",\"bytes\":%" PRIu64 "}", keys,
                  bytes);
    GiveText(text, json);
    return DYNAMO_BACKEND_OK;
  });
}

void MemoryFree(void* p) { std::free(p); }

dynamo_backend_status MemoryPutBatch(dynamo_backend* be, const dynamo_backend_item* items,
                                     size_t count, char** errmsg) {
  if (be == nullptr || (items == nullptr && count > 0)) {
    return Fail(DYNAMO_BACKEND_INVALID, errmsg, "put_batch: invalid argument");
  }
  for (size_t i = 0; i < count; ++i) {
    const dynamo_backend_item& it = items[i];
    dynamo_backend_status rc =
        MemoryPut(be, it.key, it.key_len, it.key_hash, it.value, it.value_len, errmsg);
    if (rc != DYNAMO_BACKEND_OK) return rc;
  }
  return DYNAMO_BACKEND_OK;
}

const dynamo_backend_api kMemoryApi = {
    /*abi_version=*/DYNAMO_BACKEND_ABI_VERSION,
    /*struct_size=*/sizeof(dynamo_backend_api),
    /*name=*/"memory",
    /*version=*/"1.0.0",
    /*capabilities=*/DYNAMO_BACKEND_CAP_NONBLOCKING,
    /*open=*/&MemoryOpen,
    /*close=*/&MemoryClose,
    /*get=*/&MemoryGet,
    /*put=*/&MemoryPut,
    /*remove=*/&MemoryRemove,
    /*scan=*/&MemoryScan,
    /*sync=*/&MemorySync,
    /*stats=*/&MemoryStats,
    /*free_mem=*/&MemoryFree,
    /*put_batch=*/&MemoryPutBatch,
    /*handle_capabilities=*/nullptr,  // the table's capabilities
    /*try_get=*/nullptr,
};

}  // namespace

extern "C" DYNAMO_PLUGIN_EXPORT const dynamo_backend_api* dynamo_backend_entry(void) {
  return &kMemoryApi;
}
