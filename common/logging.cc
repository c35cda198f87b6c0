#include "common/logging.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace braid {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kWarning)};
std::atomic<int> g_rank{-1};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return "TRACE";
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARNING";
    case LogLevel::kError:
      return "ERROR";
    case LogLevel::kFatal:
      return "FATAL";
  }
  return "?";
}

const char* BaseName(const char* path) {
  const char* slash = path;
  for (const char* p = path; *p; ++p)
    if (*p == '/') slash = p + 1;
  return slash;
}

}  // namespace

bool ParseLogLevel(const std::string& text, LogLevel* level) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const struct {
    const char* name;
    LogLevel level;
  } kNames[] = {{"trace", LogLevel::kTrace}, {"debug", LogLevel::kDebug},
                {"info", LogLevel::kInfo},   {"warning", LogLevel::kWarning},
                {"error", LogLevel::kError}, {"fatal", LogLevel::kFatal}};
  for (const auto& n : kNames) {
    if (lower == n.name) {
      *level = n.level;
      return true;
    }
  }
  return false;
}

void SetLogLevel(LogLevel level) {
  g_level = static_cast<int>(level);
}
LogLevel GetLogLevel() {
  return static_cast<LogLevel>(g_level.load());
}
void SetLogRank(int rank) {
  g_rank = rank;
}
bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load();
}

LogMessage::LogMessage(LogLevel level, const char* file, int line) : level_(level) {
  int rank = g_rank.load();
  stream_ << "[braid";
  if (rank >= 0) stream_ << " rank " << rank;
  stream_ << " " << LevelName(level) << " " << BaseName(file) << ":" << line << "] ";
}

LogMessage::~LogMessage() {
  stream_ << '\n';
  std::string line = stream_.str();
  // One fwrite per line keeps lines from different threads whole.
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace braid
