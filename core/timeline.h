// Timeline: a Chrome-trace JSON file (chrome://tracing, Perfetto) with one row per
// tensor and one complete event per phase (QUEUE, NEGOTIATE, PACK, the collective,
// UNPACK). Recording only appends to a vector under a lock; a writer thread
// formats and writes the file, off the coordinator's path.
//
// Threading: Record() is thread-safe.
#pragma once

#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "core/request.h"

namespace braid {

class Timeline {
 public:
  // `path` may contain %r, replaced by the rank; without it only rank 0 writes
  // (*out stays null elsewhere, as it does for an empty path).
  static Status Open(const std::string& path, int rank, std::unique_ptr<Timeline>* out);
  ~Timeline();  // writes what is left and closes the JSON array

  void Record(const std::string& tensor, const char* phase, Clock::time_point start,
              Clock::time_point end);

 private:
  struct Event {
    std::string tensor;
    const char* phase;
    Clock::time_point start;
    Clock::time_point end;
  };
  Timeline(std::FILE* file, int rank);
  void WriterLoop();
  void Write(const std::vector<Event>& events);

  std::FILE* file_;
  int rank_;
  Clock::time_point origin_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Event> events_;
  bool stop_ = false;
  bool first_event_ = true;
  std::unordered_map<std::string, int> tensor_ids_;  // writer thread only
  std::thread writer_;
};

}  // namespace braid
