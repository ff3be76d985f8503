// Fuzz target: the RESP parser of the Redis front end, fed the input whole
// and in pieces as a connection receives it: both must parse the same
// commands (or stop at the same error), and a too-large argument is
// skipped without losing the commands after it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dynamo/transport/resp.h"

namespace {

using dynamo::resp::Parse;

// Parses everything in `in`, fed `chunk` bytes at a time (0: whole), as
// the listener does: commands, skips of too-large arguments, the first
// error. Returns a transcript.
std::string Transcript(std::string_view in, size_t chunk) {
  dynamo::resp::Limits limits;
  limits.max_bulk = 64;
  limits.max_declared_bulk = 1 << 20;
  limits.max_args = 64;
  limits.max_inline = 256;
  std::string out, buf;
  dynamo::resp::Skip skip;
  bool skipping = false;
  size_t fed = 0;
  while (true) {
    const size_t add = chunk == 0 ? in.size() - fed : std::min(chunk, in.size() - fed);
    buf.append(in.substr(fed, add));
    fed += add;
    while (!buf.empty()) {
      size_t used = 0;
      std::string why;
      if (skipping) {
        bool done = false;
        Parse p = dynamo::resp::Discard(buf, limits, &skip, &used, &done, &why);
        buf.erase(0, used);
        if (p == Parse::kError) return out + "E" + why + ";";
        if (done) {
          skipping = false;
          out += "S;";
          continue;
        }
        break;
      }
      std::vector<std::string_view> args;
      Parse p = dynamo::resp::ParseCommand(buf, limits, &args, &used, &skip, &why);
      if (p == Parse::kNeedMore) break;
      if (p == Parse::kError) return out + "E" + why + ";";
      if (p == Parse::kTooLarge) {
        buf.erase(0, used);
        skipping = true;
        out += "T" + std::to_string(skip.too_large) + ";";
        continue;
      }
      if (used == 0 || used > buf.size()) __builtin_trap();
      out += "C";
      for (std::string_view a : args) out += std::to_string(a.size()) + ":" + std::string(a) + ",";
      out += ";";
      buf.erase(0, used);
    }
    if (fed == in.size())
      return out + (skipping ? "skipping" : "") + "|" + std::to_string(buf.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string whole = Transcript(in, 0);
  if (Transcript(in, 1) != whole || Transcript(in, 7) != whole) __builtin_trap();
  return 0;
}
