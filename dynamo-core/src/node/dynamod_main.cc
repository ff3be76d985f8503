// dynamod: one dynamo node (DESIGN.md 3.1).
//
// Exit status: 0 after a clean stop on SIGTERM/SIGINT; 2 on a bad option;
// 1 when the node cannot start (plugin, engine, data folder, listen address)
// or fails while running. Every failure is one line on stderr.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "dynamo/backend.h"
#include "dynamo/log.h"
#include "dynamo/resolver.h"
#include "node/migration.h"
#include "node/node.h"
#include "node/options.h"

namespace {

// --check-config: everything a start checks before it opens anything. The
// engine's own options are checked by the engine when it opens.
int CheckConfig(const dynamo::NodeOptions& o) {
  auto plugin = dynamo::BackendPlugin::Load(o.backend, o.plugin_dir);
  if (!plugin.ok()) {
    std::fprintf(stderr, "dynamod: %s\n", plugin.status().message().c_str());
    return 1;
  }
  // A migration's record names the engine this node must start on.
  auto record = dynamo::RecordedEngine(o.data_dir, (*plugin)->name());
  if (!record.ok() && !record.status().IsNotFound()) {
    std::fprintf(stderr, "dynamod: %s\n", record.status().message().c_str());
    return 1;
  }
  auto resolvers = dynamo::Resolvers::Load(o.resolvers, o.plugin_dir);
  if (!resolvers.ok()) {
    std::fprintf(stderr, "dynamod: %s\n", resolvers.status().message().c_str());
    return 1;
  }
  // The data folder must exist and be writable, or be creatable.
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir = fs::absolute(o.data_dir, ec);
  fs::path probe = dir;
  while (!probe.empty() && !fs::exists(probe, ec)) {
    if (probe == probe.parent_path()) break;
    probe = probe.parent_path();
  }
  if (!fs::is_directory(probe, ec) || ::access(probe.c_str(), W_OK | X_OK) != 0) {
    std::fprintf(stderr, "dynamod: data folder %s: %s is not a writable folder\n",
                 o.data_dir.c_str(), probe.c_str());
    return 1;
  }
  std::printf("configuration OK: node %s, listen %s, engine %s %s (%s), data folder %s%s%s\n",
              o.node_id.c_str(), o.listen.c_str(), (*plugin)->name().c_str(),
              (*plugin)->version().c_str(), (*plugin)->path().c_str(), o.data_dir.c_str(),
              probe == dir ? "" : " (to be created)",
              resolvers->empty() ? "" : (", resolvers " + resolvers->Describe()).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  dynamo::NodeOptions options;
  std::string message;
  switch (dynamo::ParseNodeOptions(argc, argv, &options, &message)) {
    case dynamo::ParseOutcome::kExit0:
      std::printf("%s\n", message.c_str());
      return 0;
    case dynamo::ParseOutcome::kUsageError:
      std::fprintf(stderr, "dynamod: %s (see dynamod --help)\n", message.c_str());
      return 2;
    case dynamo::ParseOutcome::kRun:
      break;
  }
  if (options.check_config) return CheckConfig(options);
  using dynamo::log::Level;
  dynamo::log::SetLevel(options.log_level == "debug"   ? Level::kDebug
                        : options.log_level == "warn"  ? Level::kWarn
                        : options.log_level == "error" ? Level::kError
                                                       : Level::kInfo);
  dynamo::log::SetTag("dynamod[" + options.node_id + "]");

  // Block the stop signals in every thread (threads inherit the mask) and
  // receive them through a signalfd that the network loop polls.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);
  int stop_fd = signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
  if (stop_fd < 0) {
    std::fprintf(stderr, "dynamod: signalfd: %s\n", std::strerror(errno));
    return 1;
  }
  // SIGHUP reloads the authorized keys (DESIGN.md 3.7), on the loop too.
  sigset_t reload;
  sigemptyset(&reload);
  sigaddset(&reload, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &reload, nullptr);
  int reload_fd = signalfd(-1, &reload, SFD_CLOEXEC | SFD_NONBLOCK);
  if (reload_fd < 0) {
    std::fprintf(stderr, "dynamod: signalfd: %s\n", std::strerror(errno));
    return 1;
  }

  int rc = 0;
  {
    dynamo::Node node(options);
    dynamo::Status s = node.Start();
    if (!s.ok()) {
      std::fprintf(stderr, "dynamod: %s\n", s.message().c_str());
      return 1;
    }
    s = node.Run(stop_fd, reload_fd);
    if (!s.ok()) {
      std::fprintf(stderr, "dynamod: %s\n", s.message().c_str());
      rc = 1;
    }
  }
  ::close(stop_fd);
  ::close(reload_fd);
  if (rc == 0) dynamo::log::Info("stopped cleanly");
  return rc;
}
