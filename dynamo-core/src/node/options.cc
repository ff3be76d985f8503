#include "node/options.h"

#include <arpa/inet.h>

#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "dynamo/option_error.h"

namespace dynamo {
namespace po = boost::program_options;

namespace {

std::string DefaultPluginDir(const char* argv0) {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  std::string exe = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string(argv0);
  auto slash = exe.rfind('/');
  std::string dir = slash == std::string::npos ? "." : exe.substr(0, slash);
  return std::filesystem::path(dir + "/../lib/dynamo/plugins").lexically_normal().string();
}

// "tcp://HOST:PORT" -> "HOST:PORT"; anything else as is.
std::string EndpointToId(const std::string& ep) {
  auto p = ep.find("://");
  return p == std::string::npos ? ep : ep.substr(p + 3);
}

bool IsPowerOfTwo(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

ParseOutcome ParseNodeOptions(int argc, char** argv, NodeOptions* o, std::string* error) {
  std::string config;
  po::options_description desc("dynamod options");
  // clang-format off
  desc.add_options()
    ("help,h", "print this help and exit")
    ("version", "print the version and exit")
    ("config", po::value(&config), "INI file with any of these options (name = value); "
                                   "the command line overrides it")
    ("check-config", po::bool_switch(&o->check_config), "check the options and the config "
     "file, load the engine plugin (opening nothing) and exit: 0 when all is well")
    ("node-id", po::value(&o->node_id), "unique, stable node name (default: host:port of --listen)")
    ("listen", po::value(&o->listen)->default_value(o->listen),
     "ZeroMQ endpoint for clients and peers")
    ("seed", po::value(&o->seeds), "endpoint of a node of the cluster to join "
                                   "(repeatable; default: a one-node cluster)")
    ("data-dir", po::value(&o->data_dir), "node state and file engine data "
                                          "(default: ./data/<node-id>)")
    ("backend", po::value(&o->backend)->default_value(o->backend),
     "storage engine: memory, file, mysql, or a path to a plugin .so")
    ("backend-opt", po::value<std::vector<std::string>>(),
     "KEY=VALUE passed to the engine (repeatable)")
    ("resolver", po::value(&o->resolvers), "resolver plugin for siblings (lww, union, or a "
     "path to a .so); PREFIX=NAME for the keys that begin with PREFIX (repeatable)")
    ("plugin-dir", po::value(&o->plugin_dir), "where engines (and, in its resolvers/ folder, resolvers) are looked up by name "
                                              "(default: <dynamod's dir>/../lib/dynamo/plugins)")
    ("replicas", po::value(&o->replicas)->default_value(o->replicas), "N: replicas of each key")
    ("read-quorum", po::value(&o->read_quorum)->default_value(o->read_quorum),
     "R: replies a get waits for")
    ("write-quorum", po::value(&o->write_quorum)->default_value(o->write_quorum),
     "W: acknowledgements a put waits for")
    ("partitions", po::value(&o->partitions)->default_value(o->partitions),
     "Q: partitions of the ring, a power of two (only at cluster creation)")
    ("workers", po::value(&o->workers)->default_value(o->workers), "threads running engine calls")
    ("max-key-bytes", po::value(&o->max_key_bytes)->default_value(o->max_key_bytes),
     "largest key accepted")
    ("max-value-bytes", po::value(&o->max_value_bytes)->default_value(o->max_value_bytes),
     "largest value accepted")
    ("max-clock-entries", po::value(&o->max_clock_entries)->default_value(o->max_clock_entries),
     "vector clock entries kept before the oldest is dropped")
    ("request-timeout-ms", po::value(&o->request_timeout_ms)->default_value(o->request_timeout_ms),
     "how long a coordinator waits for replicas")
    ("failure-timeout-ms", po::value(&o->failure_timeout_ms)->default_value(o->failure_timeout_ms),
     "how long a peer may leave requests unanswered before it is down for this node")
    ("gossip-interval-ms", po::value(&o->gossip_interval_ms)->default_value(o->gossip_interval_ms),
     "period of gossip with one random peer")
    ("max-hints", po::value(&o->max_hints)->default_value(o->max_hints),
     "hinted keys held for down nodes at most (beyond: left to anti-entropy)")
    ("max-hint-bytes", po::value(&o->max_hint_bytes)->default_value(o->max_hint_bytes),
     "bytes of hinted data held at most")
    ("handoff-interval-ms",
     po::value(&o->handoff_interval_ms)->default_value(o->handoff_interval_ms),
     "how often hints are offered to their owners")
    ("anti-entropy-interval-ms",
     po::value(&o->anti_entropy_interval_ms)->default_value(o->anti_entropy_interval_ms),
     "pause between two anti-entropy partition exchanges; 0 turns anti-entropy off")
    ("anti-entropy-rate", po::value(&o->anti_entropy_rate)->default_value(o->anti_entropy_rate),
     "keys per second anti-entropy may repair at most")
    ("rebuild-streams", po::value(&o->rebuild_streams)->default_value(o->rebuild_streams),
     "partitions a node that starts with no data pulls at a time from other replicas "
     "(streamed whole); 0 leaves the refill to anti-entropy")
    ("anti-entropy-yield-ms",
     po::value(&o->anti_entropy_yield_ms)->default_value(o->anti_entropy_yield_ms),
     "client latency (moving average) at or above which anti-entropy waits; 0: whenever "
     "clients are being served")
    ("background-target-p99-ms",
     po::value(&o->background_target_p99_ms)->default_value(o->background_target_p99_ms),
     "client p99 latency (ms) above which background work (anti-entropy, hint delivery, "
     "partition transfers) gets less time; 0 turns admission control off")
    ("metrics-listen", po::value(&o->metrics_listen),
     "HOST:PORT to serve GET /metrics on (Prometheus text format); off by default")
    ("redis-listen", po::value(&o->redis_listen),
     "HOST:PORT (IPv4) to serve the Redis protocol on (RESP2); off by default")
    ("redis-max-clients", po::value(&o->redis_max_clients)->default_value(o->redis_max_clients),
     "Redis-protocol connections served at most")
    ("redis-password-file", po::value(&o->redis_password_file),
     "file holding the password Redis clients must give with AUTH; without it only "
     "loopback clients are served (protected mode)")
    ("curve-secret-key-file", po::value(&o->curve_secret_key_file),
     "this node's CURVE key pair (dynamoctl keygen; mode 0600): with --authorized-keys, "
     "traffic is encrypted and only listed keys are served")
    ("authorized-keys", po::value(&o->authorized_keys_file),
     "the public keys this node admits, one a line: KEY ROLE [ENDPOINT], ROLE peer, admin "
     "or client; a peer's ENDPOINT is where it listens (reloaded on SIGHUP)")
    ("log-level", po::value(&o->log_level)->default_value(o->log_level),
     "debug, info, warn or error");
  // clang-format on
  // Precedence: command line, then config file, then defaults. A list given
  // on the command line (--seed) replaces the file's; --backend-opt KEY=...
  // replaces the file's value of KEY and keeps its other keys.
  po::variables_map vm;
  std::vector<std::string> backend_opts;
  auto collect = [&backend_opts](const po::parsed_options& parsed) {
    for (const auto& opt : parsed.options) {
      if (opt.string_key != "backend-opt") continue;
      backend_opts.insert(backend_opts.end(), opt.value.begin(), opt.value.end());
    }
  };
  try {
    po::parsed_options cli = po::command_line_parser(argc, argv).options(desc).run();
    po::store(cli, vm);
    if (vm.count("config")) {
      const std::string file = vm["config"].as<std::string>();
      std::ifstream in(file);
      if (!in) {
        *error = "cannot read config file " + file;
        return ParseOutcome::kUsageError;
      }
      try {
        po::parsed_options parsed = po::parse_config_file(in, desc);
        for (const auto& opt : parsed.options) {
          if (opt.string_key == "help" || opt.string_key == "version" ||
              opt.string_key == "config" || opt.string_key == "check-config") {
            *error = "config file " + file + ": '" + opt.string_key +
                     "' belongs on the command line only";
            return ParseOutcome::kUsageError;
          }
        }
        po::store(parsed, vm);
        collect(parsed);
      } catch (const po::error& e) {
        *error = "config file " + file + ": " + OptionError(e);
        return ParseOutcome::kUsageError;
      }
    }
    collect(cli);  // after the file's: the last value of a key wins
    if (vm.count("help")) {
      std::ostringstream s;
      s << "Usage: dynamod [options]\n\n" << desc;
      *error = s.str();
      return ParseOutcome::kExit0;
    }
    if (vm.count("version")) {
      *error = std::string("dynamod ") + DYNAMO_VERSION;
      return ParseOutcome::kExit0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    *error = OptionError(e);
    return ParseOutcome::kUsageError;
  }
  for (const auto& kv : backend_opts) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      *error = "--backend-opt '" + kv + "' is not KEY=VALUE";
      return ParseOutcome::kUsageError;
    }
    std::string key = kv.substr(0, eq);
    std::erase_if(o->backend_opts, [&key](const auto& p) { return p.first == key; });
    o->backend_opts.emplace_back(std::move(key), kv.substr(eq + 1));
  }
  if (o->listen.rfind("tcp://", 0) != 0 && o->listen.rfind("ipc://", 0) != 0) {
    *error = "--listen '" + o->listen + "' is not a tcp:// or ipc:// endpoint";
    return ParseOutcome::kUsageError;
  }
  if (o->node_id.empty()) o->node_id = EndpointToId(o->listen);
  if (o->data_dir.empty()) o->data_dir = "./data/" + o->node_id;
  if (o->plugin_dir.empty()) o->plugin_dir = DefaultPluginDir(argv[0]);
  if (o->replicas < 1) {
    *error = "--replicas must be at least 1";
    return ParseOutcome::kUsageError;
  }
  if (o->read_quorum < 1 || o->read_quorum > o->replicas) {
    *error = "--read-quorum must be between 1 and --replicas (" + std::to_string(o->replicas) + ")";
    return ParseOutcome::kUsageError;
  }
  if (o->write_quorum < 1 || o->write_quorum > o->replicas) {
    *error =
        "--write-quorum must be between 1 and --replicas (" + std::to_string(o->replicas) + ")";
    return ParseOutcome::kUsageError;
  }
  if (!IsPowerOfTwo(o->partitions) || o->partitions > (1u << 16)) {
    *error = "--partitions must be a power of two between 1 and 65536";
    return ParseOutcome::kUsageError;
  }
  if (o->workers < 1 || o->workers > 256) {
    *error = "--workers must be between 1 and 256";
    return ParseOutcome::kUsageError;
  }
  if (o->max_key_bytes < 1 || o->max_value_bytes < 1) {
    *error = "--max-key-bytes and --max-value-bytes must be positive";
    return ParseOutcome::kUsageError;
  }
  if (static_cast<uint64_t>(o->max_key_bytes) + o->max_value_bytes + 4096 > (64u << 20)) {
    *error = "--max-key-bytes plus --max-value-bytes must stay under the 64 MiB frame limit";
    return ParseOutcome::kUsageError;
  }
  if (o->failure_timeout_ms < 10) {
    *error = "--failure-timeout-ms must be at least 10";
    return ParseOutcome::kUsageError;
  }
  if (o->request_timeout_ms < 1 || o->gossip_interval_ms < 10) {
    *error = "--request-timeout-ms must be positive and --gossip-interval-ms at least 10";
    return ParseOutcome::kUsageError;
  }
  if (o->handoff_interval_ms < 10) {
    *error = "--handoff-interval-ms must be at least 10";
    return ParseOutcome::kUsageError;
  }
  if (o->rebuild_streams > 64) {
    *error = "--rebuild-streams must be at most 64";
    return ParseOutcome::kUsageError;
  }
  if (o->anti_entropy_rate < 1) {
    *error = "--anti-entropy-rate must be at least 1";
    return ParseOutcome::kUsageError;
  }
  if (o->max_clock_entries < 2) {
    *error = "--max-clock-entries must be at least 2";
    return ParseOutcome::kUsageError;
  }
  // HOST:PORT, with a port of 0 to 65535.
  auto host_port = [error](const char* option, const std::string& text, std::string* host,
                           uint16_t* port) {
    const auto colon = text.rfind(':');
    const std::string port_text = colon == std::string::npos ? "" : text.substr(colon + 1);
    const bool digits = !port_text.empty() && port_text.size() <= 5 &&
                        port_text.find_first_not_of("0123456789") == std::string::npos;
    const unsigned long number = digits ? std::stoul(port_text) : 0;
    if (colon == std::string::npos || colon == 0 || !digits || number > 65535) {
      *error = std::string("--") + option + " '" + text + "' is not HOST:PORT";
      return false;
    }
    *host = text.substr(0, colon);
    *port = static_cast<uint16_t>(number);
    return true;
  };
  if (!o->redis_listen.empty()) {
    if (!host_port("redis-listen", o->redis_listen, &o->redis_host, &o->redis_port)) {
      return ParseOutcome::kUsageError;
    }
    // The RESP listener binds an IPv4 address (not a name): refused here,
    // before the node writes anything.
    in_addr addr{};
    if (::inet_pton(AF_INET, o->redis_host.c_str(), &addr) != 1) {
      *error = "--redis-listen '" + o->redis_listen + "': HOST must be an IPv4 address, such as " +
               "127.0.0.1 (not '" + o->redis_host + "')";
      return ParseOutcome::kUsageError;
    }
  }
  if (!o->metrics_listen.empty() &&
      !host_port("metrics-listen", o->metrics_listen, &o->metrics_host, &o->metrics_port)) {
    return ParseOutcome::kUsageError;
  }
  if (o->redis_max_clients < 1) {
    *error = "--redis-max-clients must be at least 1";
    return ParseOutcome::kUsageError;
  }
  if (!o->redis_password_file.empty()) {
    std::ifstream in(o->redis_password_file);
    std::string line;
    if (!in || !std::getline(in, line)) {
      *error = "--redis-password-file: cannot read " + o->redis_password_file;
      return ParseOutcome::kUsageError;
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) {
      *error = "--redis-password-file: " + o->redis_password_file + " holds no password";
      return ParseOutcome::kUsageError;
    }
    o->redis_password = line;
  }
  if (o->curve_secret_key_file.empty() != o->authorized_keys_file.empty()) {
    *error = "--curve-secret-key-file and --authorized-keys go together (CURVE needs both)";
    return ParseOutcome::kUsageError;
  }
  if (!o->curve_secret_key_file.empty()) {
    if (!curve::Available()) {
      *error = "CURVE is not available: this libzmq was built without it";
      return ParseOutcome::kUsageError;
    }
    auto pair = curve::ReadKeyPairFile(o->curve_secret_key_file);
    if (!pair.ok()) {
      *error = "--curve-secret-key-file: " + pair.status().message();
      return ParseOutcome::kUsageError;
    }
    auto authorized = curve::AuthorizedKeys::Load(o->authorized_keys_file);
    if (!authorized.ok()) {
      *error = "--authorized-keys: " + authorized.status().message();
      return ParseOutcome::kUsageError;
    }
    o->curve = std::make_shared<curve::ServerKeys>(curve::ServerKeys{
        std::move(*pair), std::make_shared<curve::AuthorizedKeys>(std::move(authorized).value())});
  }
  if (o->log_level != "debug" && o->log_level != "info" && o->log_level != "warn" &&
      o->log_level != "error") {
    *error = "--log-level must be debug, info, warn or error";
    return ParseOutcome::kUsageError;
  }
  return ParseOutcome::kRun;
}

}  // namespace dynamo
