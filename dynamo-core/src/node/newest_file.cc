#include "node/newest_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "dynamo/durable/file.h"
#include "dynamo/log.h"

namespace dynamo {

NewestFile::NewestFile(Loop& loop, std::string path, std::string what)
    : loop_(loop), path_(std::move(path)), what_(std::move(what)) {}

void NewestFile::Submit(std::string bytes, bool remove) {
  const uint64_t seq = ++handed_;
  loop_.RunOnWorker(
      [path = path_, what = what_, bytes = std::move(bytes), remove, seq, shared = shared_] {
        std::lock_guard<std::mutex> l(shared->mu);
        if (seq <= shared->done) return;  // a newer state was written already
        if (remove) {
          if (std::remove(path.c_str()) != 0 && errno != ENOENT) {
            log::Error("cannot remove " + what + " " + path + ": " + std::strerror(errno));
            return;
          }
        } else if (Status s = durable::WriteFileAtomically(path, bytes); !s.ok()) {
          log::Error("cannot save " + what + ": " + s.ToString());
          return;
        }
        shared->done = seq;
      });
}

}  // namespace dynamo
