#include "dynamo/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>

namespace dynamo::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::mutex g_mu;
std::string g_tag;  // guarded by g_mu

const char* Name(Level l) {
  switch (l) {
    case Level::kDebug: return "DEBUG";
    case Level::kInfo: return "INFO";
    case Level::kWarn: return "WARN";
    case Level::kError: return "ERROR";
  }
  return "?";
}
}  // namespace

void SetLevel(Level level) { g_level = static_cast<int>(level); }

void SetTag(std::string_view tag) {
  std::lock_guard<std::mutex> l(g_mu);
  g_tag = tag;
}

void Write(Level level, std::string_view message) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  int ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
      1000);
  std::tm tm;
  gmtime_r(&t, &tm);
  char when[32];
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
  std::lock_guard<std::mutex> l(g_mu);
  std::fprintf(stderr, "%s.%03dZ %s %s: %.*s\n", when, ms, Name(level), g_tag.c_str(),
               static_cast<int>(message.size()), message.data());
}

}  // namespace dynamo::log
