// NewestFile: a small file rewritten with a node's latest state (the
// cluster view, a rebuild's progress), off the loop. Writes run on workers,
// atomically (durable::WriteFileAtomically); one handed over earlier never
// replaces one handed over later, whichever worker runs first. Its state
// is shared with the jobs in flight, so it may be destroyed before they run.
//
// Write and Remove: loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "dynamo/transport/loop.h"

namespace dynamo {

class NewestFile {
 public:
  // `what` names the contents in error logs ("the cluster state").
  NewestFile(Loop& loop, std::string path, std::string what);

  void Write(std::string bytes) { Submit(std::move(bytes), false); }
  // The file goes (a missing one is fine).
  void Remove() { Submit(std::string(), true); }
  const std::string& path() const { return path_; }

 private:
  struct Shared {
    std::mutex mu;      // serialises the workers' writes
    uint64_t done = 0;  // the newest write carried out, guarded by mu
  };
  void Submit(std::string bytes, bool remove);

  Loop& loop_;
  const std::string path_;
  const std::string what_;
  uint64_t handed_ = 0;  // writes handed to workers
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
};

}  // namespace dynamo
