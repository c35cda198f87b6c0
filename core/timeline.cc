#include "core/timeline.h"

#include <cerrno>
#include <cstring>

namespace braid {
namespace {

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

Status Timeline::Open(const std::string& path, int rank, std::unique_ptr<Timeline>* out) {
  out->reset();
  if (path.empty()) return Status::OK();
  std::string resolved = path;
  size_t at = resolved.find("%r");
  if (at == std::string::npos && rank != 0) return Status::OK();
  if (at != std::string::npos) resolved.replace(at, 2, std::to_string(rank));
  std::FILE* file = std::fopen(resolved.c_str(), "w");
  if (!file) {
    return InvalidArgument("BRAID_TIMELINE: cannot open '" + resolved +
                           "' for writing: " + std::strerror(errno));
  }
  out->reset(new Timeline(file, rank));
  return Status::OK();
}

Timeline::Timeline(std::FILE* file, int rank) : file_(file), rank_(rank), origin_(Clock::now()) {
  std::fputs("[\n", file_);
  writer_ = std::thread([this] { WriterLoop(); });
}

Timeline::~Timeline() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_one();
  writer_.join();
  std::fputs("\n]\n", file_);
  std::fclose(file_);
}

void Timeline::Record(const std::string& tensor, const char* phase, Clock::time_point start,
                      Clock::time_point end) {
  std::lock_guard<std::mutex> lock(mutex_);
  events_.push_back(Event{tensor, phase, start, end});
}

void Timeline::WriterLoop() {
  std::vector<Event> batch;
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    // Batches are written at most every 100 ms, so recording never waits on I/O.
    cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stop_; });
    batch.swap(events_);
    bool stopping = stop_;
    lock.unlock();
    Write(batch);
    batch.clear();
    std::fflush(file_);
    lock.lock();
    if (stopping && events_.empty()) return;
  }
}

void Timeline::Write(const std::vector<Event>& events) {
  using Micros = std::chrono::duration<double, std::micro>;
  for (const Event& e : events) {
    auto id = tensor_ids_.find(e.tensor);
    if (id == tensor_ids_.end()) {
      id = tensor_ids_.emplace(e.tensor, static_cast<int>(tensor_ids_.size()) + 1).first;
      std::fprintf(file_,
                   "%s{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, \"tid\": 0, "
                   "\"args\": {\"name\": \"%s\"}}",
                   first_event_ ? "" : ",\n", id->second, JsonEscape(e.tensor).c_str());
      first_event_ = false;
    }
    std::fprintf(file_,
                 ",\n{\"name\": \"%s\", \"ph\": \"X\", \"pid\": %d, \"tid\": %d, \"ts\": %.3f, "
                 "\"dur\": %.3f, \"args\": {\"rank\": %d}}",
                 e.phase, id->second, rank_, Micros(e.start - origin_).count(),
                 Micros(e.end - e.start).count(), rank_);
  }
}

}  // namespace braid
