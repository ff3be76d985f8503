#include "mysql_schema.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <memory>
#include <vector>

namespace dynamo::mysql {

std::string EnsureTable(sql::Connection& c, const Options& opts_) {
  const std::string quoted_table_ = "`" + opts_.table + "`";
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

}  // namespace dynamo::mysql
