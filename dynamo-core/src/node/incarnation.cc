#include "node/incarnation.h"

#include <fstream>

#include "dynamo/durable/file.h"

namespace dynamo {

namespace {

std::string PathIn(const std::string& data_dir) { return data_dir + "/incarnation"; }

std::string Base36(uint64_t n) {
  const char* digits = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out;
  do {
    out.insert(out.begin(), digits[n % 36]);
    n /= 36;
  } while (n != 0);
  return out;
}

}  // namespace

Result<std::string> Incarnation::Begin(const std::string& data_dir, const std::string& node_id,
                                       bool durable_engine, uint64_t wall_ms) {
  const std::string path = PathIn(data_dir);
  std::string previous, state;
  {
    std::ifstream in(path);
    if (in) in >> previous >> state;
  }
  std::string name;
  if (durable_engine && state == "clean" && previous.rfind(node_id + "~", 0) == 0) {
    name = previous;
  } else {
    name = Rename(node_id, wall_ms, previous);
  }
  if (Status s = durable::WriteFileAtomically(path, name + " running\n"); !s.ok()) return s;
  return name;
}

std::string Incarnation::Rename(const std::string& node_id, uint64_t wall_ms,
                                const std::string& previous) {
  std::string name = node_id + "~" + Base36(wall_ms);
  // Renamed twice in one millisecond (or a clock set back): still new.
  if (previous.rfind(name, 0) == 0) name = previous + "x";
  return name;
}

Status Incarnation::End(const std::string& data_dir, const std::string& name) {
  return durable::WriteFileAtomically(PathIn(data_dir), name + " clean\n");
}

}  // namespace dynamo
