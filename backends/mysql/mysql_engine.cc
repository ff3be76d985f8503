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
#include "mysql_engine.h"

#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <cinttypes>
#include <cstdio>
#include <memory>
#include <vector>

#include "dynamo/backend_plugin_util.h"
#include "mysql_schema.h"
#include "mysql_sql.h"

namespace dynamo::mysql {
namespace {

constexpr int kMaxScanBatch = 1000;
constexpr int kMinScanBatch = 16;
constexpr size_t kScanBatchBytes = 16u << 20;  // aim for batches about this large

using plugin::Fail;
using plugin::GiveBytes;
using plugin::GiveText;

}  // namespace

Engine::Engine(Options o)
    : opts_(std::move(o)), quoted_table_("`" + opts_.table + "`"), pool_(opts_) {}

dynamo_backend_status Engine::Open(char** errmsg) {
  std::unique_ptr<Conn> conn;
  try {
    conn = pool_.Connect();
  } catch (const sql::SQLException& e) {
    // Unreachable: retry later; refused (e.g. access denied): a setup error.
    return Fail(IsConnectionError(e) ? DYNAMO_BACKEND_UNAVAILABLE : DYNAMO_BACKEND_IO_ERROR, errmsg,
                "cannot connect to " + opts_.Where() + " (database " + opts_.database + ") as " +
                    opts_.user + ": " + Describe(e));
  }
  try {
    std::string problem = EnsureTable(*conn->c, opts_);
    if (!problem.empty()) return Fail(DYNAMO_BACKEND_INVALID, errmsg, problem);
    pool_.Prepare(conn.get());
  } catch (const sql::SQLException& e) {
    return Fail(IsConnectionError(e) ? DYNAMO_BACKEND_UNAVAILABLE : DYNAMO_BACKEND_IO_ERROR, errmsg,
                "cannot use table " + opts_.database + "." + opts_.table + " on " + opts_.Where() +
                    ": " + Describe(e));
  }
  pool_.Adopt(std::move(conn));
  return DYNAMO_BACKEND_OK;
}

dynamo_backend_status Engine::Get(std::string_view key, char** value, size_t* value_len,
                                  char** errmsg) {
  const std::string kd = Digest(key);
  return pool_.Run("get", errmsg, [&](Conn& conn) -> dynamo_backend_status {
    ByteStream kd_in(kd);
    conn.get->setBlob(1, &kd_in);
    std::unique_ptr<sql::ResultSet> rs(conn.get->executeQuery());
    if (!rs->next()) return DYNAMO_BACKEND_NOT_FOUND;
    sql::SQLString v = rs->getString(1);
    GiveBytes(v.asStdString(), value, value_len);
    return DYNAMO_BACKEND_OK;
  });
}

dynamo_backend_status Engine::Put(std::string_view key, uint64_t key_hash, std::string_view value,
                                  char** errmsg) {
  const std::string kd = Digest(key);
  return pool_.Run("put", errmsg, [&](Conn& conn) -> dynamo_backend_status {
    ByteStream kd_in(kd), k_in(key), v_in(value);
    conn.put->setBlob(1, &kd_in);
    conn.put->setUInt64(2, key_hash);
    conn.put->setBlob(3, &k_in);
    conn.put->setBlob(4, &v_in);
    conn.put->executeUpdate();
    return DYNAMO_BACKEND_OK;
  });
}

dynamo_backend_status Engine::Remove(std::string_view key, char** errmsg) {
  const std::string kd = Digest(key);
  int attempts = 0;
  return pool_.Run("remove", errmsg, [&](Conn& conn) -> dynamo_backend_status {
    ByteStream kd_in(kd);
    conn.del->setBlob(1, &kd_in);
    const bool retry = attempts++ > 0;
    // On a retry the first attempt may have deleted the row before its
    // connection broke: nothing left is then a success, not "not found".
    if (conn.del->executeUpdate() == 0 && !retry) return DYNAMO_BACKEND_NOT_FOUND;
    return DYNAMO_BACKEND_OK;
  });
}

dynamo_backend_status Engine::Scan(uint64_t lo, uint64_t hi, dynamo_backend_scan_fn fn, void* ctx,
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
    dynamo_backend_status rc = pool_.Run("scan", errmsg, [&](Conn& conn) -> dynamo_backend_status {
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

dynamo_backend_status Engine::Stats(char** json, char** errmsg) {
  uint64_t keys = 0, bytes = 0;
  dynamo_backend_status rc = pool_.Run("stats", errmsg, [&](Conn& conn) -> dynamo_backend_status {
    std::unique_ptr<sql::Statement> st(conn.c->createStatement());
    std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT COUNT(*) FROM " + quoted_table_));
    keys = rs->next() ? rs->getUInt64(1) : 0;
    // The table's size as InnoDB estimates it (data and index pages), not
    // a scan of every value. Names are restricted (see below): no escaping.
    rs.reset(st->executeQuery(
        "SELECT COALESCE(DATA_LENGTH + INDEX_LENGTH, 0) FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = '" +
        opts_.database + "' AND TABLE_NAME = '" + opts_.table + "'"));
    bytes = rs->next() ? rs->getUInt64(1) : 0;
    return DYNAMO_BACKEND_OK;
  });
  if (rc != DYNAMO_BACKEND_OK) return rc;
  const int open = pool_.open();
  // Database and table names are restricted to [A-Za-z0-9_$-]: no escaping.
  char text[320];
  std::snprintf(text, sizeof text,
                "{\"engine\":\"mysql\",\"database\":\"%s\",\"table\":\"%s\",\"pool\":%d,"
                "\"connections\":%d,\"keys\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
                opts_.database.c_str(), opts_.table.c_str(), opts_.pool, open, keys, bytes);
  GiveText(text, json);
  return DYNAMO_BACKEND_OK;
}

}  // namespace dynamo::mysql
