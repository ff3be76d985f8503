// What dynamo-bench sends: its options, the key chooser (uniform or
// scrambled zipfian), the per-thread operation generator, and the state the
// worker threads share.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "histogram.h"

namespace dynamo::bench {

using Clock = std::chrono::steady_clock;

// Command-line options (see --help and dynamo-core/bench/README.md).
struct BenchOptions {
  std::vector<std::string> targets;  // dynamo endpoints; Default: tcp://127.0.0.1:7101
  bool client_mode = false;          // --mode client: to the key's preference list
  bool redis = false;                // --target redis://HOST:PORT[,...]
  struct RedisTarget {
    std::string host;
    int port = 6379;
    std::string Url() const { return "redis://" + host + ":" + std::to_string(port); }
  };
  std::vector<RedisTarget> redis_targets;  // client i talks to [i % size]
  std::vector<int> server_pids;            // --server-pids: CPU measured over the run
  int clients = 50;                        // concurrent clients in all
  int depth = 1;                           // outstanding requests per client
  int threads = 1;                         // worker threads, each one poll loop
  double put_ratio = 0.5;                  // fraction of operations that are puts
  uint64_t keys = 100000;                  // key space
  bool zipfian = false;                    // --dist
  double zipf_theta = 0.99;
  size_t value_size = 100;
  double duration_s = 0;  // 0: unset (10 s unless --ops)
  uint64_t ops = 0;       // 0: unset
  bool preload = false;
  uint32_t w = 0, r = 0;  // quorum overrides; 0 = node default
  bool json = false;
  int timeout_ms = 5000;
  size_t context_cache = 100000;  // contexts kept per process; 0 = blind puts
  uint64_t seed = 0;              // 0: random
  // CURVE (--curve-secret-key-file, --server-public-key): this client's key
  // pair, the first target's public key, and every target's, from the ring.
  std::string curve_public_key, curve_secret_key, server_public_key;
  std::map<std::string, std::string> server_keys;  // endpoint -> public key
  bool curve() const { return !curve_secret_key.empty(); }
};

// Keys are "bench-" + 10 digits: 16 bytes, so keys up to 10^10.
inline constexpr size_t kKeyBytes = 16;
inline constexpr uint64_t kMaxKeys = 10000000000ull;
void FormatKey(uint64_t index, char out[kKeyBytes]);

// xoshiro256**: a fast generator, one per thread.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t Next();
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }  // [0, 1)

 private:
  uint64_t s_[4];
};

// The YCSB zipfian generator (Gray et al., "Quickly generating billion-record
// synthetic databases", SIGMOD 1994) over ranks 0..n-1, rank 0 hottest; the
// rank is scrambled with FNV-1a so the hot keys spread over the key space
// (YCSB's ScrambledZipfianGenerator) instead of being "bench-0000000000".
class ZipfianChooser {
 public:
  ZipfianChooser(uint64_t n, double theta);
  uint64_t Rank(double u) const;  // u uniform in [0, 1)
  uint64_t Key(double u) const;   // scrambled rank

 private:
  uint64_t n_;
  double theta_, alpha_, zetan_, eta_, half_pow_theta_;
};

uint64_t Fnv1a64(uint64_t v);

// One operation after another for one thread: put or get, and which key.
class OpGenerator {
 public:
  OpGenerator(const BenchOptions& o, const ZipfianChooser* zipf, uint64_t seed)
      : rng_(seed), keys_(o.keys), put_ratio_(o.put_ratio), zipf_(zipf) {}
  bool NextIsPut() { return rng_.NextDouble() < put_ratio_; }
  uint64_t NextKey() { return zipf_ ? zipf_->Key(rng_.NextDouble()) : rng_.Next() % keys_; }

 private:
  Rng rng_;
  uint64_t keys_;
  double put_ratio_;
  const ZipfianChooser* zipf_;
};

// Stops the run: after --ops operations were handed out, or when the main
// thread says the duration is over. Also hands out preload keys.
class RunControl {
 public:
  explicit RunControl(uint64_t ops_limit) : ops_limit_(ops_limit) {}
  // True when the caller may issue one more measured operation.
  bool Claim() {
    if (stop_.load(std::memory_order_relaxed)) return false;
    if (ops_limit_ == 0) return true;
    return issued_.fetch_add(1, std::memory_order_relaxed) < ops_limit_;
  }
  // The next key to preload, or false when every key has been handed out.
  bool ClaimPreloadKey(uint64_t keys, uint64_t* key) {
    *key = next_preload_.fetch_add(1, std::memory_order_relaxed);
    return *key < keys;
  }
  void Stop() { stop_.store(true, std::memory_order_relaxed); }

 private:
  const uint64_t ops_limit_;
  std::atomic<uint64_t> issued_{0};
  std::atomic<uint64_t> next_preload_{0};
  std::atomic<bool> stop_{false};
};

struct OpStats {
  uint64_t count = 0;        // finished operations, errors included
  uint64_t errors = 0;       // error replies and timeouts
  uint64_t timeouts = 0;     // of errors: no reply within --timeout-ms
  uint64_t not_found = 0;    // gets only: the key had no value (not an error)
  uint64_t conflicts = 0;    // gets only: dynamo's RESP GET found siblings
                             // (-CONFLICT: an answer, not an error)
  LatencyHistogram latency;  // successful operations only
  void Add(const OpStats& o) {
    count += o.count;
    errors += o.errors;
    timeouts += o.timeouts;
    not_found += o.not_found;
    conflicts += o.conflicts;
    latency.Add(o.latency);
  }
};

// What one worker thread measured. Only done/failed are read by other
// threads (the progress line) while it runs.
struct ThreadStats {
  OpStats get, put;
  uint64_t preload_errors = 0;
  std::vector<uint64_t> sent_to;  // client mode: requests sent to each ring node
  std::string first_error;        // the first error message seen, for the report
  std::atomic<uint64_t> done{0}, failed{0};
  void Finished(bool is_put, bool error) {
    OpStats& s = is_put ? put : get;
    ++s.count;
    if (error) ++s.errors;
    Tick(error);
  }
  // Counts one finished request for the progress line only (preload).
  void Tick(bool error) {
    done.store(done.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (error) failed.store(failed.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void NoteError(std::string_view what) {
    if (first_error.empty()) first_error.assign(what);
  }
};

inline uint64_t MicrosSince(Clock::time_point start, Clock::time_point now) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(now - start).count());
}

}  // namespace dynamo::bench
