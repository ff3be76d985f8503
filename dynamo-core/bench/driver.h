// A Driver runs one worker thread's clients against one kind of target in a
// single poll loop (no thread per client: the benchmark shares the cores
// with the servers it measures).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "workload.h"

namespace dynamo {
class RingView;
}  // namespace dynamo

namespace dynamo::bench {

class Driver {
 public:
  virtual ~Driver() = default;
  // Before the first phase, not measured: makes sure the connections are
  // up, so that no measured request waits for one.
  virtual void Connect() {}
  // Writes every key handed out by ctl.ClaimPreloadKey once; not measured
  // (errors go to stats->preload_errors).
  virtual void Preload(RunControl* ctl, ThreadStats* stats) = 0;
  // Keeps every client's depth of requests outstanding while ctl.Claim()
  // allows, then waits for (or times out) what is still outstanding.
  virtual void Run(RunControl* ctl, ThreadStats* stats) = 0;
};

// Makes the driver of worker thread `thread` (0-based), which runs clients
// first_client .. first_client + clients - 1 of all. In server mode (ring
// nullptr) the dynamo driver spreads clients round-robin over opts.targets
// by their global index; in client mode each client has a socket to every
// node of `ring` and sends each request to the first node of the key's
// preference list (one not reported down, if any). The ring must outlive
// the driver; the drivers only read it.
std::unique_ptr<Driver> MakeDynamoDriver(const BenchOptions& opts, int thread, int first_client,
                                         int clients, const ZipfianChooser* zipf,
                                         const RingView* ring = nullptr);
std::unique_ptr<Driver> MakeRedisDriver(const BenchOptions& opts, int thread, int first_client,
                                        int clients, const ZipfianChooser* zipf);

// Checks once, before the run, that every target answers (exit 1 if not).
// Returns "" when all do, else one line saying which did not and why.
std::string ProbeDynamo(const BenchOptions& opts);
std::string ProbeRedis(const BenchOptions& opts);

// Client mode: pulls the ring (RING) from the first of opts.targets that
// answers, once, before the run. Returns "" and sets *ring, else one line
// saying why not.
std::string PullRing(const BenchOptions& opts, std::unique_ptr<RingView>* ring);

// The value every put writes: value_size bytes of a fixed pattern.
std::string MakeValue(size_t size, uint64_t seed);

}  // namespace dynamo::bench
