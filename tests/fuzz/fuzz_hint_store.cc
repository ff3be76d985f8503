// Fuzz target: the hint store's replay, given a segment of any bytes: Open
// recovers (a torn tail is cut off, other damage refused), and every hint
// recovered reads back, decodes as a sibling set, and can be removed.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dynamo/versioning.h"
#include "handoff/hint_store.h"
#include "scratch_segment.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string dir = dynamo::fuzz::FolderWithSegment("hints", data, size);
  dynamo::HintStore::Options options;
  options.dir = dir;
  auto store = dynamo::HintStore::Open(options);
  if (store.ok()) {
    size_t seen = 0;
    for (const auto& [target, count] : (*store)->PendingByTarget()) {
      auto hints = (*store)->Peek(target, count, SIZE_MAX);
      if (hints.size() != count) __builtin_trap();
      std::vector<std::pair<std::string, uint64_t>> done;
      for (const auto& h : hints) {
        if (!dynamo::SiblingSet::Decode(h.encoded).ok()) __builtin_trap();
        done.emplace_back(h.key, h.seq);
      }
      seen += hints.size();
      auto removed = (*store)->Remove(target, done);
      if (!removed.ok() || *removed != hints.size()) __builtin_trap();
    }
    if (seen > 0 && (*store)->pending() != 0) __builtin_trap();
  }
  std::filesystem::remove_all(dir);
  return 0;
}
