#include "plugin_file.h"

#include <dlfcn.h>
#include <sys/stat.h>

namespace dynamo {
namespace {

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

Status OpenPluginFile(const std::string& name_or_path, const std::string& dir, const char* kind,
                      std::string* path, void** handle) {
  const std::string k(kind);
  if (name_or_path.empty()) return Status::InvalidArgument("empty " + k + " name");
  if (name_or_path.find('/') != std::string::npos) {
    *path = name_or_path;
    if (!IsRegularFile(*path)) {
      return Status::InvalidArgument(k + " plugin " + *path +
                                     (Exists(*path) ? " is not a file" : " does not exist"));
    }
  } else {
    *path = dir + "/" + name_or_path + ".so";
    if (!IsRegularFile(*path)) {
      return Status::InvalidArgument("unknown " + k + " '" + name_or_path + "': no plugin " +
                                     *path + " (see --plugin-dir)");
    }
  }
  *handle = ::dlopen(path->c_str(), RTLD_NOW | RTLD_LOCAL);
  if (*handle == nullptr) {
    const char* why = ::dlerror();
    return Status::InvalidArgument("cannot load " + k + " plugin " + *path + ": " +
                                   (why ? why : "unknown dlopen error"));
  }
  return Status::OK();
}

}  // namespace dynamo
