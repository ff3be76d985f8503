#include "mysql_pool.h"

#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <algorithm>

namespace dynamo::mysql {

ConnectionPool::ConnectionPool(const Options& opts)
    : opts_(opts), quoted_table_("`" + opts.table + "`") {
  idle_.reserve(static_cast<size_t>(opts_.pool));  // Release() then never allocates
}

void ConnectionPool::Adopt(std::unique_ptr<Conn> conn) {
  std::lock_guard<std::mutex> lock(mu_);
  ++open_;
  idle_.push_back(std::move(conn));
}

int ConnectionPool::open() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_;
}

std::unique_ptr<Conn> ConnectionPool::Acquire(bool fresh, bool* reused) {
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

void ConnectionPool::Release(std::unique_ptr<Conn> c, bool healthy) {
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

void ConnectionPool::DropIdle() {
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

std::unique_ptr<Conn> ConnectionPool::Connect() {
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

void ConnectionPool::Prepare(Conn* conn) {
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

}  // namespace dynamo::mysql
