#include "dynamo/backend.h"

#include <dlfcn.h>

#include "dynamo/backend_plugin.h"
#include "dynamo/no_wait.h"
#include "plugin_file.h"

namespace dynamo {
namespace {

// The 1.0 block is the least a table may hold; later blocks are optional.
constexpr size_t kRequiredTableSize = DYNAMO_BACKEND_API_SIZE_1_0;
static_assert(DYNAMO_BACKEND_API_SIZE_1_0 ==
              offsetof(dynamo_backend_api, free_mem) + sizeof(dynamo_backend_api::free_mem));

// True when a table of struct_size bytes holds the field at offset..offset+size.
constexpr bool Holds(uint32_t struct_size, size_t offset, size_t size) {
  return struct_size >= offset + size;
}

}  // namespace

Result<std::shared_ptr<BackendPlugin>> BackendPlugin::Load(const std::string& name_or_path,
                                                           const std::string& plugin_dir) {
  std::string path;
  void* handle = nullptr;
  if (Status s = OpenPluginFile(name_or_path, plugin_dir, "backend", &path, &handle); !s.ok()) {
    return s;
  }
  auto fail = [&](const std::string& why) -> Status {
    ::dlclose(handle);
    return Status::InvalidArgument("backend plugin " + path + " refused: " + why);
  };
  void* sym = ::dlsym(handle, DYNAMO_BACKEND_ENTRY_SYMBOL);
  if (sym == nullptr) {
    return fail("it does not export " DYNAMO_BACKEND_ENTRY_SYMBOL " (not a dynamo storage engine)");
  }
  auto entry = reinterpret_cast<dynamo_backend_entry_fn>(sym);
  const dynamo_backend_api* api = entry();
  if (api == nullptr) return fail(DYNAMO_BACKEND_ENTRY_SYMBOL " returned no API table");
  if (api->abi_version != DYNAMO_BACKEND_ABI_VERSION) {
    return fail("it was built for backend ABI version " + std::to_string(api->abi_version) +
                ", this program speaks ABI version " + std::to_string(DYNAMO_BACKEND_ABI_VERSION) +
                " (1." + std::to_string(DYNAMO_BACKEND_ABI_MINOR) + ")");
  }
  if (api->struct_size < kRequiredTableSize) {
    return fail("its API table is " + std::to_string(api->struct_size) + " bytes, ABI version " +
                std::to_string(DYNAMO_BACKEND_ABI_VERSION) + " needs at least " +
                std::to_string(kRequiredTableSize));
  }
  struct Required {
    const char* name;
    bool present;
  } required[] = {{"open", api->open != nullptr},        {"close", api->close != nullptr},
                  {"get", api->get != nullptr},          {"put", api->put != nullptr},
                  {"remove", api->remove != nullptr},    {"scan", api->scan != nullptr},
                  {"sync", api->sync != nullptr},        {"stats", api->stats != nullptr},
                  {"free_mem", api->free_mem != nullptr}};
  for (const auto& r : required) {
    if (!r.present) return fail(std::string("it lacks the required operation ") + r.name);
  }
  return std::shared_ptr<BackendPlugin>(new BackendPlugin(path, handle, api));
}

BackendPlugin::BackendPlugin(std::string path, void* handle, const dynamo_backend_api* api)
    : path_(std::move(path)), handle_(handle), api_(api) {
  // What the plugin's table holds, by its size: 1.0, 1.1, or 1.2 and later.
  if (Holds(api->struct_size, offsetof(dynamo_backend_api, try_get),
            sizeof(dynamo_backend_api::try_get))) {
    minor_ = 2;
  } else if (Holds(api->struct_size, offsetof(dynamo_backend_api, put_batch),
                   sizeof(dynamo_backend_api::put_batch))) {
    minor_ = 1;
  }
  has_put_batch_ = minor_ >= 1 && api->put_batch != nullptr;
  has_handle_capabilities_ = minor_ >= 2 && api->handle_capabilities != nullptr;
  has_try_get_ = minor_ >= 2 && api->try_get != nullptr;
}

BackendPlugin::~BackendPlugin() { ::dlclose(handle_); }

std::string BackendPlugin::name() const { return api_->name ? api_->name : "?"; }
std::string BackendPlugin::version() const { return api_->version ? api_->version : "?"; }
uint64_t BackendPlugin::capabilities() const { return api_->capabilities; }

Result<std::unique_ptr<Backend>> Backend::Open(std::shared_ptr<BackendPlugin> plugin,
                                               const BackendOptions& options) {
  std::vector<dynamo_backend_option> raw;
  raw.reserve(options.size());
  for (const auto& [k, v] : options) raw.push_back({k.c_str(), v.c_str()});
  dynamo_backend* handle = nullptr;
  char* err = nullptr;
  int rc = plugin->api()->open(raw.data(), raw.size(), &handle, &err);
  if (rc != DYNAMO_BACKEND_OK || handle == nullptr) {
    std::string why = err ? err : "open failed without a message";
    if (err) plugin->api()->free_mem(err);
    if (handle) plugin->api()->close(handle);
    std::string msg = "backend '" + plugin->name() + "' cannot open: " + why;
    if (rc == DYNAMO_BACKEND_INVALID) return Status::InvalidArgument(msg);
    if (rc == DYNAMO_BACKEND_CORRUPTION) return Status::Corruption(msg);
    if (rc == DYNAMO_BACKEND_UNAVAILABLE) return Status::Unavailable(msg);
    return Status::IOError(msg);
  }
  uint64_t caps = plugin->has_handle_capabilities_ ? plugin->api()->handle_capabilities(handle)
                                                   : plugin->capabilities();
  // Single-key calls on the loop need try_get: without it the bit is moot.
  if (!plugin->has_try_get_) caps &= ~uint64_t{DYNAMO_BACKEND_CAP_SINGLE_KEY_INLINE};
  return std::unique_ptr<Backend>(new Backend(std::move(plugin), handle, caps));
}

Backend::~Backend() { plugin_->api()->close(handle_); }

bool Backend::nonblocking() const { return (caps_ & DYNAMO_BACKEND_CAP_NONBLOCKING) != 0; }
bool Backend::single_key_inline() const {
  return (caps_ & DYNAMO_BACKEND_CAP_SINGLE_KEY_INLINE) != 0;
}
bool Backend::durable() const { return (caps_ & DYNAMO_BACKEND_CAP_DURABLE) != 0; }

Status Backend::Convert(int rc, char* errmsg) const {
  if (rc == DYNAMO_BACKEND_OK) {
    if (errmsg) plugin_->api()->free_mem(errmsg);
    return Status::OK();
  }
  std::string msg = plugin_->name() + " engine: " + (errmsg ? errmsg : "operation failed");
  if (errmsg) plugin_->api()->free_mem(errmsg);
  switch (rc) {
    case DYNAMO_BACKEND_NOT_FOUND:
      return Status::NotFound(msg);
    case DYNAMO_BACKEND_INVALID:
      return Status::InvalidArgument(msg);
    case DYNAMO_BACKEND_IO_ERROR:
      return Status::IOError(msg);
    case DYNAMO_BACKEND_CORRUPTION:
      return Status::Corruption(msg);
    case DYNAMO_BACKEND_UNAVAILABLE:
      return Status::Unavailable(msg);
    case DYNAMO_BACKEND_UNSUPPORTED:
      return Status::Unsupported(msg);
    case DYNAMO_BACKEND_WOULD_BLOCK:
      return Status::WouldBlock(msg);
    default:
      return Status::Internal(msg + " (status " + std::to_string(rc) + ")");
  }
}

Result<std::string> Backend::Get(std::string_view key) {
  char* value = nullptr;
  size_t len = 0;
  char* err = nullptr;
  // On the loop (a NoWaitScope), an engine whose single-key calls may run
  // there is asked not to wait for the disk.
  auto* get =
      NoWaitScope::Active() && single_key_inline() ? plugin_->api()->try_get : plugin_->api()->get;
  int rc = get(handle_, key.data(), key.size(), &value, &len, &err);
  Status s = Convert(rc, err);
  if (!s.ok()) return s;
  std::string out(value ? value : "", value ? len : 0);
  if (value) plugin_->api()->free_mem(value);
  return out;
}

Status Backend::Put(std::string_view key, uint64_t key_hash, std::string_view value) {
  char* err = nullptr;
  int rc = plugin_->api()->put(handle_, key.data(), key.size(), key_hash, value.data(),
                               value.size(), &err);
  return Convert(rc, err);
}

Status Backend::PutBatch(const std::vector<Item>& items) {
  if (items.empty()) return Status::OK();
  if (!plugin_->has_put_batch_) {
    for (const Item& item : items) {
      if (Status s = Put(item.key, item.key_hash, item.value); !s.ok()) return s;
    }
    return Status::OK();
  }
  std::vector<dynamo_backend_item> raw;
  raw.reserve(items.size());
  for (const Item& item : items) {
    raw.push_back(
        {item.key.data(), item.key.size(), item.key_hash, item.value.data(), item.value.size()});
  }
  char* err = nullptr;
  int rc = plugin_->api()->put_batch(handle_, raw.data(), raw.size(), &err);
  return Convert(rc, err);
}

Status Backend::Remove(std::string_view key) {
  char* err = nullptr;
  int rc = plugin_->api()->remove(handle_, key.data(), key.size(), &err);
  return Convert(rc, err);
}

namespace {
int ScanTrampoline(void* ctx, const char* key, size_t key_len, uint64_t key_hash, const char* value,
                   size_t value_len) {
  const auto& fn = *static_cast<const Backend::ScanFn*>(ctx);
  return fn(std::string_view(key, key_len), key_hash, std::string_view(value, value_len)) ? 0 : 1;
}
}  // namespace

Status Backend::Scan(uint64_t hash_lo, uint64_t hash_hi, const ScanFn& fn) {
  char* err = nullptr;
  int rc = plugin_->api()->scan(handle_, hash_lo, hash_hi, &ScanTrampoline,
                                const_cast<ScanFn*>(&fn), &err);
  return Convert(rc, err);
}

// The call and the read of err are separate statements: as arguments of one
// call, err could be read before the plugin set it (the order of evaluation
// of arguments is unspecified), losing the message and leaking it.
Status Backend::Sync() {
  char* err = nullptr;
  int rc = plugin_->api()->sync(handle_, &err);
  return Convert(rc, err);
}

Result<std::string> Backend::Stats() {
  char* json = nullptr;
  char* err = nullptr;
  int rc = plugin_->api()->stats(handle_, &json, &err);
  Status s = Convert(rc, err);
  if (!s.ok()) return s;
  std::string out = json ? json : "{}";
  if (json) plugin_->api()->free_mem(json);
  return out;
}

}  // namespace dynamo
