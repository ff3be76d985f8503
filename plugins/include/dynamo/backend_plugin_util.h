/* C++ helpers for engine plugins written in C++ (header-only, nothing of
 * the host): error messages in the ABI's malloc'ed form, and the guard that
 * keeps exceptions from crossing the C ABI. The host prefixes every message
 * with "<engine> engine: ", so messages here carry no engine name. */
#ifndef DYNAMO_BACKEND_PLUGIN_UTIL_H_
#define DYNAMO_BACKEND_PLUGIN_UTIL_H_

#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <string_view>

#include "dynamo/backend_plugin.h"

namespace dynamo::plugin {

// Sets *errmsg (when asked for) to a malloc'ed copy of msg (free_mem must be
// free()); returns rc. Never throws: strdup returning NULL leaves it out.
inline dynamo_backend_status Fail(dynamo_backend_status rc, char** errmsg,
                                  const char* msg) noexcept {
  if (errmsg != nullptr) *errmsg = ::strdup(msg);
  return rc;
}
inline dynamo_backend_status Fail(dynamo_backend_status rc, char** errmsg,
                                  const std::string& msg) noexcept {
  return Fail(rc, errmsg, msg.c_str());
}

// Runs body, turning any C++ exception into IO_ERROR with its message.
template <typename Body>
dynamo_backend_status Guarded(char** errmsg, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return Fail(DYNAMO_BACKEND_IO_ERROR, errmsg, "out of memory");
  } catch (const std::exception& e) {
    return Fail(DYNAMO_BACKEND_IO_ERROR, errmsg, e.what());
  } catch (...) {
    return Fail(DYNAMO_BACKEND_IO_ERROR, errmsg, "unknown exception");
  }
}

// Hands bytes to the host as the ABI wants them: a malloc'ed copy in *out
// (never NULL, also for no bytes: malloc(0) may return NULL) and its length
// in *out_len. Throws std::bad_alloc (for Guarded) when out of memory.
inline void GiveBytes(std::string_view bytes, char** out, size_t* out_len) {
  char* copy = static_cast<char*>(std::malloc(bytes.empty() ? 1 : bytes.size()));
  if (copy == nullptr) throw std::bad_alloc();
  if (!bytes.empty()) std::memcpy(copy, bytes.data(), bytes.size());
  *out = copy;
  *out_len = bytes.size();
}

// Hands text to the host: a malloc'ed, NUL-terminated copy in *out. Throws
// std::bad_alloc when out of memory.
inline void GiveText(const char* text, char** out) {
  char* copy = ::strdup(text);
  if (copy == nullptr) throw std::bad_alloc();
  *out = copy;
}

// A (pointer, length) argument that claims bytes but points at none.
inline bool BadBytes(const char* p, size_t len) { return p == nullptr && len != 0; }

}  // namespace dynamo::plugin

#endif  // DYNAMO_BACKEND_PLUGIN_UTIL_H_
