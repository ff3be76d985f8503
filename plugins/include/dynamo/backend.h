// Host side of the storage engine plugin ABI (dynamo/backend_plugin.h).
//
// BackendPlugin is a loaded shared object whose entry table passed every
// check; Backend is one open engine. Both are safe to use from several
// threads at once (engines are required to be thread-safe). A Backend keeps
// its plugin loaded for as long as it lives.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dynamo/status.h"

struct dynamo_backend_api;
struct dynamo_backend;

namespace dynamo {

class BackendPlugin {
 public:
  // Loads NAME from plugin_dir (file "<plugin_dir>/<NAME>.so") or, when
  // name_or_path contains a '/', the file at that path. Every refusal (no
  // such file, not loadable, no entry symbol, ABI version or table size
  // mismatch, missing operation) is one line naming the file.
  static Result<std::shared_ptr<BackendPlugin>> Load(const std::string& name_or_path,
                                                     const std::string& plugin_dir);
  ~BackendPlugin();
  BackendPlugin(const BackendPlugin&) = delete;
  BackendPlugin& operator=(const BackendPlugin&) = delete;

  const std::string& path() const { return path_; }
  std::string name() const;
  std::string version() const;
  uint64_t capabilities() const;
  const dynamo_backend_api* api() const { return api_; }
  // The newest minor ABI block the plugin's table holds (0: 1.0 only).
  uint32_t abi_minor() const { return minor_; }

 private:
  friend class Backend;
  BackendPlugin(std::string path, void* handle, const dynamo_backend_api* api);
  std::string path_;
  void* handle_;
  const dynamo_backend_api* api_;
  uint32_t minor_ = 0;
  // Optional operations the table has (by its size) and the plugin filled.
  bool has_put_batch_ = false;
  bool has_handle_capabilities_ = false;
  bool has_try_get_ = false;
};

using BackendOptions = std::vector<std::pair<std::string, std::string>>;

class Backend {
 public:
  // Opens an engine of `plugin` with `options`. A failure names the engine.
  static Result<std::unique_ptr<Backend>> Open(std::shared_ptr<BackendPlugin> plugin,
                                               const BackendOptions& options);
  ~Backend();  // closes the engine (which flushes it)
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  // NotFound when the engine holds no value for key. Inside a NoWaitScope
  // (the loop), an engine with single_key_inline() answers WouldBlock
  // instead of reading from the disk.
  Result<std::string> Get(std::string_view key);
  Status Put(std::string_view key, uint64_t key_hash, std::string_view value);
  // Stores several pairs: one call to the engine when it has put_batch
  // (ABI 1.1), else one Put each. On failure some may have been stored.
  struct Item {
    std::string_view key;
    uint64_t key_hash = 0;
    std::string_view value;
  };
  Status PutBatch(const std::vector<Item>& items);
  // NotFound when the engine holds no value for key.
  Status Remove(std::string_view key);
  // Calls fn for each key whose hash is in [hash_lo, hash_hi]; fn returns
  // false to stop early.
  using ScanFn =
      std::function<bool(std::string_view key, uint64_t key_hash, std::string_view value)>;
  Status Scan(uint64_t hash_lo, uint64_t hash_hi, const ScanFn& fn);
  Status Sync();
  // A JSON object of engine statistics.
  Result<std::string> Stats();

  const BackendPlugin& plugin() const { return *plugin_; }
  // True when the engine declared that its calls never block.
  bool nonblocking() const;
  // True when put, remove and a Get inside a NoWaitScope never wait for a
  // device (DYNAMO_BACKEND_CAP_SINGLE_KEY_INLINE, with try_get).
  bool single_key_inline() const;
  bool durable() const;

 private:
  Backend(std::shared_ptr<BackendPlugin> plugin, dynamo_backend* handle, uint64_t caps)
      : plugin_(std::move(plugin)), handle_(handle), caps_(caps) {}
  Status Convert(int rc, char* errmsg) const;
  std::shared_ptr<BackendPlugin> plugin_;
  dynamo_backend* handle_;
  uint64_t caps_;  // this handle's capability bits
};

}  // namespace dynamo
