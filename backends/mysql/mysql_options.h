// Options of the "mysql" storage engine (dynamo --backend-opt KEY=VALUE).
#ifndef DYNAMO_BACKENDS_MYSQL_MYSQL_OPTIONS_H_
#define DYNAMO_BACKENDS_MYSQL_MYSQL_OPTIONS_H_

#include <cstddef>
#include <string>

#include "dynamo/backend_plugin.h"

namespace dynamo::mysql {

struct Options {
  std::string host = "127.0.0.1";
  int port = 3306;
  std::string socket;  // when set, used instead of host and port
  std::string user;
  std::string password;  // never printed
  std::string database;
  std::string table = "dynamo";
  int pool = 8;             // connections, 1..256
  int connect_timeout = 5;  // seconds
  // A server that accepted a query but stops answering (paused, cut off)
  // fails the call after this long instead of blocking it. Seconds.
  int read_timeout = 30;

  // "host:port" or the socket path: where the server is, for messages.
  std::string Where() const;
  // The Connector/C++ address: tcp://host:port or unix:///path.
  std::string Url() const;
};

// Fills *out from the host's options; on failure returns INVALID (or
// IO_ERROR when password_file cannot be read) and sets *error.
dynamo_backend_status ParseOptions(const dynamo_backend_option* options, size_t count, Options* out,
                                   std::string* error);

}  // namespace dynamo::mysql

#endif  // DYNAMO_BACKENDS_MYSQL_MYSQL_OPTIONS_H_
