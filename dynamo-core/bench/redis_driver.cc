// The redis driver (the reference): non-blocking hiredis connections, one
// per client, multiplexed by one poll() loop per thread; SET and GET of the
// same keys and values as the dynamo driver. Redis answers each connection
// in order, so a client's outstanding requests are a FIFO.
#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "driver.h"

namespace dynamo::bench {
namespace {

struct Pending {
  bool is_put = false;
  uint64_t key = 0;
  Clock::time_point start;
};

struct RedisClient {
  redisContext* ctx = nullptr;
  std::vector<Pending> fifo;  // ring buffer of depth entries
  size_t head = 0, count = 0;
  bool want_write = false;
};

class RedisDriver final : public Driver {
 public:
  RedisDriver(const BenchOptions& opts, int thread, int first_client, int clients,
              const ZipfianChooser* zipf)
      : opts_(opts),
        first_client_(static_cast<size_t>(first_client)),
        timeout_(std::chrono::milliseconds(opts.timeout_ms)),
        gen_(opts, zipf, opts.seed * 7919 + static_cast<uint64_t>(thread) + 1),
        value_(MakeValue(opts.value_size, opts.seed + static_cast<uint64_t>(thread))),
        clients_(static_cast<size_t>(clients)),
        fds_(static_cast<size_t>(clients)) {
    for (auto& c : clients_) c.fifo.resize(static_cast<size_t>(opts.depth));
    for (size_t i = 0; i < clients_.size(); ++i) Connect(i);
  }

  ~RedisDriver() override {
    for (auto& c : clients_) {
      if (c.ctx) redisFree(c.ctx);
    }
  }

  void Preload(RunControl* ctl, ThreadStats* stats) override { Loop(ctl, stats, true); }
  void Run(RunControl* ctl, ThreadStats* stats) override { Loop(ctl, stats, false); }

 private:
  void Connect(size_t i) {
    RedisClient& c = clients_[i];
    if (c.ctx) redisFree(c.ctx);
    // Clients spread round-robin over the targets by their global index.
    const auto& target = opts_.redis_targets[(first_client_ + i) % opts_.redis_targets.size()];
    c.ctx = redisConnectNonBlock(target.host.c_str(), target.port);
    c.want_write = false;
    if (c.ctx == nullptr || c.ctx->err) {
      last_error_ = std::string("cannot connect to redis: ") + (c.ctx ? c.ctx->errstr : "oom");
      if (c.ctx) redisFree(c.ctx);
      c.ctx = nullptr;
      return;
    }
    // Wait for the connection (loopback: at once) so a refusal shows here.
    pollfd p{c.ctx->fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof(err);
    if (poll(&p, 1, opts_.timeout_ms) != 1 ||
        getsockopt(c.ctx->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      last_error_ = std::string("cannot connect to redis: ") + (err ? strerror(err) : "timeout");
      redisFree(c.ctx);
      c.ctx = nullptr;
    }
  }

  void Loop(RunControl* ctl, ThreadStats* stats, bool preload) {
    ctl_ = ctl;
    stats_ = stats;
    preload_ = preload;
    exhausted_ = false;
    if (!last_error_.empty()) stats->NoteError(last_error_);
    for (size_t i = 0; i < clients_.size(); ++i) Fill(i);
    auto last_scan = Clock::now();
    while (busy_ > 0 || !exhausted_) {
      for (size_t i = 0; i < clients_.size(); ++i) {
        const RedisClient& c = clients_[i];
        fds_[i].fd = c.ctx && c.count ? c.ctx->fd : -1;  // -1: ignored by poll
        fds_[i].events = static_cast<short>(POLLIN | (c.want_write ? POLLOUT : 0));
        fds_[i].revents = 0;
      }
      const int rc = poll(fds_.data(), fds_.size(), 10);
      if (rc < 0 && errno != EINTR) {
        stats->NoteError(std::string("poll: ") + strerror(errno));
        break;
      }
      for (size_t i = 0; rc > 0 && i < clients_.size(); ++i) {
        const short ev = fds_[i].revents;
        if (ev == 0) continue;
        if (ev & (POLLIN | POLLERR | POLLHUP)) Read(i);
        if ((ev & POLLOUT) && clients_[i].ctx) Flush(i);
      }
      const auto now = Clock::now();
      if (now - last_scan >= std::chrono::milliseconds(10)) {
        last_scan = now;
        Scan(now);
      }
    }
  }

  // Tops client i up to its depth, then writes what it appended.
  void Fill(size_t i) {
    RedisClient& c = clients_[i];
    if (c.ctx == nullptr) return;
    bool appended = false;
    while (c.count < c.fifo.size() && !exhausted_) {
      bool is_put;
      uint64_t key;
      if (preload_) {
        if (!ctl_->ClaimPreloadKey(opts_.keys, &key)) {
          exhausted_ = true;
          break;
        }
        is_put = true;
      } else {
        if (!ctl_->Claim()) {
          exhausted_ = true;
          break;
        }
        is_put = gen_.NextIsPut();
        key = gen_.NextKey();
      }
      FormatKey(key, key_);
      const char* argv[3] = {is_put ? "SET" : "GET", key_, value_.data()};
      const size_t argvlen[3] = {3, kKeyBytes, value_.size()};
      if (redisAppendCommandArgv(c.ctx, is_put ? 3 : 2, argv, argvlen) != REDIS_OK) {
        Lost(is_put, std::string("redis: ") + c.ctx->errstr, false);
        continue;
      }
      Pending& p = c.fifo[(c.head + c.count) % c.fifo.size()];
      p.is_put = is_put;
      p.key = key;
      p.start = Clock::now();
      ++c.count;
      ++busy_;
      appended = true;
    }
    if (appended) Flush(i);
  }

  void Flush(size_t i) {
    RedisClient& c = clients_[i];
    int done = 0;
    if (redisBufferWrite(c.ctx, &done) != REDIS_OK) {
      Reset(i, std::string("redis write: ") + c.ctx->errstr, false);
      return;
    }
    c.want_write = !done;
  }

  void Read(size_t i) {
    RedisClient& c = clients_[i];
    if (redisBufferRead(c.ctx) != REDIS_OK) {
      Reset(i, std::string("redis read: ") + c.ctx->errstr, false);
      return;
    }
    for (;;) {
      void* raw = nullptr;
      if (redisGetReply(c.ctx, &raw) != REDIS_OK) {
        Reset(i, std::string("redis: ") + c.ctx->errstr, false);
        return;
      }
      if (raw == nullptr) break;
      auto* reply = static_cast<redisReply*>(raw);
      if (c.count == 0) {  // cannot happen: redis answers each command once
        freeReplyObject(reply);
        continue;
      }
      const Pending p = c.fifo[c.head];
      c.head = (c.head + 1) % c.fifo.size();
      --c.count;
      --busy_;
      // dynamo's GET of a key with siblings (SETs racing through two
      // nodes) answers -CONFLICT: the store's answer, counted apart.
      const bool conflict = !p.is_put && reply->type == REDIS_REPLY_ERROR &&
                            std::string_view(reply->str, reply->len).rfind("CONFLICT ", 0) == 0;
      const bool ok = reply->type != REDIS_REPLY_ERROR || conflict;
      if (!ok) {
        Lost(p.is_put, std::string("redis error reply: ") + reply->str, false);
      } else if (preload_) {
        stats_->Tick(false);
      } else {
        OpStats& s = p.is_put ? stats_->put : stats_->get;
        s.latency.Record(MicrosSince(p.start, Clock::now()));
        if (!p.is_put && reply->type == REDIS_REPLY_NIL) ++s.not_found;
        if (conflict) ++s.conflicts;
        stats_->Finished(p.is_put, false);
      }
      freeReplyObject(reply);
    }
    Fill(i);
  }

  void Lost(bool is_put, std::string_view why, bool timeout) {
    stats_->NoteError(why);
    if (preload_) {
      ++stats_->preload_errors;
      stats_->Tick(true);
      return;
    }
    if (timeout) ++(is_put ? stats_->put : stats_->get).timeouts;
    stats_->Finished(is_put, true);
  }

  // Counts everything outstanding on client i as lost and reconnects: after
  // a timeout or a broken connection, replies can no longer be matched.
  void Reset(size_t i, const std::string& why, bool timeout) {
    RedisClient& c = clients_[i];
    for (; c.count > 0; --c.count, --busy_) {
      Lost(c.fifo[c.head].is_put, why, timeout);
      c.head = (c.head + 1) % c.fifo.size();
    }
    Connect(i);
  }

  void Scan(Clock::time_point now) {
    for (size_t i = 0; i < clients_.size(); ++i) {
      RedisClient& c = clients_[i];
      if (c.count > 0 && now - c.fifo[c.head].start > timeout_) {
        Reset(i, "timeout: no reply within " + std::to_string(opts_.timeout_ms) + " ms", true);
      }
      if (c.ctx == nullptr && !exhausted_) {
        Connect(i);
        if (c.ctx == nullptr) {  // still unreachable: one error per claimed op
          if (preload_ ? ctl_->ClaimPreloadKey(opts_.keys, &scratch_) : ctl_->Claim()) {
            Lost(gen_.NextIsPut(), last_error_, false);
          } else {
            exhausted_ = true;
          }
        }
      }
      if (c.ctx && c.count < c.fifo.size()) Fill(i);
    }
  }

  const BenchOptions& opts_;
  const size_t first_client_;  // global index of clients_[0]
  const Clock::duration timeout_;
  OpGenerator gen_;
  const std::string value_;
  char key_[kKeyBytes + 1] = {};
  std::vector<RedisClient> clients_;
  std::vector<pollfd> fds_;
  size_t busy_ = 0;
  bool exhausted_ = false;
  bool preload_ = false;
  RunControl* ctl_ = nullptr;
  ThreadStats* stats_ = nullptr;
  std::string last_error_;
  uint64_t scratch_ = 0;
};

}  // namespace

std::unique_ptr<Driver> MakeRedisDriver(const BenchOptions& opts, int thread, int first_client,
                                        int clients, const ZipfianChooser* zipf) {
  return std::make_unique<RedisDriver>(opts, thread, first_client, clients, zipf);
}

namespace {
std::string ProbeOneRedis(const BenchOptions& opts, const BenchOptions::RedisTarget& target) {
  const std::string where = target.Url();
  timeval tv{opts.timeout_ms / 1000, (opts.timeout_ms % 1000) * 1000};
  redisContext* c = redisConnectWithTimeout(target.host.c_str(), target.port, tv);
  if (c == nullptr) return "cannot reach " + where + ": out of memory";
  std::string error;
  if (c->err) {
    error = "cannot reach " + where + ": " + c->errstr;
  } else {
    redisSetTimeout(c, tv);
    auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
    if (reply == nullptr) {
      error = "cannot reach " + where + ": " + c->errstr;
    } else {
      if (reply->type == REDIS_REPLY_ERROR) error = where + " refused PING: " + reply->str;
      freeReplyObject(reply);
    }
  }
  redisFree(c);
  return error;
}

}  // namespace

std::string ProbeRedis(const BenchOptions& opts) {
  for (const auto& target : opts.redis_targets) {
    if (std::string err = ProbeOneRedis(opts, target); !err.empty()) return err;
  }
  return "";
}

}  // namespace dynamo::bench
