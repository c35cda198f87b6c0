// Rank-prefixed, levelled logging to stderr. The level and the rank are process-wide
// settings (the engine sets them at init); writing a line is thread-safe.
#pragma once

#include <sstream>
#include <string>

namespace braid {

enum class LogLevel : int {
  kTrace = 0,
  kDebug = 1,
  kInfo = 2,
  kWarning = 3,
  kError = 4,
  kFatal = 5
};

// Parses "trace", "debug", "info", "warning", "error", "fatal" (any case).
bool ParseLogLevel(const std::string& text, LogLevel* level);

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void SetLogRank(int rank);
bool LogEnabled(LogLevel level);

class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

}  // namespace braid

#define BRAID_LOG(level)                                   \
  if (!::braid::LogEnabled(::braid::LogLevel::k##level)) { \
  } else                                                   \
    ::braid::LogMessage(::braid::LogLevel::k##level, __FILE__, __LINE__).stream()
