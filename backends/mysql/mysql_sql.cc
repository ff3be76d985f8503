#include "mysql_sql.h"

#include <openssl/evp.h>

#include <cstdio>
#include <stdexcept>

namespace dynamo::mysql {

std::string Digest(std::string_view key) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(key.data(), key.size(), md, &len, EVP_sha256(), nullptr) != 1 ||
      len != kDigestLen) {
    throw std::runtime_error("SHA-256 of the key failed");
  }
  return std::string(reinterpret_cast<const char*>(md), len);
}

bool IsConnectionError(const sql::SQLException& e) {
  const int code = e.getErrorCode();
  if (code == 0) return true;  // the connector's own errors (e.g. closed connection)
  if (code >= 2000 && code < 3000) return true;
  switch (code) {
    case 1053:  // ER_SERVER_SHUTDOWN
    case 1152:  // ER_ABORTING_CONNECTION
    case 1927:  // ER_CONNECTION_KILLED
    case 4031:  // ER_CLIENT_INTERACTION_TIMEOUT
      return true;
    default:
      return false;
  }
}

std::string Describe(const sql::SQLException& e) {
  char code[48];
  std::snprintf(code, sizeof code, " (error %d)", e.getErrorCode());
  return std::string(e.what()) + code;
}

}  // namespace dynamo::mysql
