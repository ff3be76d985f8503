// The C API (dynamo/dynamo.h) over the C++ client core (dynamo/client.h).
//
// Nothing may escape to C: every entry point catches all exceptions. Memory
// handed to the caller comes from malloc, so dynamo_free is free().
#include "dynamo/dynamo.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include "dynamo/client.h"
#include "dynamo/transport/curve.h"

#ifndef DYNAMO_VERSION
#error "DYNAMO_VERSION must be defined by the build"
#endif

struct dynamo_options_t {
  dynamo::ClientOptions options;
  bool nodes_added = false;  // the first add replaces the default node
};

struct dynamo_client_t {
  explicit dynamo_client_t(dynamo::ClientOptions o) : client(std::move(o)) {}
  std::mutex mu;  // one request at a time: the client and its sockets are not thread-safe
  dynamo::Client client;
};

struct dynamo_result_t {
  std::vector<std::string> values;
  std::string context;
};

namespace {

constexpr uint32_t kMaxMs = 86400000;  // a day

// Stores msg in *errptr (freeing what was there) and returns code. Never
// throws: it is what the exception handlers call.
int Fail(char** errptr, int code, std::string_view msg) noexcept {
  if (errptr != nullptr) {
    std::free(*errptr);
    *errptr = static_cast<char*>(std::malloc(msg.size() + 1));
    if (*errptr != nullptr) {
      std::memcpy(*errptr, msg.data(), msg.size());
      (*errptr)[msg.size()] = '\0';
    }
  }
  return code;
}

int CodeOf(const dynamo::Status& s) {
  using C = dynamo::Status::Code;
  switch (s.code()) {
    case C::kOk: return DYNAMO_OK;
    case C::kNotFound: return DYNAMO_NOT_FOUND;
    case C::kUnavailable: return DYNAMO_UNAVAILABLE;
    case C::kTimeout: return DYNAMO_TIMEOUT;
    case C::kInvalidArgument: return DYNAMO_INVALID_ARGUMENT;
    case C::kNotAuthorized: return DYNAMO_NOT_AUTHORIZED;
    default: return DYNAMO_ERROR;
  }
}

int Fail(char** errptr, const dynamo::Status& s) { return Fail(errptr, CodeOf(s), s.message()); }

// A copy the caller frees with dynamo_free, NUL-terminated; nullptr when out
// of memory.
char* Copy(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p != nullptr) std::memcpy(p, s.data(), s.size() + 1);
  return p;
}

// Bytes from (pointer, length): a NULL pointer only with length 0.
bool Bytes(const char* p, size_t n, std::string_view* out) {
  if (p == nullptr && n != 0) return false;
  *out = n == 0 ? std::string_view() : std::string_view(p, n);
  return true;
}

int OutOfMemory(char** errptr) noexcept { return Fail(errptr, DYNAMO_ERROR, "out of memory"); }

// Every entry point that can fail runs inside it: nothing may unwind into C.
template <typename F>
int Guard(char** errptr, F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return OutOfMemory(errptr);
  } catch (const std::exception& e) {
    return Fail(errptr, DYNAMO_ERROR, e.what());
  } catch (...) {
    return Fail(errptr, DYNAMO_ERROR, "unknown error");
  }
}

int BadBytes(char** errptr, const char* what) noexcept {
  return Guard(errptr, [&] {
    return Fail(errptr, DYNAMO_INVALID_ARGUMENT,
                std::string(what) + " is NULL with a non-zero length");
  });
}


int SetMs(uint32_t ms, std::chrono::milliseconds* field, const char* what, char** errptr) {
  if (ms < 1 || ms > kMaxMs) {
    return Fail(errptr, DYNAMO_INVALID_ARGUMENT,
                std::string(what) + " must be from 1 to " + std::to_string(kMaxMs) +
                    " ms, got " + std::to_string(ms));
  }
  *field = std::chrono::milliseconds(ms);
  return DYNAMO_OK;
}

// Returns the context through the optional out-parameters.
int GiveContext(const std::string& ctx, char** new_context, size_t* new_contextlen,
                char** errptr) {
  if (new_context != nullptr) {
    *new_context = Copy(ctx);
    if (*new_context == nullptr) return OutOfMemory(errptr);
  }
  if (new_contextlen != nullptr) *new_contextlen = ctx.size();
  return DYNAMO_OK;
}

}  // namespace

extern "C" {

const char* dynamo_version(void) { return DYNAMO_VERSION; }

// The build refuses a header whose version is not the project's, so the
// header's number is the library's.
int dynamo_version_number(void) { return DYNAMO_VERSION_NUMBER; }

const char* dynamo_code_name(int code) {
  switch (code) {
    case DYNAMO_OK: return "ok";
    case DYNAMO_NOT_FOUND: return "not found";
    case DYNAMO_UNAVAILABLE: return "unavailable";
    case DYNAMO_TIMEOUT: return "timeout";
    case DYNAMO_INVALID_ARGUMENT: return "invalid argument";
    case DYNAMO_ERROR: return "error";
    case DYNAMO_NOT_AUTHORIZED: return "not authorized";
    default: return "unknown";
  }
}

void dynamo_free(void* ptr) { std::free(ptr); }

// ---- options

dynamo_options_t* dynamo_options_create(void) { return new (std::nothrow) dynamo_options_t(); }

void dynamo_options_destroy(dynamo_options_t* options) { delete options; }

int dynamo_options_add_node(dynamo_options_t* options, const char* endpoint, char** errptr) {
  if (options == nullptr) return Fail(errptr, DYNAMO_INVALID_ARGUMENT, "options is NULL");
  if (endpoint == nullptr) return Fail(errptr, DYNAMO_INVALID_ARGUMENT, "endpoint is NULL");
  return Guard(errptr, [&] {
    std::string ep(endpoint);
    if (!dynamo::IsValidEndpoint(ep)) {
      return Fail(errptr, DYNAMO_INVALID_ARGUMENT,
                  "endpoint must be tcp://HOST:PORT or ipc://PATH, got '" + ep + "'");
    }
    if (!options->nodes_added) options->options.endpoints.clear();
    options->nodes_added = true;
    options->options.endpoints.push_back(std::move(ep));
    return static_cast<int>(DYNAMO_OK);
  });
}

int dynamo_options_set_timeout_ms(dynamo_options_t* options, uint32_t ms, char** errptr) {
  if (options == nullptr) return Fail(errptr, DYNAMO_INVALID_ARGUMENT, "options is NULL");
  return Guard(errptr, [&] { return SetMs(ms, &options->options.timeout, "timeout", errptr); });
}

int dynamo_options_set_connect_timeout_ms(dynamo_options_t* options, uint32_t ms,
                                          char** errptr) {
  if (options == nullptr) return Fail(errptr, DYNAMO_INVALID_ARGUMENT, "options is NULL");
  return Guard(errptr, [&] {
    return SetMs(ms, &options->options.connect_timeout, "connect timeout", errptr);
  });
}

int dynamo_options_set_curve(dynamo_options_t* options, const char* key_pair_file,
                             const char* server_public_key, char** errptr) {
  if (options == nullptr) return Fail(errptr, DYNAMO_INVALID_ARGUMENT, "options is NULL");
  if (key_pair_file == nullptr || server_public_key == nullptr) {
    return Fail(errptr, DYNAMO_INVALID_ARGUMENT, "key_pair_file or server_public_key is NULL");
  }
  return Guard(errptr, [&] {
    auto pair = dynamo::curve::ReadKeyPairFile(key_pair_file);
    if (!pair.ok()) return Fail(errptr, DYNAMO_INVALID_ARGUMENT, pair.status().message());
    auto server = dynamo::curve::ReadPublicKey(server_public_key);
    if (!server.ok()) return Fail(errptr, DYNAMO_INVALID_ARGUMENT, server.status().message());
    options->options.curve_public_key = pair->public_key;
    options->options.curve_secret_key = pair->secret_key;
    options->options.server_public_key = *server;
    return static_cast<int>(DYNAMO_OK);
  });
}

int dynamo_options_set_mode(dynamo_options_t* options, int mode, char** errptr) {
  if (options == nullptr) return Fail(errptr, DYNAMO_INVALID_ARGUMENT, "options is NULL");
  return Guard(errptr, [&] {
    switch (mode) {
      case DYNAMO_MODE_SERVER: options->options.mode = dynamo::CoordinationMode::kServer; break;
      case DYNAMO_MODE_CLIENT: options->options.mode = dynamo::CoordinationMode::kClient; break;
      default:
        return Fail(errptr, DYNAMO_INVALID_ARGUMENT,
                    "mode must be DYNAMO_MODE_SERVER (0) or DYNAMO_MODE_CLIENT (1), got " +
                        std::to_string(mode));
    }
    return static_cast<int>(DYNAMO_OK);
  });
}

int dynamo_options_set_ring_refresh_ms(dynamo_options_t* options, uint32_t ms, char** errptr) {
  if (options == nullptr) return Fail(errptr, DYNAMO_INVALID_ARGUMENT, "options is NULL");
  return Guard(errptr,
               [&] { return SetMs(ms, &options->options.ring_refresh, "ring refresh", errptr); });
}

void dynamo_options_set_read_quorum(dynamo_options_t* options, uint32_t r) {
  if (options != nullptr) options->options.r = r;
}

void dynamo_options_set_write_quorum(dynamo_options_t* options, uint32_t w) {
  if (options != nullptr) options->options.w = w;
}

// ---- client

dynamo_client_t* dynamo_client_create(const dynamo_options_t* options, char** errptr) {
  dynamo_client_t* client = nullptr;
  Guard(errptr, [&] {
    client = new dynamo_client_t(options ? options->options : dynamo::ClientOptions());
    return static_cast<int>(DYNAMO_OK);
  });
  return client;
}

void dynamo_client_destroy(dynamo_client_t* client) { delete client; }

int dynamo_get(dynamo_client_t* client, const char* key, size_t keylen, dynamo_result_t** result,
               char** errptr) {
  if (result != nullptr) *result = nullptr;
  if (client == nullptr) return Fail(errptr, DYNAMO_INVALID_ARGUMENT, "client is NULL");
  if (result == nullptr) return Fail(errptr, DYNAMO_INVALID_ARGUMENT, "result is NULL");
  std::string_view k;
  if (!Bytes(key, keylen, &k)) return BadBytes(errptr, "key");
  return Guard(errptr, [&] {
    dynamo::Result<dynamo::GetResult> r = [&] {
      std::lock_guard<std::mutex> lock(client->mu);
      return client->client.Get(k);
    }();
    if (!r.ok()) return Fail(errptr, r.status());
    auto* out = new dynamo_result_t{std::move(r->values), std::move(r->context)};
    *result = out;
    return static_cast<int>(r->found ? DYNAMO_OK : DYNAMO_NOT_FOUND);
  });
}

int dynamo_put(dynamo_client_t* client, const char* key, size_t keylen, const char* value,
               size_t valuelen, const char* context, size_t contextlen, char** new_context,
               size_t* new_contextlen, char** errptr) {
  if (new_context != nullptr) *new_context = nullptr;
  if (client == nullptr) return Fail(errptr, DYNAMO_INVALID_ARGUMENT, "client is NULL");
  std::string_view k, v, c;
  if (!Bytes(key, keylen, &k)) return BadBytes(errptr, "key");
  if (!Bytes(value, valuelen, &v)) return BadBytes(errptr, "value");
  if (!Bytes(context, contextlen, &c)) return BadBytes(errptr, "context");
  return Guard(errptr, [&] {
    dynamo::Result<std::string> r = [&] {
      std::lock_guard<std::mutex> lock(client->mu);
      return client->client.Put(k, v, c);
    }();
    if (!r.ok()) return Fail(errptr, r.status());
    return GiveContext(*r, new_context, new_contextlen, errptr);
  });
}

int dynamo_del(dynamo_client_t* client, const char* key, size_t keylen, const char* context,
               size_t contextlen, char** new_context, size_t* new_contextlen, char** errptr) {
  if (new_context != nullptr) *new_context = nullptr;
  if (client == nullptr) return Fail(errptr, DYNAMO_INVALID_ARGUMENT, "client is NULL");
  std::string_view k, c;
  if (!Bytes(key, keylen, &k)) return BadBytes(errptr, "key");
  if (!Bytes(context, contextlen, &c)) return BadBytes(errptr, "context");
  return Guard(errptr, [&] {
    dynamo::Result<std::string> r = [&] {
      std::lock_guard<std::mutex> lock(client->mu);
      return client->client.Del(k, c);
    }();
    if (!r.ok()) return Fail(errptr, r.status());
    return GiveContext(*r, new_context, new_contextlen, errptr);
  });
}

int dynamo_status_json(dynamo_client_t* client, char** json, char** errptr) {
  if (json != nullptr) *json = nullptr;
  if (client == nullptr) return Fail(errptr, DYNAMO_INVALID_ARGUMENT, "client is NULL");
  if (json == nullptr) return Fail(errptr, DYNAMO_INVALID_ARGUMENT, "json is NULL");
  return Guard(errptr, [&] {
    dynamo::Result<std::string> r = [&] {
      std::lock_guard<std::mutex> lock(client->mu);
      return client->client.StatusJson();
    }();
    if (!r.ok()) return Fail(errptr, r.status());
    *json = Copy(*r);
    return *json != nullptr ? static_cast<int>(DYNAMO_OK) : OutOfMemory(errptr);
  });
}

// ---- results

size_t dynamo_result_count(const dynamo_result_t* result) {
  return result != nullptr ? result->values.size() : 0;
}

const char* dynamo_result_value(const dynamo_result_t* result, size_t i, size_t* len) {
  if (result == nullptr || i >= result->values.size()) {
    if (len != nullptr) *len = 0;
    return nullptr;
  }
  if (len != nullptr) *len = result->values[i].size();
  return result->values[i].c_str();
}

const char* dynamo_result_context(const dynamo_result_t* result, size_t* len) {
  if (result == nullptr) {
    if (len != nullptr) *len = 0;
    return nullptr;
  }
  if (len != nullptr) *len = result->context.size();
  return result->context.c_str();
}

void dynamo_result_destroy(dynamo_result_t* result) { delete result; }

}  // extern "C"
