// The mysql engine's connection pool: at most `pool` connections, each with
// its prepared statements. A connection that fails at the network level is
// dropped (with every idle one, likely as stale after a server restart) and
// the call retried once on a fresh one; while the server is down calls fail
// with UNAVAILABLE after at most connect_timeout. Thread-safe.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dynamo/backend_plugin.h"
#include "dynamo/backend_plugin_util.h"
#include "mysql_options.h"
#include "mysql_sql.h"

namespace dynamo::mysql {

class ConnectionPool {
 public:
  explicit ConnectionPool(const Options& opts);

  // Adds a connection made (and checked) elsewhere, e.g. at open.
  void Adopt(std::unique_ptr<Conn> conn);
  // Connections open now (idle plus lent out).
  int open() const;

  // A new connection with the session settings (strict SQL mode, lock and
  // statement limits below read_timeout). Throws sql::SQLException.
  std::unique_ptr<Conn> Connect();
  // Prepares the engine's statements on conn. Throws sql::SQLException.
  void Prepare(Conn* conn);

  // Borrows a connection and runs body(conn); maps SQL errors to statuses.
  template <typename Body>
  dynamo_backend_status Run(const char* what, char** errmsg, Body&& body) {
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<Conn> c;
      bool reused = false;
      try {
        c = Acquire(/*fresh=*/attempt > 0, &reused);
      } catch (const sql::SQLException& e) {
        return plugin::Fail(DYNAMO_BACKEND_UNAVAILABLE, errmsg,
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
          return plugin::Fail(DYNAMO_BACKEND_IO_ERROR, errmsg,
                              std::string("") + what + ": " + Describe(e));
        }
        DropIdle();  // after a server restart they are all stale
        if (reused && attempt == 0) continue;
        return plugin::Fail(DYNAMO_BACKEND_UNAVAILABLE, errmsg,
                            "server unreachable: " + opts_.Where() + ": " + Describe(e));
      }
    }
  }

 private:
  // Hands a connection back to the pool when it goes out of scope, keeping
  // it only when marked healthy.
  class Lease {
   public:
    Lease(ConnectionPool* e, std::unique_ptr<Conn> c) : e_(e), c_(std::move(c)) {}
    ~Lease() {
      if (c_) e_->Release(std::move(c_), healthy_);
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Conn& conn() { return *c_; }
    void set_healthy(bool h) { healthy_ = h; }

   private:
    ConnectionPool* e_;
    std::unique_ptr<Conn> c_;
    bool healthy_ = false;
  };

  // An idle connection (unless fresh), else a new one when the pool has
  // room, else waits for one to come back. Throws sql::SQLException.
  std::unique_ptr<Conn> Acquire(bool fresh, bool* reused);
  void Release(std::unique_ptr<Conn> c, bool healthy);
  void DropIdle();

  const Options& opts_;
  const std::string quoted_table_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;  // GUARDED_BY(mu_)
  int open_ = 0;                             // GUARDED_BY(mu_): idle plus lent out
};

}  // namespace dynamo::mysql
