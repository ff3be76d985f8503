// MetricsServer: GET /metrics over HTTP (--metrics-listen, DESIGN.md 3.9),
// served by cpp-httplib on threads of its own.
//
// The text is made by the node on its loop (Render): the HTTP thread asks
// and waits for it, at most kRenderTimeout, then answers 503. Any other
// path is 404, any other method 405 (httplib's). Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "dynamo/status.h"

namespace httplib {
class Server;
}

namespace dynamo {

class MetricsServer {
 public:
  static constexpr std::chrono::seconds kRenderTimeout{5};
  // Connections served at once (docs/operations.md).
  static constexpr size_t kThreads = 16;
  // Asked on an HTTP thread; calls done once with the text, from any thread.
  using Render = std::function<void(std::function<void(std::string)> done)>;

  MetricsServer(std::string host, uint16_t port, Render render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds HOST:PORT and starts serving; the error is one line.
  Status Open();
  // Stops serving; waits for requests in progress. Idempotent.
  void Stop();

 private:
  std::string host_;
  uint16_t port_;
  Render render_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};   // the serving thread returned
  std::atomic<bool> stopping_{false};  // Stop was called
};

}  // namespace dynamo
