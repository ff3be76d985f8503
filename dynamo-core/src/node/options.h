// dynamod's options (DESIGN.md 3.1): command line and INI config file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dynamo/transport/curve.h"

namespace dynamo {

struct NodeOptions {
  // Unique, stable node name. Default: host:port of listen.
  std::string node_id;
  // ZeroMQ endpoint for clients and peers. Default: tcp://127.0.0.1:7101.
  std::string listen = "tcp://127.0.0.1:7101";
  // Nodes to contact to join a cluster. Default: none (a one-node cluster).
  std::vector<std::string> seeds;
  // --resolver: "NAME-or-PATH" or "PREFIX=NAME-or-PATH" (DESIGN.md 3.8).
  std::vector<std::string> resolvers;
  // Node state and the file engine's data. Default: ./data/<node_id>.
  std::string data_dir;
  // memory, file, mysql, or a path to a plugin .so. Default: file.
  std::string backend = "file";
  // Passed to the engine as is. Default: none.
  std::vector<std::pair<std::string, std::string>> backend_opts;
  // Where a backend NAME is looked up. Default: <dir of dynamod>/../lib/dynamo/plugins.
  std::string plugin_dir;
  // Cluster defaults N, R, W. Default: 3, 2, 2.
  uint32_t replicas = 3;
  uint32_t read_quorum = 2;
  uint32_t write_quorum = 2;
  // Q, only at cluster creation; a power of two. Default: 256.
  uint32_t partitions = 256;
  // Threads that run engine calls. Default: 4.
  uint32_t workers = 4;
  // Largest key and value accepted. Default: 64 KiB and 1 MiB.
  uint32_t max_key_bytes = 64u << 10;
  uint32_t max_value_bytes = 1u << 20;
  // Vector clock truncation threshold (paper 4.4). Default: 10.
  uint32_t max_clock_entries = 10;
  // How long a coordinator waits for replicas. Default: 1000 ms.
  uint32_t request_timeout_ms = 1000;
  // How long a peer may leave requests unanswered before this node takes it
  // for down (a shorter pause never does). Default: 3000 ms.
  uint32_t failure_timeout_ms = 3000;
  // Period of gossip with one random peer. Default: 1000 ms.
  uint32_t gossip_interval_ms = 1000;
  // Hinted handoff (paper 4.6): hinted keys and bytes held at most, and how
  // often hints are offered to their owners. Default: 100000, 256 MiB, 1000 ms.
  uint64_t max_hints = 100000;
  uint64_t max_hint_bytes = 256ull << 20;
  uint32_t handoff_interval_ms = 1000;
  // Anti-entropy (paper 4.7): pause between two partition exchanges (0
  // turns it off), repair rate in keys per second, and the foreground
  // latency at or above which it waits (0: whenever clients were served
  // since its last exchange). Default: 100 ms, 5000, 50 ms.
  uint32_t anti_entropy_interval_ms = 100;
  uint32_t anti_entropy_rate = 5000;
  uint32_t anti_entropy_yield_ms = 50;
  // Rebuild of a replica that holds no data (node/rebuild.h): partitions
  // pulled at a time; 0 leaves the refill to anti-entropy. Default 4.
  uint32_t rebuild_streams = 4;
  // Admission control (paper 6.5): the client p99 (ms) above which
  // background work (anti-entropy, hint delivery, transfers) is given less
  // time; 0 turns it off. Metrics: HOST:PORT of the HTTP endpoint serving
  // GET /metrics, empty for none (DESIGN.md 3.9).
  uint32_t background_target_p99_ms = 20;
  std::string metrics_listen;
  std::string metrics_host;  // from metrics_listen
  uint16_t metrics_port = 0;
  // The Redis-protocol front end (DESIGN.md 3.6): HOST:PORT (IPv4), empty
  // for none; connections served at most; a file holding the password AUTH
  // must give (without one, only loopback clients are served). Default: off,
  // 10000, none.
  std::string redis_listen;
  std::string redis_host;  // from redis_listen
  uint16_t redis_port = 0;
  uint32_t redis_max_clients = 10000;
  std::string redis_password_file;
  std::string redis_password;  // read from the file at start; never logged
  // CURVE (DESIGN.md 3.7): the node's key pair and the keys it admits, with
  // their roles; both or neither. Read at start (the authorized keys again
  // on SIGHUP). Default: none, and the node warns that it is open.
  std::string curve_secret_key_file;
  std::string authorized_keys_file;
  // As read at start (null without); the node's loop owns them from then on
  // and holds the reloaded ones (Loop::Keys).
  std::shared_ptr<const curve::ServerKeys> curve;
  // debug, info, warn, error. Default: info.
  std::string log_level = "info";
  // --check-config: validate, load the plugin, exit. Default: false.
  bool check_config = false;
};

enum class ParseOutcome { kRun, kExit0, kUsageError };

// Parses argv (and --config FILE). On kUsageError, *error is one line; on
// kExit0, *error holds text to print (help, version).
ParseOutcome ParseNodeOptions(int argc, char** argv, NodeOptions* out, std::string* error);

}  // namespace dynamo
