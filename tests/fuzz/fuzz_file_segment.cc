// Fuzz target: the file engine's recovery, given a segment file of any
// bytes: Open replays it (a bad tail is cut off, other damage refused), and
// whatever was recovered reads back by scan and by key.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "file_engine.h"
#include "scratch_segment.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string dir = dynamo::fuzz::FolderWithSegment("segment", data, size);
  dynamo::file::Options options;
  options.dir = dir;
  options.sync = dynamo::file::SyncPolicy::kNever;
  options.cache_bytes = 0;
  options.compaction = false;  // no thread per input: recovery is what is fuzzed
  std::unique_ptr<dynamo::file::FileEngine> engine;
  if (dynamo::file::FileEngine::Open(options, &engine).ok()) {
    std::vector<std::pair<std::string, uint64_t>> keys;
    (void)engine->Scan(0, UINT64_MAX, [&](std::string_view key, uint64_t hash, std::string_view) {
      keys.emplace_back(std::string(key), hash);
      return true;
    });
    for (const auto& [key, hash] : keys) {
      std::string record;
      std::string_view value;
      if (!engine->Get(key, &record, &value).ok()) __builtin_trap();
    }
    (void)engine->Close();
  }
  engine.reset();
  std::filesystem::remove_all(dir);
  return 0;
}
