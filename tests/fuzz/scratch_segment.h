// For the fuzz targets that read their input from a file (a store's
// recovery, the config file): a path of this process's own, under /dev/shm
// when there is one, since a run writes it millions of times.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace dynamo::fuzz {

// "<base>/dynamo-fuzz-<what>-<pid>": base is /dev/shm when there is one
// (no disk writes per input), else the temporary folder.
inline std::string ScratchPath(const std::string& what) {
  static const std::filesystem::path base = std::filesystem::is_directory("/dev/shm")
                                                ? std::filesystem::path("/dev/shm")
                                                : std::filesystem::temp_directory_path();
  return (base / ("dynamo-fuzz-" + what + "-" + std::to_string(::getpid()))).string();
}

// Returns the folder ScratchPath(what), with nothing in it but
// 0000000001.log holding data.
inline std::string FolderWithSegment(const char* what, const uint8_t* data, size_t size) {
  const std::string dir = ScratchPath(what);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream out(dir + "/0000000001.log", std::ios::binary);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return dir;
}

}  // namespace dynamo::fuzz
