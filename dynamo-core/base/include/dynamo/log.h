// Minimal logging to stderr: one line per event, with time and level.
#pragma once

#include <string_view>

namespace dynamo::log {

enum class Level { kDebug, kInfo, kWarn, kError };

// Messages below this level are dropped. Default: kInfo.
void SetLevel(Level level);
// Prefix after the level, e.g. the node id.
void SetTag(std::string_view tag);
void Write(Level level, std::string_view message);

inline void Info(std::string_view m) { Write(Level::kInfo, m); }
inline void Warn(std::string_view m) { Write(Level::kWarn, m); }
inline void Error(std::string_view m) { Write(Level::kError, m); }
inline void Debug(std::string_view m) { Write(Level::kDebug, m); }

}  // namespace dynamo::log
