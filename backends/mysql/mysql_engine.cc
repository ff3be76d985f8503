// The "mysql" storage engine: every key is one row of an InnoDB table on a
// MySQL or MariaDB server, reached through MySQL Connector/C++ 1.1.
//
// Table layout (created when missing, never altered or dropped):
//
//   kd BINARY(32)      NOT NULL  SHA-256 of the key       PRIMARY KEY
//   kh BIGINT UNSIGNED NOT NULL  the host's key hash      KEY kh_kd (kh, kd)
//   k  MEDIUMBLOB      NOT NULL  the key bytes
//   v  LONGBLOB        NOT NULL  the value bytes
//
// get() and remove() receive only the key, not its hash, so point access
// goes by a fixed-size digest of the key: InnoDB cannot index a 64 KiB key
// (at most 3072 bytes per index), and a prefix index would need an equality
// on the whole key for every row sharing the prefix. The digest is the
// clustered primary key, so get/put/remove are one B-tree descent. Scans walk
// the secondary index (kh, kd) by range, resuming after the last (kh, kd)
// seen, so every batch is an index range read whatever the table size.
//
// Connections come from a pool of at most `pool` connections; each holds its
// prepared statements. A connection that fails at the network level is
// dropped (with every idle one, likely as stale after a server restart) and
// the call is retried once on a fresh one; while the server is down calls
// fail with UNAVAILABLE after at most connect_timeout.
#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cinttypes>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <istream>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dynamo/backend_plugin.h"
#include "dynamo/backend_plugin_util.h"
#include "mysql_options.h"

namespace {

using dynamo::mysql::Options;

constexpr const char* kEngineVersion = "1.0.0";
constexpr size_t kDigestLen = 32;
constexpr int kMaxScanBatch = 1000;
constexpr int kMinScanBatch = 16;
constexpr size_t kScanBatchBytes = 16u << 20;  // aim for batches about this large

using dynamo::plugin::BadBytes;
using dynamo::plugin::Fail;
using dynamo::plugin::GiveBytes;
using dynamo::plugin::GiveText;
using dynamo::plugin::Guarded;

std::string Digest(std::string_view key) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(key.data(), key.size(), md, &len, EVP_sha256(), nullptr) != 1 ||
      len != kDigestLen) {
    throw std::runtime_error("SHA-256 of the key failed");
  }
  return std::string(reinterpret_cast<const char*>(md), len);
}

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

class Engine;

}  // namespace

struct dynamo_backend {
  std::unique_ptr<Engine> engine;
};

namespace {

class Engine {
 public:
  explicit Engine(Options o) : opts_(std::move(o)), quoted_table_("`" + opts_.table + "`") {
    idle_.reserve(static_cast<size_t>(opts_.pool));  // Release() then never allocates
  }

  // Connects once (reporting why it cannot), creates or checks the table.
  dynamo_backend_status Open(char** errmsg) {
    std::unique_ptr<Conn> conn;
    try {
      conn = Connect();
    } catch (const sql::SQLException& e) {
      // Unreachable: retry later; refused (e.g. access denied): a setup error.
      return Fail(IsConnectionError(e) ? DYNAMO_BACKEND_UNAVAILABLE : DYNAMO_BACKEND_IO_ERROR,
                  errmsg,
                  "cannot connect to " + opts_.Where() + " (database " + opts_.database + ") as " +
                      opts_.user + ": " + Describe(e));
    }
    try {
      std::string problem = EnsureTable(*conn->c);
      if (!problem.empty()) return Fail(DYNAMO_BACKEND_INVALID, errmsg, problem);
      Prepare(conn.get());
    } catch (const sql::SQLException& e) {
      return Fail(IsConnectionError(e) ? DYNAMO_BACKEND_UNAVAILABLE : DYNAMO_BACKEND_IO_ERROR,
                  errmsg,
                  "cannot use table " + opts_.database + "." + opts_.table + " on " +
                      opts_.Where() + ": " + Describe(e));
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++open_;
    idle_.push_back(std::move(conn));
    return DYNAMO_BACKEND_OK;
  }

  dynamo_backend_status Get(std::string_view key, char** value, size_t* value_len, char** errmsg) {
    const std::string kd = Digest(key);
    return Run("get", errmsg, [&](Conn& conn) -> dynamo_backend_status {
      ByteStream kd_in(kd);
      conn.get->setBlob(1, &kd_in);
      std::unique_ptr<sql::ResultSet> rs(conn.get->executeQuery());
      if (!rs->next()) return DYNAMO_BACKEND_NOT_FOUND;
      sql::SQLString v = rs->getString(1);
      GiveBytes(v.asStdString(), value, value_len);
      return DYNAMO_BACKEND_OK;
    });
  }

  dynamo_backend_status Put(std::string_view key, uint64_t key_hash, std::string_view value,
                            char** errmsg) {
    const std::string kd = Digest(key);
    return Run("put", errmsg, [&](Conn& conn) -> dynamo_backend_status {
      ByteStream kd_in(kd), k_in(key), v_in(value);
      conn.put->setBlob(1, &kd_in);
      conn.put->setUInt64(2, key_hash);
      conn.put->setBlob(3, &k_in);
      conn.put->setBlob(4, &v_in);
      conn.put->executeUpdate();
      return DYNAMO_BACKEND_OK;
    });
  }

  dynamo_backend_status Remove(std::string_view key, char** errmsg) {
    const std::string kd = Digest(key);
    int attempts = 0;
    return Run("remove", errmsg, [&](Conn& conn) -> dynamo_backend_status {
      ByteStream kd_in(kd);
      conn.del->setBlob(1, &kd_in);
      const bool retry = attempts++ > 0;
      // On a retry the first attempt may have deleted the row before its
      // connection broke: nothing left is then a success, not "not found".
      if (conn.del->executeUpdate() == 0 && !retry) return DYNAMO_BACKEND_NOT_FOUND;
      return DYNAMO_BACKEND_OK;
    });
  }

  // Reads batches with a borrowed connection and calls fn between batches,
  // with no connection held, so fn may use the engine even with pool=1.
  dynamo_backend_status Scan(uint64_t lo, uint64_t hi, dynamo_backend_scan_fn fn, void* ctx,
                             char** errmsg) {
    if (lo > hi) return DYNAMO_BACKEND_OK;
    struct Row {
      uint64_t kh;
      std::string kd, k, v;
    };
    std::vector<Row> rows;
    int limit = 64;      // grows to kMaxScanBatch while rows are small
    bool after = false;  // resume inside one kh, after (last_kh, last_kd)
    uint64_t next_lo = lo, last_kh = 0;
    std::string last_kd;
    for (;;) {
      rows.clear();
      dynamo_backend_status rc = Run("scan", errmsg, [&](Conn& conn) -> dynamo_backend_status {
        rows.clear();  // a retried attempt starts over
        sql::PreparedStatement* st;
        std::unique_ptr<ByteStream> kd_in;
        if (after) {
          st = conn.scan_after.get();
          kd_in = std::make_unique<ByteStream>(last_kd);
          st->setUInt64(1, last_kh);
          st->setBlob(2, kd_in.get());
          st->setInt(3, limit);
        } else {
          st = conn.scan_range.get();
          st->setUInt64(1, next_lo);
          st->setUInt64(2, hi);
          st->setInt(3, limit);
        }
        std::unique_ptr<sql::ResultSet> rs(st->executeQuery());
        while (rs->next()) {
          rows.push_back({rs->getUInt64(1), rs->getString(2).asStdString(),
                          rs->getString(3).asStdString(), rs->getString(4).asStdString()});
        }
        return DYNAMO_BACKEND_OK;
      });
      if (rc != DYNAMO_BACKEND_OK) return rc;
      size_t bytes = 0;
      for (const Row& r : rows) {
        bytes += r.k.size() + r.v.size();
        if (fn(ctx, r.k.data(), r.k.size(), r.kh, r.v.data(), r.v.size()) != 0) {
          return DYNAMO_BACKEND_OK;
        }
      }
      const bool full = static_cast<int>(rows.size()) == limit;
      if (full) {
        last_kh = rows.back().kh;
        last_kd = std::move(rows.back().kd);
        after = true;
      } else if (after) {
        // That kh is exhausted: continue with the next hashes, if any.
        if (last_kh >= hi) return DYNAMO_BACKEND_OK;
        next_lo = last_kh + 1;
        after = false;
      } else {
        return DYNAMO_BACKEND_OK;
      }
      if (bytes > 2 * kScanBatchBytes && limit > kMinScanBatch) {
        limit /= 2;
      } else if (bytes < kScanBatchBytes / 2 && limit < kMaxScanBatch) {
        limit = limit * 2 > kMaxScanBatch ? kMaxScanBatch : limit * 2;
      }
    }
  }

  dynamo_backend_status Stats(char** json, char** errmsg) {
    uint64_t keys = 0;
    dynamo_backend_status rc = Run("stats", errmsg, [&](Conn& conn) -> dynamo_backend_status {
      std::unique_ptr<sql::Statement> st(conn.c->createStatement());
      std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT COUNT(*) FROM " + quoted_table_));
      keys = rs->next() ? rs->getUInt64(1) : 0;
      return DYNAMO_BACKEND_OK;
    });
    if (rc != DYNAMO_BACKEND_OK) return rc;
    int open;
    {
      std::lock_guard<std::mutex> lock(mu_);
      open = open_;
    }
    // Database and table names are restricted to [A-Za-z0-9_$-]: no escaping.
    char text[320];
    std::snprintf(text, sizeof text,
                  "{\"engine\":\"mysql\",\"database\":\"%s\",\"table\":\"%s\",\"pool\":%d,"
                  "\"connections\":%d,\"keys\":%" PRIu64 "}",
                  opts_.database.c_str(), opts_.table.c_str(), opts_.pool, open, keys);
    GiveText(text, json);
    return DYNAMO_BACKEND_OK;
  }

 private:
  // Hands a connection back to the pool when it goes out of scope, keeping
  // it only when marked healthy.
  class Lease {
   public:
    Lease(Engine* e, std::unique_ptr<Conn> c) : e_(e), c_(std::move(c)) {}
    ~Lease() {
      if (c_) e_->Release(std::move(c_), healthy_);
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Conn& conn() { return *c_; }
    void set_healthy(bool h) { healthy_ = h; }

   private:
    Engine* e_;
    std::unique_ptr<Conn> c_;
    bool healthy_ = false;
  };

  // Borrows a connection and runs body(conn); maps SQL errors to statuses.
  template <typename Body>
  dynamo_backend_status Run(const char* what, char** errmsg, Body&& body) {
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<Conn> c;
      bool reused = false;
      try {
        c = Acquire(/*fresh=*/attempt > 0, &reused);
      } catch (const sql::SQLException& e) {
        return Fail(DYNAMO_BACKEND_UNAVAILABLE, errmsg,
                    "server unreachable: " + opts_.Where() + ": " + Describe(e));
      }
      Lease lease(this, std::move(c));
      try {
        dynamo_backend_status rc = body(lease.conn());
        lease.set_healthy(true);
        return rc;
      } catch (const sql::SQLException& e) {
        if (!IsConnectionError(e)) {
          lease.set_healthy(true);
          return Fail(DYNAMO_BACKEND_IO_ERROR, errmsg, std::string("") + what + ": " + Describe(e));
        }
        DropIdle();  // after a server restart they are all stale
        if (reused && attempt == 0) continue;
        return Fail(DYNAMO_BACKEND_UNAVAILABLE, errmsg,
                    "server unreachable: " + opts_.Where() + ": " + Describe(e));
      }
    }
  }

  // An idle connection (unless fresh), else a new one when the pool has
  // room, else waits for one to come back. Throws sql::SQLException.
  std::unique_ptr<Conn> Acquire(bool fresh, bool* reused) {
    std::unique_ptr<Conn> stale;
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        if (!idle_.empty()) {
          std::unique_ptr<Conn> c = std::move(idle_.back());
          idle_.pop_back();
          if (!fresh) {
            *reused = true;
            return c;
          }
          stale = std::move(c);  // its slot goes to the new connection
          break;
        }
        if (open_ < opts_.pool) {
          ++open_;
          break;
        }
        cv_.wait(lock);
      }
    }
    stale.reset();
    *reused = false;
    try {
      std::unique_ptr<Conn> c = Connect();
      Prepare(c.get());
      return c;
    } catch (...) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        --open_;
      }
      cv_.notify_one();
      throw;
    }
  }

  void Release(std::unique_ptr<Conn> c, bool healthy) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (healthy) {
        idle_.push_back(std::move(c));
      } else {
        --open_;
      }
    }
    cv_.notify_one();
    c.reset();  // an unhealthy one is closed outside the lock
  }

  void DropIdle() {
    std::vector<std::unique_ptr<Conn>> dropped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Moved out, not swapped: idle_ keeps its reserved capacity, so a
      // release (in a noexcept destructor) never allocates.
      for (auto& c : idle_) dropped.push_back(std::move(c));
      idle_.clear();
      open_ -= static_cast<int>(dropped.size());
    }
    cv_.notify_all();
  }

  std::unique_ptr<Conn> Connect() {
    sql::mysql::MySQL_Driver* driver;
    {
      // The driver singleton's creation is not thread-safe.
      static std::mutex driver_mu;
      std::lock_guard<std::mutex> lock(driver_mu);
      driver = sql::mysql::get_mysql_driver_instance();
    }
    sql::ConnectOptionsMap m;
    m["hostName"] = sql::SQLString(opts_.Url());
    m["userName"] = sql::SQLString(opts_.user);
    m["password"] = sql::SQLString(opts_.password);
    m["schema"] = sql::SQLString(opts_.database);
    m["OPT_CONNECT_TIMEOUT"] = opts_.connect_timeout;
    m["OPT_READ_TIMEOUT"] = opts_.read_timeout;
    m["OPT_WRITE_TIMEOUT"] = opts_.read_timeout;
    m["OPT_RECONNECT"] = false;  // a lost connection is replaced, not silently revived
    auto conn = std::make_unique<Conn>();
    conn->c.reset(driver->connect(m));
    conn->c->setAutoCommit(true);
    std::unique_ptr<sql::Statement> st(conn->c->createStatement());
    // Strict: never truncate a key or value, never substitute the engine.
    st->execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'");
    // The server gives up on a statement before the client does, so a
    // statement abandoned at read_timeout never commits after a retry.
    const int server_limit = std::max(1, opts_.read_timeout - 1);
    st->execute("SET SESSION innodb_lock_wait_timeout = " + std::to_string(server_limit));
    try {
      st->execute("SET SESSION max_statement_time = " + std::to_string(server_limit));
    } catch (const sql::SQLException&) {
      // MySQL has no max_statement_time; the lock wait limit still holds.
    }
    return conn;
  }

  void Prepare(Conn* conn) {
    const std::string& t = quoted_table_;
    conn->put.reset(conn->c->prepareStatement(
        "INSERT INTO " + t +
        " (kd, kh, k, v) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE kh = VALUES(kh), "
        "v = VALUES(v)"));
    conn->get.reset(conn->c->prepareStatement("SELECT v FROM " + t + " WHERE kd = ?"));
    conn->del.reset(conn->c->prepareStatement("DELETE FROM " + t + " WHERE kd = ?"));
    conn->scan_range.reset(conn->c->prepareStatement(
        "SELECT kh, kd, k, v FROM " + t +
        " FORCE INDEX (kh_kd) WHERE kh BETWEEN ? AND ? ORDER BY kh, kd LIMIT ?"));
    conn->scan_after.reset(conn->c->prepareStatement(
        "SELECT kh, kd, k, v FROM " + t +
        " FORCE INDEX (kh_kd) WHERE kh = ? AND kd > ? ORDER BY kh, kd LIMIT ?"));
  }

  // Creates the table when missing; returns why an existing one is unfit
  // (empty when fine).
  std::string EnsureTable(sql::Connection& c) {
    std::unique_ptr<sql::Statement> st(c.createStatement());
    st->execute("CREATE TABLE IF NOT EXISTS " + quoted_table_ +
                " ("
                "kd BINARY(32) NOT NULL, "
                "kh BIGINT UNSIGNED NOT NULL, "
                "k MEDIUMBLOB NOT NULL, "
                "v LONGBLOB NOT NULL, "
                "PRIMARY KEY (kd), "
                "KEY kh_kd (kh, kd)"
                ") ENGINE=InnoDB ROW_FORMAT=DYNAMIC");

    const std::string name = opts_.database + "." + opts_.table;
    const std::string prefix = "table " + name + " exists with another layout (";
    const std::string suffix =
        "); it is left as it is: give another table= or database=, or move it away";

    std::unique_ptr<sql::PreparedStatement> q(c.prepareStatement(
        "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND "
        "TABLE_NAME = ?"));
    q->setString(1, opts_.table);
    std::unique_ptr<sql::ResultSet> rs(q->executeQuery());
    if (!rs->next()) return prefix + "not found after CREATE TABLE" + suffix;
    std::string engine = rs->getString(1).asStdString();
    if (engine != "InnoDB") return prefix + "engine " + engine + ", not InnoDB" + suffix;

    struct Want {
      const char* name;
      std::vector<std::string> types;
    };
    const std::vector<Want> want = {
        {"kd", {"binary(32)"}},
        {"kh", {"bigint(20) unsigned", "bigint unsigned"}},
        {"k", {"mediumblob", "longblob"}},
        {"v", {"longblob"}},
    };
    q.reset(c.prepareStatement(
        "SELECT COLUMN_NAME, LOWER(COLUMN_TYPE), IS_NULLABLE FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION"));
    q->setString(1, opts_.table);
    rs.reset(q->executeQuery());
    size_t seen = 0;
    while (rs->next()) {
      const std::string col = rs->getString(1).asStdString();
      const std::string type = rs->getString(2).asStdString();
      const std::string nullable = rs->getString(3).asStdString();
      const Want* w = nullptr;
      for (const Want& x : want) {
        if (col == x.name) w = &x;
      }
      if (w == nullptr) return prefix + "unexpected column " + col + suffix;
      bool type_ok = false;
      for (const std::string& t : w->types) type_ok = type_ok || type == t;
      if (!type_ok) {
        return prefix + "column " + col + " is " + type + ", expected " + w->types[0] + suffix;
      }
      if (nullable != "NO") return prefix + "column " + col + " allows NULL" + suffix;
      ++seen;
    }
    if (seen != want.size()) {
      return prefix + "expected exactly the columns kd, kh, k, v" + suffix;
    }

    q.reset(c.prepareStatement(
        "SELECT INDEX_NAME, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) "
        "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND "
        "TABLE_NAME = ? AND INDEX_NAME IN ('PRIMARY', 'kh_kd') GROUP BY INDEX_NAME"));
    q->setString(1, opts_.table);
    rs.reset(q->executeQuery());
    bool primary = false, by_hash = false;
    while (rs->next()) {
      const std::string index = rs->getString(1).asStdString();
      const std::string cols = rs->getString(2).asStdString();
      if (index == "PRIMARY") primary = cols == "kd";
      if (index == "kh_kd") by_hash = cols == "kh,kd" || cols == "kh";
    }
    if (!primary) return prefix + "the primary key must be (kd)" + suffix;
    if (!by_hash) return prefix + "index kh_kd on (kh, kd) missing" + suffix;
    return std::string();
  }

  const Options opts_;
  const std::string quoted_table_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;  // GUARDED_BY(mu_)
  int open_ = 0;                             // GUARDED_BY(mu_): idle plus lent out
};

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
    /*put_batch=*/nullptr,  // one put() each
};

}  // namespace

extern "C" DYNAMO_PLUGIN_EXPORT const dynamo_backend_api* dynamo_backend_entry(void) {
  return &kMysqlApi;
}
