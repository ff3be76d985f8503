// Finding and opening a plugin's shared object, for the engine and the
// resolver loaders (backend.cc, resolver.cc). Not a public header.
#pragma once

#include <string>

#include "dynamo/status.h"

namespace dynamo {

// Finds "<dir>/<name>.so" for a name, or the file itself for anything with a
// '/', and dlopens it (RTLD_NOW | RTLD_LOCAL). kind ("backend", "resolver")
// names the plugin in every refusal, each one line naming the file. On
// success sets *path and *handle (the caller dlcloses it).
Status OpenPluginFile(const std::string& name_or_path, const std::string& dir, const char* kind,
                      std::string* path, void** handle);

}  // namespace dynamo
