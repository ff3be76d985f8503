// dynamo-sim: runs the cluster simulator over a range of seeds
// (tests/sim/simulation.h; docs/testing.md, "The simulator").
//
//   dynamo-sim --seeds 1000                 seeds 1..1000, both engines
//   dynamo-sim --first 5000 --seeds 100000  a long campaign
//   dynamo-sim --seed 42 --engine file --verbose   replays one run
//
// Prints one line per failing seed (with its failures and the command that
// replays it) and a summary; exits 0 when every seed passed, 1 when one
// failed, 2 on a usage error.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "boost/program_options.hpp"
#include "dynamo/option_error.h"
#include "simulation.h"

namespace po = boost::program_options;

int main(int argc, char** argv) {
  uint64_t first = 1, seeds = 100, seed = 0;
  std::string engine = "both";
  dynamo::sim::Config base;
  base.plugin_dir = DYNAMO_SIM_PLUGIN_DIR;
  po::options_description opts("dynamo-sim options");
  opts.add_options()("help,h", "this help")("seeds", po::value(&seeds),
                                            "how many seeds to run (default 100)")(
      "first", po::value(&first), "the first seed (default 1)")("seed", po::value(&seed),
                                                                "run this one seed only")(
      "engine", po::value(&engine), "memory, file or both (default; each seed on each)")(
      "plugin-dir", po::value(&base.plugin_dir), "where memory.so and file.so are")(
      "work-dir", po::value(&base.work_dir), "folder for the runs' data (default $TMPDIR)")(
      "verbose,v", po::bool_switch(&base.verbose), "print every fault and operation to stderr")(
      "debug-log", po::bool_switch(&base.debug_log), "and the nodes' debug log (by port)")(
      "trace", po::value(&base.trace), "with --verbose: where a written value is, as it moves");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "dynamo-sim: " << dynamo::OptionError(e) << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  if (engine != "memory" && engine != "file" && engine != "both") {
    std::cerr << "dynamo-sim: --engine must be memory, file or both, not '" << engine << "'\n";
    return 2;
  }
  if (vm.count("seed")) {
    first = seed;
    seeds = 1;
  }
  const auto start = std::chrono::steady_clock::now();
  uint64_t runs = 0, failed = 0, acked = 0, events = 0;
  for (uint64_t s = first; s < first + seeds; ++s) {
    for (const char* e : {"memory", "file"}) {
      if (engine != "both" && engine != e) continue;
      dynamo::sim::Config config = base;
      config.seed = s;
      config.engine = e;
      const dynamo::sim::Outcome out = dynamo::sim::Run(config);
      ++runs;
      acked += out.puts_acked;
      events += out.events;
      if (base.verbose || seeds == 1) std::cout << out.profile << "\n";
      if (out.ok()) continue;
      ++failed;
      std::cout << "FAILED " << out.profile << "\n";
      for (const auto& f : out.failures) std::cout << "  " << f << "\n";
      std::cout << "  replay: " << dynamo::sim::ReplayCommand(config) << "\n" << std::flush;
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "%llu runs (seeds %llu..%llu), %llu failed; %llu acknowledged writes checked, "
      "%llu events, %.1f s\n",
      static_cast<unsigned long long>(runs), static_cast<unsigned long long>(first),
      static_cast<unsigned long long>(first + seeds - 1), static_cast<unsigned long long>(failed),
      static_cast<unsigned long long>(acked), static_cast<unsigned long long>(events), secs);
  return failed == 0 ? 0 : 1;
}
