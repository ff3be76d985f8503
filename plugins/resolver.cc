#include "dynamo/resolver.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <map>

#include "dynamo/resolver_plugin.h"
#include "plugin_file.h"

namespace dynamo {
namespace {

constexpr size_t kRequiredTableSize =
    offsetof(dynamo_resolver_api, free_mem) + sizeof(dynamo_resolver_api::free_mem);

}  // namespace

Result<std::shared_ptr<Resolver>> Resolver::Load(const std::string& name_or_path,
                                                 const std::string& plugin_dir) {
  std::string path;
  void* handle = nullptr;
  if (Status s =
          OpenPluginFile(name_or_path, plugin_dir + "/resolvers", "resolver", &path, &handle);
      !s.ok()) {
    return s;
  }
  auto fail = [&](const std::string& why) -> Status {
    ::dlclose(handle);
    return Status::InvalidArgument("resolver plugin " + path + " refused: " + why);
  };
  void* sym = ::dlsym(handle, DYNAMO_RESOLVER_ENTRY_SYMBOL);
  if (sym == nullptr) {
    return fail("it does not export " DYNAMO_RESOLVER_ENTRY_SYMBOL " (not a dynamo resolver)");
  }
  const dynamo_resolver_api* api = reinterpret_cast<dynamo_resolver_entry_fn>(sym)();
  if (api == nullptr) return fail(DYNAMO_RESOLVER_ENTRY_SYMBOL " returned no API table");
  if (api->abi_version != DYNAMO_RESOLVER_ABI_VERSION) {
    return fail("it was built for resolver ABI version " + std::to_string(api->abi_version) +
                ", this program speaks resolver ABI version " +
                std::to_string(DYNAMO_RESOLVER_ABI_VERSION));
  }
  if (api->struct_size < kRequiredTableSize) {
    return fail("its API table is " + std::to_string(api->struct_size) +
                " bytes, resolver ABI version " + std::to_string(DYNAMO_RESOLVER_ABI_VERSION) +
                " needs at least " + std::to_string(kRequiredTableSize));
  }
  if (api->resolve == nullptr) return fail("it lacks the required operation resolve");
  if (api->free_mem == nullptr) return fail("it lacks the required operation free_mem");
  return std::shared_ptr<Resolver>(new Resolver(path, handle, api));
}

Resolver::Resolver(std::string path, void* handle, const dynamo_resolver_api* api)
    : path_(std::move(path)), handle_(handle), api_(api) {}

Resolver::~Resolver() { ::dlclose(handle_); }

std::string Resolver::name() const { return api_->name ? api_->name : "?"; }

Result<Resolver::Resolved> Resolver::Resolve(std::string_view key,
                                             const std::vector<Sibling>& siblings) const {
  std::vector<dynamo_resolver_sibling> raw;
  raw.reserve(siblings.size());
  for (const auto& s : siblings) {
    raw.push_back({s.value.data(), s.value.size(), s.tombstone ? 1 : 0, s.timestamp_ms,
                   s.node.data(), s.node.size()});
  }
  char* value = nullptr;
  size_t value_len = 0;
  int tombstone = 0;
  char* err = nullptr;
  const int rc = api_->resolve(key.data(), key.size(), raw.data(), raw.size(), &value, &value_len,
                               &tombstone, &err);
  if (rc != DYNAMO_RESOLVER_OK) {
    std::string why = err ? err : "it failed without a message";
    if (err) api_->free_mem(err);
    if (value) api_->free_mem(value);
    return Status::Internal("resolver '" + name() + "': " + why);
  }
  if (err) api_->free_mem(err);
  Resolved r;
  r.tombstone = tombstone != 0;
  if (!r.tombstone && value_len > 0) {
    if (value == nullptr) {
      return Status::Internal("resolver '" + name() + "': it returned " +
                              std::to_string(value_len) + " bytes and no value");
    }
    r.value.assign(value, value_len);
  }
  if (value) api_->free_mem(value);
  return r;
}

Result<Resolvers> Resolvers::Load(const std::vector<std::string>& specs,
                                  const std::string& plugin_dir) {
  Resolvers set;
  std::map<std::string, std::shared_ptr<Resolver>> loaded;  // by name or path
  for (const auto& spec : specs) {
    const size_t eq = spec.find('=');
    std::string prefix = eq == std::string::npos ? "" : spec.substr(0, eq);
    std::string name = eq == std::string::npos ? spec : spec.substr(eq + 1);
    if (eq != std::string::npos && prefix.empty()) {
      return Status::InvalidArgument("--resolver '" + spec +
                                     "': the prefix before '=' is empty (give NAME alone for "
                                     "every key)");
    }
    if (name.empty()) {
      return Status::InvalidArgument("--resolver '" + spec + "' names no resolver");
    }
    for (const auto& [p, r] : set.by_prefix_) {
      if (p == prefix) {
        return Status::InvalidArgument(
            prefix.empty() ? "--resolver is given twice for every key ('" + spec + "')"
                           : "--resolver is given twice for the prefix '" + prefix + "'");
      }
    }
    auto& resolver = loaded[name];
    if (!resolver) {
      auto r = Resolver::Load(name, plugin_dir);
      if (!r.ok()) return r.status();
      resolver = std::move(r).value();
    }
    set.by_prefix_.emplace_back(std::move(prefix), resolver);
    set.specs_.push_back(spec);
  }
  std::stable_sort(set.by_prefix_.begin(), set.by_prefix_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  return set;
}

const Resolver* Resolvers::For(std::string_view key) const {
  for (const auto& [prefix, r] : by_prefix_) {
    if (key.substr(0, prefix.size()) == prefix) return r.get();
  }
  return nullptr;
}

std::string Resolvers::Describe() const {
  std::string out;
  for (const auto& s : specs_) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

}  // namespace dynamo
