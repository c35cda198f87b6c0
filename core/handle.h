// Handle: the caller's side of one asynchronous operation. The coordinator
// completes it exactly once; any number of threads may poll or wait on it.
//
// Threading: all methods are thread-safe. Output() and status() are only
// meaningful after the handle is done.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "common/status.h"

namespace braid {

class Handle {
 public:
  bool Poll() const;
  // Blocks (without spinning) until the operation has finished; returns its status.
  Status Wait();
  // Marks the operation finished and wakes the waiters. Later calls are ignored.
  void Complete(Status status);
  Status status() const;

  // Output owned by the handle (allgather): allocated by the coordinator before
  // completion, read by the caller after it.
  std::vector<char>& owned_output() { return owned_output_; }
  std::vector<int64_t>& output_shape() { return output_shape_; }

 private:
  mutable std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  Status status_;
  std::vector<char> owned_output_;
  std::vector<int64_t> output_shape_;
};

}  // namespace braid
