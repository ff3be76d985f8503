// What the mysql engine's parts share about the server: the key digest (the
// table's primary key), borrowed bytes as a blob stream, how to tell a dead
// connection from a refused statement, and one connection with its prepared
// statements.
#pragma once

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>

#include <istream>
#include <memory>
#include <streambuf>
#include <string>
#include <string_view>

namespace dynamo::mysql {

constexpr size_t kDigestLen = 32;

// SHA-256 of the key (throws std::runtime_error if OpenSSL fails).
std::string Digest(std::string_view key);

// An istream over borrowed bytes, for PreparedStatement::setBlob (which
// sends the bytes as binary data, unlike setString, and does not copy them).
class ByteStream : public std::istream {
 public:
  explicit ByteStream(std::string_view bytes) : std::istream(nullptr), buf_(bytes) { rdbuf(&buf_); }

 private:
  struct Buf : std::streambuf {
    explicit Buf(std::string_view b) {
      char* p = const_cast<char*>(b.data());  // only ever read
      setg(p, p, p + b.size());
    }
  };
  Buf buf_;
};

// Client-side errors (CR_*, 2000-2999) and the server's "going away" ones
// mean the connection is unusable; other server errors leave it fine.
bool IsConnectionError(const sql::SQLException& e);

// The connector's message with the error code.
std::string Describe(const sql::SQLException& e);

// One server connection and its prepared statements.
struct Conn {
  std::unique_ptr<sql::Connection> c;  // declared first: destroyed last
  std::unique_ptr<sql::PreparedStatement> put, get, del, scan_range, scan_after;

  ~Conn() {
    try {
      put.reset();
      get.reset();
      del.reset();
      scan_range.reset();
      scan_after.reset();
      if (c) c->close();
    } catch (...) {  // closing a broken connection may complain; nothing to do
    }
    try {
      c.reset();
    } catch (...) {
    }
  }
};

}  // namespace dynamo::mysql
