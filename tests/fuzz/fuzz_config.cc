// Fuzz target: dynamod's INI config file (--config), with any contents:
// parsed with the command line's rules, an error is one line.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "node/options.h"
#include "scratch_segment.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Removed when the process exits (libFuzzer ends with exit()).
  static const struct Scratch {
    const std::string path = dynamo::fuzz::ScratchPath("config.ini");
    ~Scratch() { std::remove(path.c_str()); }
  } scratch;
  const std::string& path = scratch.path;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  std::string arg0 = "dynamod", arg1 = "--config", arg2 = path;
  char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
  dynamo::NodeOptions options;
  std::string error;
  const auto outcome = dynamo::ParseNodeOptions(3, argv, &options, &error);
  if (outcome == dynamo::ParseOutcome::kUsageError &&
      (error.empty() || error.find('\n') != std::string::npos)) {
    __builtin_trap();
  }
  return 0;
}
