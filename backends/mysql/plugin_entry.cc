// The "mysql" engine's C entry points: the ABI table and the shims that call
// the Engine (mysql_engine.h) with every exception caught.
#include <cstdlib>
#include <memory>
#include <string>

#include "dynamo/backend_plugin.h"
#include "dynamo/backend_plugin_util.h"
#include "mysql_engine.h"
#include "mysql_options.h"

using dynamo::mysql::Engine;
using dynamo::mysql::Options;

struct dynamo_backend {
  std::unique_ptr<Engine> engine;
};

namespace {

constexpr const char* kEngineVersion = "1.0.0";

using dynamo::plugin::BadBytes;
using dynamo::plugin::Fail;
using dynamo::plugin::Guarded;

dynamo_backend_status MysqlOpen(const dynamo_backend_option* options, size_t option_count,
                                dynamo_backend** out, char** errmsg) {
  return Guarded(errmsg, [&]() -> dynamo_backend_status {
    if (out == nullptr) {
      return Fail(DYNAMO_BACKEND_INVALID, errmsg, "open: no output handle");
    }
    *out = nullptr;
    Options opts;
    std::string error;
    dynamo_backend_status rc = dynamo::mysql::ParseOptions(options, option_count, &opts, &error);
    if (rc != DYNAMO_BACKEND_OK) return Fail(rc, errmsg, error);
    auto be = std::make_unique<dynamo_backend>();
    be->engine = std::make_unique<Engine>(std::move(opts));
    rc = be->engine->Open(errmsg);
    if (rc != DYNAMO_BACKEND_OK) return rc;
    *out = be.release();
    return DYNAMO_BACKEND_OK;
  });
}

void MysqlClose(dynamo_backend* be) {
  try {
    delete be;
  } catch (...) {
  }
}

dynamo_backend_status MysqlGet(dynamo_backend* be, const char* key, size_t key_len, char** value,
                               size_t* value_len, char** errmsg) {
  return Guarded(errmsg, [&]() -> dynamo_backend_status {
    if (be == nullptr || value == nullptr || value_len == nullptr || BadBytes(key, key_len)) {
      return Fail(DYNAMO_BACKEND_INVALID, errmsg, "get: invalid argument");
    }
    return be->engine->Get(std::string_view(key, key_len), value, value_len, errmsg);
  });
}

dynamo_backend_status MysqlPut(dynamo_backend* be, const char* key, size_t key_len,
                               uint64_t key_hash, const char* value, size_t value_len,
                               char** errmsg) {
  return Guarded(errmsg, [&]() -> dynamo_backend_status {
    if (be == nullptr || BadBytes(key, key_len) || BadBytes(value, value_len)) {
      return Fail(DYNAMO_BACKEND_INVALID, errmsg, "put: invalid argument");
    }
    return be->engine->Put(std::string_view(key, key_len), key_hash,
                           std::string_view(value, value_len), errmsg);
  });
}

dynamo_backend_status MysqlRemove(dynamo_backend* be, const char* key, size_t key_len,
                                  char** errmsg) {
  return Guarded(errmsg, [&]() -> dynamo_backend_status {
    if (be == nullptr || BadBytes(key, key_len)) {
      return Fail(DYNAMO_BACKEND_INVALID, errmsg, "remove: invalid argument");
    }
    return be->engine->Remove(std::string_view(key, key_len), errmsg);
  });
}

dynamo_backend_status MysqlScan(dynamo_backend* be, uint64_t hash_lo, uint64_t hash_hi,
                                dynamo_backend_scan_fn fn, void* ctx, char** errmsg) {
  return Guarded(errmsg, [&]() -> dynamo_backend_status {
    if (be == nullptr || fn == nullptr) {
      return Fail(DYNAMO_BACKEND_INVALID, errmsg, "scan: invalid argument");
    }
    return be->engine->Scan(hash_lo, hash_hi, fn, ctx, errmsg);
  });
}

dynamo_backend_status MysqlSync(dynamo_backend* be, char** errmsg) {
  if (be == nullptr) return Fail(DYNAMO_BACKEND_INVALID, errmsg, "sync: invalid");
  return DYNAMO_BACKEND_OK;  // every statement is an autocommitted InnoDB transaction
}

dynamo_backend_status MysqlStats(dynamo_backend* be, char** json, char** errmsg) {
  return Guarded(errmsg, [&]() -> dynamo_backend_status {
    if (be == nullptr || json == nullptr) {
      return Fail(DYNAMO_BACKEND_INVALID, errmsg, "stats: invalid argument");
    }
    return be->engine->Stats(json, errmsg);
  });
}

void MysqlFree(void* p) { std::free(p); }

const dynamo_backend_api kMysqlApi = {
    /*abi_version=*/DYNAMO_BACKEND_ABI_VERSION,
    /*struct_size=*/sizeof(dynamo_backend_api),
    /*name=*/"mysql",
    /*version=*/kEngineVersion,
    /*capabilities=*/DYNAMO_BACKEND_CAP_DURABLE,
    /*open=*/&MysqlOpen,
    /*close=*/&MysqlClose,
    /*get=*/&MysqlGet,
    /*put=*/&MysqlPut,
    /*remove=*/&MysqlRemove,
    /*scan=*/&MysqlScan,
    /*sync=*/&MysqlSync,
    /*stats=*/&MysqlStats,
    /*free_mem=*/&MysqlFree,
    /*put_batch=*/nullptr,            // one put() each
    /*handle_capabilities=*/nullptr,  // the table's capabilities
    /*try_get=*/nullptr,
};

}  // namespace

extern "C" DYNAMO_PLUGIN_EXPORT const dynamo_backend_api* dynamo_backend_entry(void) {
  return &kMysqlApi;
}
