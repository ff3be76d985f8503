// The C ABI of the "file" storage engine (dynamo/backend_plugin.h): turns
// calls into FileEngine methods and every C++ exception into a status, since
// none may cross the boundary.
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <vector>

#include "dynamo/backend_plugin.h"
#include "dynamo/backend_plugin_util.h"
#include "file_engine.h"
#include "options.h"

struct dynamo_backend {
  std::unique_ptr<dynamo::file::FileEngine> engine;
};

namespace {

using dynamo::file::FileEngine;
using dynamo::file::Status;

constexpr const char* kEngineVersion = "0.1.0";

using dynamo::plugin::Fail;
using dynamo::plugin::Guarded;

dynamo_backend_status Report(const Status& s, char** errmsg) {
  return s.ok() ? DYNAMO_BACKEND_OK : Fail(dynamo::file::AbiCode(s), errmsg, s.message());
}

dynamo_backend_status Open(const dynamo_backend_option* options, size_t option_count,
                           dynamo_backend** out, char** errmsg) {
  return Guarded(errmsg, [&] {
    if (out == nullptr)
      return Report(Status::InvalidArgument("file engine: no output handle"), errmsg);
    *out = nullptr;
    dynamo::file::Options opts;
    Status s = dynamo::file::ParseOptions(options, option_count, &opts);
    if (!s.ok()) return Report(s, errmsg);
    auto be = std::make_unique<dynamo_backend>();
    s = FileEngine::Open(opts, &be->engine);
    if (!s.ok()) return Report(s, errmsg);
    *out = be.release();
    return DYNAMO_BACKEND_OK;
  });
}

void Close(dynamo_backend* be) {
  try {
    delete be;  // FileEngine's destructor flushes and joins its threads
  } catch (...) {
  }
}

dynamo_backend_status GetMaybeWaiting(dynamo_backend* be, const char* key, size_t key_len,
                                      char** value, size_t* value_len, char** errmsg,
                                      bool no_wait) {
  return Guarded(errmsg, [&] {
    std::string record;
    std::string_view v;
    Status s = be->engine->Get(std::string_view(key, key_len), &record, &v, no_wait);
    if (!s.ok()) return Report(s, errmsg);
    dynamo::plugin::GiveBytes(v, value, value_len);
    return DYNAMO_BACKEND_OK;
  });
}

dynamo_backend_status Get(dynamo_backend* be, const char* key, size_t key_len, char** value,
                          size_t* value_len, char** errmsg) {
  return GetMaybeWaiting(be, key, key_len, value, value_len, errmsg, /*no_wait=*/false);
}

dynamo_backend_status TryGet(dynamo_backend* be, const char* key, size_t key_len, char** value,
                             size_t* value_len, char** errmsg) {
  return GetMaybeWaiting(be, key, key_len, value, value_len, errmsg, /*no_wait=*/true);
}

// Under sync=always a put waits for fdatasync: nothing may run on the loop.
uint64_t HandleCapabilities(dynamo_backend* be) {
  uint64_t caps = DYNAMO_BACKEND_CAP_DURABLE;
  if (be->engine->SingleKeyInline()) caps |= DYNAMO_BACKEND_CAP_SINGLE_KEY_INLINE;
  return caps;
}

dynamo_backend_status Put(dynamo_backend* be, const char* key, size_t key_len, uint64_t key_hash,
                          const char* value, size_t value_len, char** errmsg) {
  return Guarded(errmsg, [&] {
    return Report(be->engine->Put(std::string_view(key, key_len), key_hash,
                                  std::string_view(value, value_len)),
                  errmsg);
  });
}

dynamo_backend_status PutBatch(dynamo_backend* be, const dynamo_backend_item* items, size_t count,
                               char** errmsg) {
  return Guarded(errmsg, [&] {
    if (items == nullptr && count > 0) {
      return Report(Status::InvalidArgument("file engine: put_batch: no items"), errmsg);
    }
    std::vector<FileEngine::BatchItem> batch;
    batch.reserve(count);
    for (size_t i = 0; i < count; ++i) {
      batch.push_back({std::string_view(items[i].key, items[i].key_len), items[i].key_hash,
                       std::string_view(items[i].value, items[i].value_len)});
    }
    return Report(be->engine->PutBatch(batch.data(), batch.size()), errmsg);
  });
}

dynamo_backend_status Remove(dynamo_backend* be, const char* key, size_t key_len, char** errmsg) {
  return Guarded(
      errmsg, [&] { return Report(be->engine->Remove(std::string_view(key, key_len)), errmsg); });
}

dynamo_backend_status Scan(dynamo_backend* be, uint64_t hash_lo, uint64_t hash_hi,
                           dynamo_backend_scan_fn fn, void* ctx, char** errmsg) {
  return Guarded(errmsg, [&] {
    Status s =
        be->engine->Scan(hash_lo, hash_hi, [&](std::string_view k, uint64_t h, std::string_view v) {
          return fn(ctx, k.data(), k.size(), h, v.data(), v.size()) == 0;
        });
    return Report(s, errmsg);
  });
}

dynamo_backend_status Sync(dynamo_backend* be, char** errmsg) {
  return Guarded(errmsg, [&] { return Report(be->engine->Sync(), errmsg); });
}

dynamo_backend_status Stats(dynamo_backend* be, char** json, char** errmsg) {
  return Guarded(errmsg, [&] {
    dynamo::plugin::GiveText(be->engine->StatsJson().c_str(), json);
    return DYNAMO_BACKEND_OK;
  });
}

void FreeMem(void* p) { std::free(p); }

const dynamo_backend_api kApi = {
    DYNAMO_BACKEND_ABI_VERSION,
    sizeof(dynamo_backend_api),
    "file",
    kEngineVersion,
    DYNAMO_BACKEND_CAP_DURABLE,
    &Open,
    &Close,
    &Get,
    &Put,
    &Remove,
    &Scan,
    &Sync,
    &Stats,
    &FreeMem,
    &PutBatch,
    &HandleCapabilities,
    &TryGet,
};

}  // namespace

extern "C" DYNAMO_PLUGIN_EXPORT const dynamo_backend_api* dynamo_backend_entry(void) {
  return &kApi;
}
