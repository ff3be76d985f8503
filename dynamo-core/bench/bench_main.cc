// dynamo-bench: a closed-loop load generator for dynamo nodes, and for
// redis-server as a reference. See README.md in this folder.
#include <sys/resource.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "driver.h"
#include "dynamo/client.h"
#include "dynamo/option_error.h"
#include "dynamo/transport/curve.h"

namespace po = boost::program_options;
using dynamo::bench::BenchOptions;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitUnreachable = 1;
constexpr int kExitUsage = 2;

struct UsageError {
  std::string message;
};

// Splits "host:port" of one redis:// target.
BenchOptions::RedisTarget ParseRedisTarget(const std::string& t) {
  BenchOptions::RedisTarget out;
  const std::string rest = t.substr(std::string("redis://").size());
  const size_t colon = rest.rfind(':');
  out.host = colon == std::string::npos ? rest : rest.substr(0, colon);
  if (colon != std::string::npos) {
    const std::string port = rest.substr(colon + 1);
    char* end = nullptr;
    const long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || p <= 0 || p > 65535) {
      throw UsageError{"bad port in --target " + t};
    }
    out.port = static_cast<int>(p);
  }
  if (out.host.empty()) throw UsageError{"no host in --target " + t};
  return out;
}

// "a,b,,c" -> {"a", "b", "", "c"}.
std::vector<std::string> SplitCommas(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = list.find(',', start);
    out.push_back(list.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

// "1,2,3" -> process ids.
std::vector<int> ParsePids(const std::string& list) {
  std::vector<int> out;
  for (const std::string& one : SplitCommas(list)) {
    char* end = nullptr;
    const long pid = std::strtol(one.c_str(), &end, 10);
    if (one.empty() || *end != '\0' || pid <= 0) {
      throw UsageError{"--server-pids wants PID[,PID...], got '" + list + "'"};
    }
    out.push_back(static_cast<int>(pid));
  }
  return out;
}

// Returns false when --help was printed.
bool ParseOptions(int argc, char** argv, BenchOptions* o) {
  std::string target = "tcp://127.0.0.1:7101", dist = "uniform", mode = "server", pids;
  std::string key_pair_file, server_key;
  po::options_description desc(
      "dynamo-bench: closed-loop load against dynamo nodes or a redis-server\n"
      "Usage: dynamo-bench [options]\nOptions");
  // clang-format off
  desc.add_options()
    ("help,h", "print this help")
    ("target", po::value(&target)->default_value(target),
     "tcp://HOST:PORT[,tcp://HOST:PORT...] (dynamo nodes; in server mode clients spread "
     "round-robin) or redis://HOST:PORT[,redis://HOST:PORT...] (redis-server or dynamo's "
     "RESP front ends; clients spread round-robin)")
    ("mode", po::value(&mode)->default_value(mode),
     "dynamo coordination: server (each client sends to its --target node, which "
     "coordinates, forwarding a put it holds no replica of) or client (the ring is pulled "
     "once from a --target before the run, not refreshed, so for a static cluster; each "
     "client connects to every node and sends each request to the first node of the key's "
     "preference list, paper 6.4)")
    ("clients", po::value(&o->clients)->default_value(o->clients), "concurrent clients")
    ("depth", po::value(&o->depth)->default_value(o->depth),
     "outstanding requests per client (pipelining)")
    ("threads", po::value(&o->threads)->default_value(o->threads),
     "worker threads; each multiplexes its share of the clients in one poll loop")
    ("put-ratio", po::value(&o->put_ratio)->default_value(o->put_ratio, "0.5"),
     "fraction of operations that are puts (0..1)")
    ("keys", po::value(&o->keys)->default_value(o->keys), "key space size")
    ("dist", po::value(&dist)->default_value(dist), "key distribution: uniform or zipfian")
    ("zipf-theta", po::value(&o->zipf_theta)->default_value(o->zipf_theta, "0.99"),
     "zipfian skew, 0 < theta < 1")
    ("value-size", po::value(&o->value_size)->default_value(o->value_size), "value bytes")
    ("duration", po::value(&o->duration_s), "seconds to run (default 10 unless --ops)")
    ("ops", po::value(&o->ops), "stop after this many operations in all")
    ("preload", po::bool_switch(&o->preload), "write every key once before measuring")
    ("w", po::value(&o->w)->default_value(0), "W sent with puts (0 = node default)")
    ("r", po::value(&o->r)->default_value(0), "R sent with gets (0 = node default)")
    ("timeout-ms", po::value(&o->timeout_ms)->default_value(o->timeout_ms),
     "a request without reply after this long counts as an error")
    ("context-cache", po::value(&o->context_cache)->default_value(o->context_cache),
     "dynamo: contexts kept (per process) so puts supersede the last version seen; "
     "0 = blind puts (siblings grow)")
    ("seed", po::value(&o->seed)->default_value(0), "random seed (0 = random)")
    ("server-pids", po::value(&pids),
     "PID[,PID...]: processes whose CPU time (user + system, from /proc) over the run is "
     "reported per operation, beside the generator's own")
    ("curve-secret-key-file", po::value(&key_pair_file),
     "this client's CURVE key pair (dynamoctl keygen), for nodes with CURVE on")
    ("server-public-key", po::value(&server_key),
     "the first target's public key, or its .pub file (the others' come from its ring)")
    ("json", po::bool_switch(&o->json), "print the result as one JSON object");
  // clang-format on
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError{dynamo::OptionError(e)};
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return false;
  }
  o->redis = target.rfind("redis://", 0) == 0;
  for (std::string& t : SplitCommas(target)) {
    if (o->redis && t.rfind("redis://", 0) == 0) {
      o->redis_targets.push_back(ParseRedisTarget(t));
    } else if (!o->redis && t.rfind("tcp://", 0) == 0 && t.size() > 6) {
      o->targets.push_back(std::move(t));
    } else {
      throw UsageError{"--target wants tcp://HOST:PORT[,...] or redis://HOST:PORT[,...], got '" +
                       t + "'"};
    }
  }
  if (!pids.empty()) o->server_pids = ParsePids(pids);
  if (mode == "client") {
    o->client_mode = true;
  } else if (mode != "server") {
    throw UsageError{"--mode must be server or client, got '" + mode + "'"};
  }
  if (o->client_mode && o->redis) throw UsageError{"--mode client needs dynamo targets"};
  if (key_pair_file.empty() != server_key.empty()) {
    throw UsageError{"--curve-secret-key-file and --server-public-key go together"};
  }
  if (!key_pair_file.empty()) {
    if (o->redis) throw UsageError{"CURVE is for dynamo targets, not redis://"};
    auto pair = dynamo::curve::ReadKeyPairFile(key_pair_file);
    if (!pair.ok()) throw UsageError{pair.status().message()};
    auto server = dynamo::curve::ReadPublicKey(server_key);
    if (!server.ok()) throw UsageError{server.status().message()};
    o->curve_public_key = pair->public_key;
    o->curve_secret_key = pair->secret_key;
    o->server_public_key = *server;
  }
  if (dist == "zipfian") {
    o->zipfian = true;
  } else if (dist != "uniform") {
    throw UsageError{"--dist must be uniform or zipfian, got '" + dist + "'"};
  }
  if (o->clients < 1) throw UsageError{"--clients must be at least 1"};
  if (o->depth < 1) throw UsageError{"--depth must be at least 1"};
  if (o->threads < 1 || o->threads > o->clients) {
    throw UsageError{"--threads must be between 1 and --clients"};
  }
  if (!(o->put_ratio >= 0 && o->put_ratio <= 1)) throw UsageError{"--put-ratio must be in 0..1"};
  if (o->keys < 1 || o->keys > dynamo::bench::kMaxKeys) {
    throw UsageError{"--keys must be between 1 and 10^10"};
  }
  if (o->zipfian && !(o->zipf_theta > 0 && o->zipf_theta < 1)) {
    throw UsageError{"--zipf-theta must be in (0, 1)"};
  }
  if (o->value_size > (1u << 20)) throw UsageError{"--value-size must be at most 1 MiB"};
  if (vm.count("duration") && !(o->duration_s > 0)) throw UsageError{"--duration must be > 0"};
  if (vm.count("ops") && o->ops == 0) throw UsageError{"--ops must be > 0"};
  if (vm.count("duration") && vm.count("ops")) {
    throw UsageError{"give --duration or --ops, not both"};
  }
  if (!vm.count("duration") && !vm.count("ops")) o->duration_s = 10;
  if (o->timeout_ms < 1) throw UsageError{"--timeout-ms must be at least 1"};
  if (o->seed == 0)
    o->seed = (static_cast<uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
  return true;
}

// CPU seconds (user + system) of this process and of the --server-pids.
struct CpuTimes {
  double self_s = 0;
  double servers_s = 0;
  bool missing = false;  // some listed process could not be read
};

CpuTimes MeasureCpu(const std::vector<int>& pids) {
  CpuTimes t;
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    t.self_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  for (int pid : pids) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Fields after the command name (which may hold spaces) start at ") ":
    // state is field 3, utime 14, stime 15.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) {
      t.missing = true;
      continue;
    }
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int n = 3; n <= 15 && fields >> field; ++n) {
      if (n == 14) utime = std::strtod(field.c_str(), nullptr);
      if (n == 15) stime = std::strtod(field.c_str(), nullptr);
    }
    t.servers_s += (utime + stime) / hz;
  }
  return t;
}

double Seconds(dynamo::bench::Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

nlohmann::json OpJson(const dynamo::bench::OpStats& s, double seconds) {
  const auto& h = s.latency;
  return {{"count", s.count},
          {"errors", s.errors},
          {"timeouts", s.timeouts},
          {"not_found", s.not_found},
          {"conflicts", s.conflicts},
          {"throughput", seconds > 0 ? static_cast<double>(s.count) / seconds : 0.0},
          {"latency_us",
           {{"p50", h.Percentile(0.50)},
            {"p99", h.Percentile(0.99)},
            {"p999", h.Percentile(0.999)},
            {"max", h.max()},
            {"mean", std::round(h.mean() * 10) / 10}}}};
}

// Runs fn(driver, stats) on every driver in its own thread; prints a
// progress line every second while they run when `progress`, and stops
// ctl after `duration_s` (0: never).
template <typename Fn>
double RunPhase(std::vector<std::unique_ptr<dynamo::bench::Driver>>& drivers,
                std::vector<dynamo::bench::ThreadStats>& stats, dynamo::bench::RunControl* ctl,
                double duration_s, bool progress, const char* phase, Fn fn) {
  using dynamo::bench::Clock;
  std::atomic<size_t> running{drivers.size()};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (size_t i = 0; i < drivers.size(); ++i) {
    threads.emplace_back([&, i] {
      fn(*drivers[i], &stats[i]);
      running.fetch_sub(1);
    });
  }
  uint64_t last_done = 0;
  auto last = start;
  bool stopped = false;
  while (running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto now = Clock::now();
    if (!stopped && duration_s > 0 && Seconds(now - start) >= duration_s) {
      ctl->Stop();
      stopped = true;
    }
    if (progress && now - last >= std::chrono::seconds(1)) {
      uint64_t done = 0, failed = 0;
      for (auto& s : stats) {
        done += s.done.load(std::memory_order_relaxed);
        failed += s.failed.load(std::memory_order_relaxed);
      }
      std::fprintf(stderr, "[%s %6.1f s] %9.0f ops/s  %llu ops  %llu errors\n", phase,
                   Seconds(now - start),
                   static_cast<double>(done - last_done) / Seconds(now - last),
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(failed));
      last_done = done;
      last = now;
    }
  }
  for (auto& t : threads) t.join();
  return Seconds(Clock::now() - start);
}

int Main(int argc, char** argv) {
  using namespace dynamo::bench;
  BenchOptions o;
  try {
    if (!ParseOptions(argc, argv, &o)) return kExitOk;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "dynamo-bench: %s (see --help)\n", e.message.c_str());
    return kExitUsage;
  }
  const std::string target_text = [&] {
    std::string s;
    for (const auto& t : o.targets) s += (s.empty() ? "" : ",") + t;
    for (const auto& t : o.redis_targets) s += (s.empty() ? "" : ",") + t.Url();
    return s;
  }();

  std::unique_ptr<dynamo::RingView> ring;  // client mode: pulled once, read by every driver
  // With CURVE, the ring first: it carries the public key of every target.
  if (o.client_mode || o.curve()) {
    if (std::string err = PullRing(o, &ring); !err.empty()) {
      std::fprintf(stderr, "dynamo-bench: %s\n", err.c_str());
      return kExitUnreachable;
    }
  }
  if (o.curve()) {
    std::vector<std::string> endpoints = o.targets;
    for (const std::string& e : ring->endpoints()) endpoints.push_back(e);
    for (const std::string& e : endpoints) {
      const std::string* key = e == o.targets.front() ? &o.server_public_key : ring->PublicKeyAt(e);
      if (key == nullptr) {
        std::fprintf(stderr, "dynamo-bench: the ring names no public key for %s\n", e.c_str());
        return kExitUnreachable;
      }
      o.server_keys[e] = *key;
    }
    if (!o.client_mode) ring.reset();
  }
  if (std::string err = o.redis ? ProbeRedis(o) : ProbeDynamo(o); !err.empty()) {
    std::fprintf(stderr, "dynamo-bench: %s\n", err.c_str());
    return kExitUnreachable;
  }

  std::unique_ptr<ZipfianChooser> zipf;
  if (o.zipfian) zipf = std::make_unique<ZipfianChooser>(o.keys, o.zipf_theta);

  std::vector<std::unique_ptr<Driver>> drivers;
  int first = 0;
  for (int t = 0; t < o.threads; ++t) {
    const int n = o.clients / o.threads + (t < o.clients % o.threads ? 1 : 0);
    drivers.push_back(o.redis ? MakeRedisDriver(o, t, first, n, zipf.get())
                              : MakeDynamoDriver(o, t, first, n, zipf.get(), ring.get()));
    first += n;
  }
  std::vector<ThreadStats> stats(drivers.size());
  {
    std::vector<std::thread> connecting;
    for (auto& d : drivers) connecting.emplace_back([&d] { d->Connect(); });
    for (auto& t : connecting) t.join();
  }

  double preload_s = 0;
  uint64_t preload_errors = 0;
  if (o.preload) {
    std::vector<ThreadStats> pstats(drivers.size());
    RunControl pctl(0);
    preload_s = RunPhase(drivers, pstats, &pctl, 0, true, "preload",
                         [&](Driver& d, ThreadStats* s) { d.Preload(&pctl, s); });
    for (auto& s : pstats) {
      preload_errors += s.preload_errors;
      if (s.preload_errors && stats[0].first_error.empty()) stats[0].first_error = s.first_error;
    }
    {
      std::fprintf(stderr, "preloaded %llu keys in %.1f s (%llu errors)\n",
                   static_cast<unsigned long long>(o.keys), preload_s,
                   static_cast<unsigned long long>(preload_errors));
    }
  }

  RunControl ctl(o.ops);
  const CpuTimes cpu_before = MeasureCpu(o.server_pids);
  const double seconds = RunPhase(drivers, stats, &ctl, o.duration_s, true, "run",
                                  [&](Driver& d, ThreadStats* s) { d.Run(&ctl, s); });
  const CpuTimes cpu_after = MeasureCpu(o.server_pids);
  drivers.clear();  // close connections before reporting

  OpStats get, put;
  std::string first_error;
  std::vector<uint64_t> sent_to(ring ? ring->endpoints().size() : 0, 0);
  for (auto& s : stats) {
    get.Add(s.get);
    put.Add(s.put);
    if (first_error.empty()) first_error = s.first_error;
    for (size_t n = 0; n < s.sent_to.size() && n < sent_to.size(); ++n) sent_to[n] += s.sent_to[n];
  }
  const char* mode = o.client_mode ? "client" : "server";
  const uint64_t total = get.count + put.count, errors = get.errors + put.errors;
  const double throughput = seconds > 0 ? static_cast<double>(total) / seconds : 0.0;
  // CPU per operation (µs), the generator's and the listed servers'.
  auto per_op = [&](double cpu_s) {
    return total ? std::round(cpu_s * 1e6 / static_cast<double>(total) * 10) / 10 : 0.0;
  };
  const double generator_us = per_op(cpu_after.self_s - cpu_before.self_s);
  const double servers_us = per_op(cpu_after.servers_s - cpu_before.servers_s);

  if (o.json) {
    nlohmann::json j = {
        {"target", target_text},
        {"kind", o.redis ? "redis" : "dynamo"},
        {"mode", mode},
        {"clients", o.clients},
        {"depth", o.depth},
        {"threads", o.threads},
        {"put_ratio", o.put_ratio},
        {"keys", o.keys},
        {"dist", o.zipfian ? "zipfian" : "uniform"},
        {"zipf_theta", o.zipf_theta},
        {"value_size", o.value_size},
        {"preload", {{"enabled", o.preload}, {"seconds", preload_s}, {"errors", preload_errors}}},
        {"seconds", seconds},
        {"ops", total},
        {"errors", errors},
        {"throughput", throughput},
        {"get", OpJson(get, seconds)},
        {"put", OpJson(put, seconds)},
        {"generator_cpu_us_per_op", generator_us},
    };
    if (!o.server_pids.empty()) {
      j["servers_cpu_us_per_op"] = servers_us;
      if (cpu_after.missing) j["servers_cpu_note"] = "a listed process ended during the run";
    }
    if (ring) {
      nlohmann::json per_node = nlohmann::json::object();
      for (size_t n = 0; n < sent_to.size(); ++n) per_node[ring->endpoints()[n]] = sent_to[n];
      j["ring"] = {
          {"version", ring->version()}, {"partitions", ring->partitions()}, {"sent_to", per_node}};
    }
    if (!first_error.empty()) j["first_error"] = first_error;
    std::cout << j.dump() << std::endl;
    return kExitOk;
  }
  std::printf(
      "target %s (%s, %s mode): %d clients x depth %d on %d thread(s), put ratio %.2f,"
      " %llu keys %s, %zu-byte values\n",
      target_text.c_str(), o.redis ? "redis" : "dynamo", mode, o.clients, o.depth, o.threads,
      o.put_ratio, static_cast<unsigned long long>(o.keys), o.zipfian ? "zipfian" : "uniform",
      o.value_size);
  if (ring) {
    std::printf("ring version %llu, %u partitions; requests per node:",
                static_cast<unsigned long long>(ring->version()), ring->partitions());
    for (size_t n = 0; n < sent_to.size(); ++n) {
      std::printf(" %s %llu", ring->endpoints()[n].c_str(),
                  static_cast<unsigned long long>(sent_to[n]));
    }
    std::printf("\n");
  }
  std::printf("%-5s %10s %8s %11s %9s %9s %10s %9s\n", "op", "count", "errors", "ops/s", "p50(us)",
              "p99(us)", "p99.9(us)", "max(us)");
  for (const auto& [name, s] : {std::pair{"get", &get}, std::pair{"put", &put}}) {
    std::printf("%-5s %10llu %8llu %11.0f %9llu %9llu %10llu %9llu\n", name,
                static_cast<unsigned long long>(s->count),
                static_cast<unsigned long long>(s->errors),
                seconds > 0 ? static_cast<double>(s->count) / seconds : 0.0,
                static_cast<unsigned long long>(s->latency.Percentile(0.5)),
                static_cast<unsigned long long>(s->latency.Percentile(0.99)),
                static_cast<unsigned long long>(s->latency.Percentile(0.999)),
                static_cast<unsigned long long>(s->latency.max()));
  }
  std::printf("total %10llu %8llu %11.0f   in %.2f s\n", static_cast<unsigned long long>(total),
              static_cast<unsigned long long>(errors), throughput, seconds);
  std::printf("CPU per operation: generator %.1f µs", generator_us);
  if (!o.server_pids.empty()) std::printf(", servers %.1f µs", servers_us);
  std::printf("\n");
  if (!first_error.empty()) std::printf("first error: %s\n", first_error.c_str());
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
