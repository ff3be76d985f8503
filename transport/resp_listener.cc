#include "dynamo/transport/resp_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dynamo {
namespace {

constexpr size_t kMaxReadPerTurn = 4u << 20;  // then other connections get a turn
// Commands run for one connection in one loop turn, and bytes of replies
// they may produce then (an engine on the loop answers at once); the rest
// wait for the next turn, so one client's pipeline of large GETs does not
// hold every other client for the seconds it takes to run.
constexpr size_t kMaxCommandsPerTurn = 1024;
constexpr size_t kMaxReplyBytesPerTurn = 4u << 20;
constexpr size_t kMaxPendingCommands = 100000;

}  // namespace

struct RespListener::Conn {
  int fd = -1;
  Client client;
  std::string in;
  resp::Skip skip;
  bool skipping = false;
  std::deque<std::optional<std::string>> slots;  // replies, in request order
  uint64_t first_slot = 0;                       // the slot of slots.front()
  uint64_t next_slot = 0;
  std::string out;
  size_t out_off = 0;
  std::optional<uint64_t> close_after;  // QUIT, a protocol error
  bool reading = true;
  bool backlogged = false;  // whole commands wait in `in` for the next turn
  uint32_t events = 0;      // what the loop watches now
};

RespListener::RespListener(ZmqLoop& loop, Handler& handler) : loop_(loop), handler_(handler) {
  loop_.AtTurnEnd([this] { Flush(); });
}

RespListener::~RespListener() {
  if (backlog_scheduled_) loop_.Cancel(backlog_timer_);
  for (auto& [id, c] : conns_) {
    loop_.UnwatchFd(c->fd);
    ::close(c->fd);
  }
  if (listen_fd_ >= 0) {
    loop_.UnwatchFd(listen_fd_);
    ::close(listen_fd_);
  }
}

Status RespListener::Open(const Options& options) {
  options_ = options;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(options.port);
  if (::inet_pton(AF_INET, options.host.c_str(), &addr.sin_addr) != 1) {
    return Status::InvalidArgument("--redis-listen: '" + options.host + "' is not an IPv4 address");
  }
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Status::FromErrno("socket", errno);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const std::string where = options.host + ":" + std::to_string(options.port);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Status::FromErrno("cannot listen on " + where + " (--redis-listen)", errno);
  }
  if (::listen(listen_fd_, 511) != 0) return Status::FromErrno("listen on " + where, errno);
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  return loop_.WatchFd(listen_fd_, EPOLLIN, [this](uint32_t) { Accept(); });
}

void RespListener::Accept() {
  for (;;) {
    sockaddr_storage peer{};
    socklen_t len = sizeof(peer);
    const int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or out of descriptors: try again on the next wake-up
    if (conns_.size() >= options_.max_clients) {
      static const char kFull[] = "-ERR max number of clients reached\r\n";
      (void)!::write(fd, kFull, sizeof(kFull) - 1);
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->client.id = next_id_++;
    if (peer.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&peer);
      c->client.loopback = ntohl(a->sin_addr.s_addr) == INADDR_LOOPBACK;
    } else if (peer.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&peer);
      c->client.loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
    }
    Conn& ref = *c;
    conns_.emplace(ref.client.id, std::move(c));
    Watch(ref);
  }
}

void RespListener::Watch(Conn& c) {
  const uint32_t want =
      (c.reading ? uint32_t{EPOLLIN} : 0u) | (c.out_off < c.out.size() ? uint32_t{EPOLLOUT} : 0u);
  if (want == c.events) return;
  c.events = want;
  const uint64_t id = c.client.id;
  if (!loop_
           .WatchFd(c.fd, want,
                    [this, id](uint32_t ev) {
                      auto it = conns_.find(id);
                      if (it == conns_.end()) return;
                      Conn& conn = *it->second;
                      if (ev & (EPOLLERR | EPOLLHUP)) ev |= EPOLLIN;  // read finds out
                      if (ev & EPOLLOUT) dirty_.insert(id);
                      if (ev & EPOLLIN) OnReadable(conn);
                    })
           .ok()) {
    Drop(id);
  }
}

void RespListener::OnReadable(Conn& c) {
  const uint64_t id = c.client.id;
  bool eof = false;
  // One read when the socket had less than a chunk (the usual case: epoll
  // is level-triggered, so what arrives later wakes the loop again); more
  // only while chunks come back full, up to a bound per turn.
  for (size_t got = 0; got < kMaxReadPerTurn;) {
    const ssize_t r = ::read(c.fd, read_buf_.data(), read_buf_.size());
    if (r > 0) {
      c.in.append(read_buf_.data(), static_cast<size_t>(r));
      got += static_cast<size_t>(r);
      if (static_cast<size_t>(r) < read_buf_.size()) break;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    eof = true;  // closed by the client, or an error
    break;
  }
  if (!c.close_after) Process(c);
  if (eof) return Drop(id);
}

uint64_t RespListener::NewSlot(Conn& c) {
  c.slots.emplace_back();
  return c.next_slot++;
}

void RespListener::ReplyError(Conn& c, std::string_view message, bool close) {
  const uint64_t slot = NewSlot(c);
  std::string e;
  resp::AppendError(&e, message);
  Reply(c.client.id, slot, std::move(e));
  if (close) CloseAfter(c.client.id, slot);
}

bool RespListener::WantsInput(const Conn& c) const {
  return !c.close_after && !c.backlogged && c.out.size() - c.out_off < options_.max_unwritten &&
         c.slots.size() <= kMaxPendingCommands;
}

void RespListener::RunBacklog() {
  backlog_scheduled_ = false;
  std::vector<uint64_t> ids(backlog_.begin(), backlog_.end());
  backlog_.clear();
  for (uint64_t id : ids) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    it->second->backlogged = false;
    Process(*it->second);
  }
}

void RespListener::Process(Conn& c) {
  std::vector<std::string_view> args;
  size_t pos = 0;
  bool incomplete = false;  // the buffer ends inside a command
  const size_t out_at_start = c.out.size();
  size_t commands = 0;
  while (pos < c.in.size() && WantsInput(c)) {
    if (commands >= kMaxCommandsPerTurn || c.out.size() - out_at_start >= kMaxReplyBytesPerTurn) {
      // This turn's share is spent: the rest runs in the next turn, and
      // nothing more is read meanwhile.
      c.backlogged = true;
      backlog_.insert(c.client.id);
      if (!backlog_scheduled_) {
        backlog_scheduled_ = true;
        backlog_timer_ = loop_.After(std::chrono::milliseconds(0), [this] { RunBacklog(); });
      }
      break;
    }
    const std::string_view buf = std::string_view(c.in).substr(pos);
    size_t used = 0;
    std::string why;
    if (c.skipping) {
      bool done = false;
      if (resp::Discard(buf, options_.limits, &c.skip, &used, &done, &why) == resp::Parse::kError) {
        ReplyError(c, "ERR " + why, /*close=*/true);
        break;
      }
      pos += used;
      if (!done) {
        incomplete = true;
        break;
      }
      c.skipping = false;
      ReplyError(c,
                 "ERR argument of " + std::to_string(c.skip.too_large) +
                     " bytes exceeds the limit of " + std::to_string(options_.limits.max_bulk) +
                     " bytes",
                 /*close=*/false);
      continue;
    }
    const resp::Parse p = resp::ParseCommand(buf, options_.limits, &args, &used, &c.skip, &why);
    if (p == resp::Parse::kNeedMore) {
      incomplete = true;
      break;
    }
    if (p == resp::Parse::kError) {
      ReplyError(c, "ERR " + why, /*close=*/true);
      break;
    }
    pos += used;
    if (p == resp::Parse::kTooLarge) {
      c.skipping = true;
      continue;
    }
    if (args.empty()) continue;  // an empty inline line or "*0"
    handler_.OnCommand(c.client, NewSlot(c), args);
    ++commands;
  }
  // Commands left unparsed (the client's replies piled up) wait in c.in
  // until Flush resumes reading.
  c.in.erase(0, pos);
  // A command still incomplete may not hold more than a command may need.
  const size_t cap = options_.limits.max_bulk * 2 + options_.limits.max_inline + (1u << 20);
  if (incomplete && !c.skipping && c.in.size() > cap) {
    ReplyError(c, "ERR Protocol error: a request larger than " + std::to_string(cap) + " bytes",
               /*close=*/true);
    c.in.clear();
  }
  if (WantsInput(c) != c.reading) {
    c.reading = WantsInput(c);
    Watch(c);
  }
}

void RespListener::Reply(uint64_t conn, uint64_t slot, std::string bytes) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  if (slot < c.first_slot || slot - c.first_slot >= c.slots.size()) return;
  c.slots[slot - c.first_slot] = std::move(bytes);
  while (!c.slots.empty() && c.slots.front()) {
    if (c.out.empty()) {
      c.out = std::move(*c.slots.front());
    } else {
      c.out += *c.slots.front();
    }
    c.slots.pop_front();
    ++c.first_slot;
  }
  dirty_.insert(conn);
}

void RespListener::CloseAfter(uint64_t conn, uint64_t slot) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  it->second->close_after = slot;
  dirty_.insert(conn);
}

bool RespListener::Write(Conn& c) {
  while (c.out_off < c.out.size()) {
    const ssize_t w =
        ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (w > 0) {
      c.out_off += static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return false;
  }
  if (c.out_off == c.out.size()) {
    c.out.clear();
    c.out_off = 0;
  } else if (c.out_off > (1u << 20)) {
    c.out.erase(0, c.out_off);
    c.out_off = 0;
  }
  return true;
}

void RespListener::Flush() {
  if (dirty_.empty()) return;
  std::vector<uint64_t> ids(dirty_.begin(), dirty_.end());
  dirty_.clear();
  for (uint64_t id : ids) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    Conn& c = *it->second;
    if (!Write(c)) {
      Drop(id);
      continue;
    }
    if (c.close_after && c.first_slot > *c.close_after && c.out.empty()) {
      Drop(id);
      continue;
    }
    const bool was_reading = c.reading;
    c.reading = WantsInput(c);
    // Reading resumed: what is buffered may hold whole commands already;
    // their replies go out now, not at the end of a later turn.
    if (c.reading && !was_reading && !c.in.empty()) {
      Process(c);
      if (!Write(c)) {
        Drop(id);
        continue;
      }
    }
    Watch(c);
  }
}

void RespListener::Drop(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  loop_.UnwatchFd(it->second->fd);
  ::close(it->second->fd);
  conns_.erase(it);
  dirty_.erase(id);
  backlog_.erase(id);
}

}  // namespace dynamo
