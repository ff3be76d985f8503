#include "mysql_options.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

namespace dynamo::mysql {
namespace {

constexpr const char* kKnownKeys =
    "host, port, socket, user, password, password_file, database, table, pool, "
    "connect_timeout, read_timeout, data_dir";

bool ParseInt(const std::string& s, long lo, long hi, int* out) {
  if (s.empty() || s[0] < '0' || s[0] > '9') return false;  // no sign, no blanks
  errno = 0;
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (errno != 0 || end == nullptr || *end != '\0' || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

// Identifiers are quoted with backticks in statements; keep them to a plain
// alphabet so no quoting or escaping question arises.
bool ValidName(const std::string& s, bool allow_dash) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '$' || (allow_dash && c == '-');
    if (!ok) return false;
  }
  return true;
}

dynamo_backend_status Bad(std::string* error, const std::string& key, const std::string& value,
                          const char* expected) {
  *error = "bad value '" + value + "' for option " + key + " (expected " + expected + ")";
  return DYNAMO_BACKEND_INVALID;
}

}  // namespace

std::string Options::Where() const {
  if (!socket.empty()) return socket;
  std::ostringstream s;
  s << host << ':' << port;
  return s.str();
}

std::string Options::Url() const {
  if (!socket.empty()) return "unix://" + socket;
  std::ostringstream s;
  s << "tcp://" << host << ':' << port;
  return s.str();
}

dynamo_backend_status ParseOptions(const dynamo_backend_option* options, size_t count, Options* out,
                                   std::string* error) {
  Options o;
  bool have_password = false;
  std::string password_file;
  if (options == nullptr && count != 0) {
    *error = "options missing";
    return DYNAMO_BACKEND_INVALID;
  }
  for (size_t i = 0; i < count; ++i) {
    if (options[i].key == nullptr) {
      *error = "option without a key";
      return DYNAMO_BACKEND_INVALID;
    }
    const std::string key = options[i].key;
    const std::string value = options[i].value != nullptr ? options[i].value : "";
    if (key == "host") {
      if (value.empty()) return Bad(error, key, value, "a host name or address");
      o.host = value;
    } else if (key == "port") {
      if (!ParseInt(value, 1, 65535, &o.port)) return Bad(error, key, value, "1 to 65535");
    } else if (key == "socket") {
      if (value.empty()) return Bad(error, key, value, "a unix socket path");
      o.socket = value;
    } else if (key == "user") {
      if (value.empty()) return Bad(error, key, value, "a user name");
      o.user = value;
    } else if (key == "password") {
      o.password = value;  // the value itself is never echoed
      have_password = true;
    } else if (key == "password_file") {
      if (value.empty()) return Bad(error, key, value, "a file holding the password");
      password_file = value;
    } else if (key == "database") {
      if (!ValidName(value, true)) {
        return Bad(error, key, value, "1 to 64 of [A-Za-z0-9_$-]");
      }
      o.database = value;
    } else if (key == "table") {
      if (!ValidName(value, false)) return Bad(error, key, value, "1 to 64 of [A-Za-z0-9_$]");
      o.table = value;
    } else if (key == "pool") {
      if (!ParseInt(value, 1, 256, &o.pool)) return Bad(error, key, value, "1 to 256");
    } else if (key == "connect_timeout") {
      if (!ParseInt(value, 1, 3600, &o.connect_timeout)) {
        return Bad(error, key, value, "seconds, 1 to 3600");
      }
    } else if (key == "read_timeout") {
      if (!ParseInt(value, 1, 86400, &o.read_timeout)) {
        return Bad(error, key, value, "seconds, 1 to 86400");
      }
    } else if (key == "data_dir") {
      // Passed by the host to every engine; the data lives on the server.
    } else {
      *error = "unknown option '" + key + "' (known options: " + kKnownKeys + ")";
      return DYNAMO_BACKEND_INVALID;
    }
  }
  if (have_password && !password_file.empty()) {
    *error = "give either password or password_file, not both";
    return DYNAMO_BACKEND_INVALID;
  }
  if (!password_file.empty()) {
    std::ifstream in(password_file, std::ios::binary);
    if (!in) {
      *error = "cannot read password_file " + password_file;
      return DYNAMO_BACKEND_IO_ERROR;
    }
    std::string pw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) {
      *error = "cannot read password_file " + password_file;
      return DYNAMO_BACKEND_IO_ERROR;
    }
    if (!pw.empty() && pw.back() == '\n') pw.pop_back();
    if (!pw.empty() && pw.back() == '\r') pw.pop_back();
    o.password = std::move(pw);
  }
  if (o.user.empty()) {
    *error = "option user is required";
    return DYNAMO_BACKEND_INVALID;
  }
  if (o.database.empty()) {
    *error = "option database is required";
    return DYNAMO_BACKEND_INVALID;
  }
  *out = std::move(o);
  return DYNAMO_BACKEND_OK;
}

}  // namespace dynamo::mysql
