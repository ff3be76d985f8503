// The "mysql" engine's operations (see mysql_engine.cc for the table layout).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "dynamo/backend_plugin.h"
#include "mysql_options.h"
#include "mysql_pool.h"

namespace dynamo::mysql {

class Engine {
 public:
  explicit Engine(Options o);

  // Connects once (reporting why it cannot), creates or checks the table.
  dynamo_backend_status Open(char** errmsg);
  dynamo_backend_status Get(std::string_view key, char** value, size_t* value_len, char** errmsg);
  dynamo_backend_status Put(std::string_view key, uint64_t key_hash, std::string_view value,
                            char** errmsg);
  dynamo_backend_status Remove(std::string_view key, char** errmsg);
  // Reads batches with a borrowed connection and calls fn between batches,
  // with no connection held, so fn may use the engine even with pool=1.
  dynamo_backend_status Scan(uint64_t lo, uint64_t hi, dynamo_backend_scan_fn fn, void* ctx,
                             char** errmsg);
  dynamo_backend_status Stats(char** json, char** errmsg);

 private:
  const Options opts_;
  const std::string quoted_table_;
  ConnectionPool pool_;
};

}  // namespace dynamo::mysql
