#include "node/metrics_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <utility>

#include "dynamo/log.h"

namespace dynamo {

MetricsServer::MetricsServer(std::string host, uint16_t port, Render render)
    : host_(std::move(host)), port_(port), render_(std::move(render)) {}

MetricsServer::~MetricsServer() { Stop(); }

Status MetricsServer::Open() {
  server_ = std::make_unique<httplib::Server>();
  // Each connection holds a thread while it is open: enough of them that
  // a few idle or slow ones (a port scanner, a browser tab) do not hold up
  // a scrape. A connection is closed after 1 s without a request (the
  // keep-alive timeout below), or 2 s of silence within one. (Scrapes are
  // rare and small; the threads wait, they do not spin.)
  server_->new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
  server_->set_read_timeout(std::chrono::seconds(2));
  server_->set_write_timeout(std::chrono::seconds(5));
  server_->set_keep_alive_max_count(100);
  // An idle keep-alive connection holds a thread until this passes, and
  // Stop waits for it.
  server_->set_keep_alive_timeout(1);
  // SO_REUSEADDR (a restart binds at once) but not httplib's default
  // SO_REUSEPORT, with which a second node could bind the same port
  // silently and answer half the scrapes.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    auto promise = std::make_shared<std::promise<std::string>>();
    std::future<std::string> text = promise->get_future();
    render_([promise](std::string t) { promise->set_value(std::move(t)); });
    // In slices, so that a node stopping does not wait for the timeout.
    const auto give_up = std::chrono::steady_clock::now() + kRenderTimeout;
    while (text.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready &&
           !stopping_ && std::chrono::steady_clock::now() < give_up) {
    }
    if (text.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      res.status = 503;
      res.set_content("the node did not produce its metrics in time\n", "text/plain");
      return;
    }
    res.set_content(text.get(), "text/plain; version=0.0.4; charset=utf-8");
  });
  errno = 0;
  if (!server_->bind_to_port(host_, port_)) {
    const int err = errno;
    server_.reset();
    return Status::IOError("cannot listen on " + host_ + ":" + std::to_string(port_) +
                           " (--metrics-listen)" +
                           (err != 0 ? std::string(": ") + std::strerror(err) : std::string()));
  }
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    stopped_ = true;
  });
  log::Info("serving metrics on http://" + host_ + ":" + std::to_string(port_) + "/metrics");
  return Status::OK();
}

void MetricsServer::Stop() {
  stopping_ = true;
  if (!thread_.joinable()) return;
  // stop() does nothing until the thread is listening, and must be called
  // once: wait for that first.
  while (!server_->is_running() && !stopped_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!stopped_) server_->stop();
  thread_.join();
}

}  // namespace dynamo
