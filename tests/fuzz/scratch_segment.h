// For the fuzz targets that feed bytes to a store's recovery: a folder of
// this process's own (under /dev/shm when there is one: a run opens it tens
// of thousands of times), emptied, holding the input as its first segment.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace dynamo::fuzz {

// Returns the folder "<base>/dynamo-fuzz-<what>-<pid>", with nothing in it
// but 0000000001.log holding data.
inline std::string FolderWithSegment(const char* what, const uint8_t* data, size_t size) {
  static const std::filesystem::path base = std::filesystem::is_directory("/dev/shm")
                                                ? std::filesystem::path("/dev/shm")
                                                : std::filesystem::temp_directory_path();
  const std::string dir =
      (base / ("dynamo-fuzz-" + std::string(what) + "-" + std::to_string(::getpid()))).string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream out(dir + "/0000000001.log", std::ios::binary);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return dir;
}

}  // namespace dynamo::fuzz
