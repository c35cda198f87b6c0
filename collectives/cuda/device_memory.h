// Owned CUDA memory: a device buffer (cudaMalloc on one device) and a pinned host
// buffer (cudaHostAlloc, for asynchronous copies). Both are persistent: the data
// plane allocates them once and reuses them, since allocation synchronises the
// device.
//
// Threading: an object is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>

#include "common/status.h"

namespace braid {
namespace cuda {

class DeviceBuffer {
 public:
  // Allocates `bytes` on `device` (0 bytes: an empty buffer).
  static Status Create(int device, int64_t bytes, std::unique_ptr<DeviceBuffer>* out);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  int64_t bytes() const { return bytes_; }
  int device() const { return device_; }

 private:
  DeviceBuffer(int device, void* data, int64_t bytes)
      : device_(device), data_(data), bytes_(bytes) {}
  int device_;
  void* data_;
  int64_t bytes_;
};

class PinnedBuffer {
 public:
  static Status Create(int64_t bytes, std::unique_ptr<PinnedBuffer>* out);
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  void* data() const { return data_; }
  int64_t bytes() const { return bytes_; }

 private:
  PinnedBuffer(void* data, int64_t bytes) : data_(data), bytes_(bytes) {}
  void* data_;
  int64_t bytes_;
};

// Makes `device` current for the calling thread and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// The number of visible CUDA devices (0 when there is no GPU or no driver).
int VisibleDeviceCount();

}  // namespace cuda
}  // namespace braid
