// Host side of the resolver plugin ABI (dynamo/resolver_plugin.h).
//
// A Resolver is a loaded shared object whose entry table passed every check.
// Resolve may be called from any thread (resolvers are required to be pure
// and thread-safe). Resolvers is the set a node was configured with: one for
// every key, and others for key prefixes.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dynamo/status.h"

struct dynamo_resolver_api;

namespace dynamo {

class Resolver {
 public:
  // Loads NAME from plugin_dir (file "<plugin_dir>/resolvers/<NAME>.so") or,
  // when name_or_path contains a '/', the file at that path. Every refusal
  // (no such file, not loadable, no entry symbol, ABI version or table size
  // mismatch, missing operation) is one line naming the file.
  static Result<std::shared_ptr<Resolver>> Load(const std::string& name_or_path,
                                                const std::string& plugin_dir);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  const std::string& path() const { return path_; }
  std::string name() const;

  struct Sibling {
    std::string_view value;
    bool tombstone = false;
    uint64_t timestamp_ms = 0;
    std::string_view node;
  };
  struct Resolved {
    bool tombstone = false;
    std::string value;
  };
  // The resolver's answer, or its error (with its message) as Internal.
  Result<Resolved> Resolve(std::string_view key, const std::vector<Sibling>& siblings) const;

 private:
  Resolver(std::string path, void* handle, const dynamo_resolver_api* api);
  std::string path_;
  void* handle_;
  const dynamo_resolver_api* api_;
};

// --resolver values: "NAME-or-PATH" for every key, "PREFIX=NAME-or-PATH" for
// keys that begin with PREFIX. The longest matching prefix wins; the
// resolver without a prefix serves the keys no prefix matches.
class Resolvers {
 public:
  // Loads every resolver the specs name; a bad spec or plugin is an error
  // naming it. The same name or path is loaded once.
  static Result<Resolvers> Load(const std::vector<std::string>& specs,
                                const std::string& plugin_dir);
  // The resolver for key, or null when none applies.
  const Resolver* For(std::string_view key) const;
  bool empty() const { return by_prefix_.empty(); }
  // "lww", or "lww, carts/=union", as configured (status).
  std::string Describe() const;

 private:
  // (prefix, resolver), longest prefix first; "" matches every key.
  std::vector<std::pair<std::string, std::shared_ptr<Resolver>>> by_prefix_;
  std::vector<std::string> specs_;
};

}  // namespace dynamo
