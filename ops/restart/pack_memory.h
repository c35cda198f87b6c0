// Where a restart's packed buffer lives and how data moves in and out of it: host
// memory with plain loops, or GPU memory through the registered device kernels
// (device_kernels.h). The restart ops are written once against this interface.
//
// Offsets and counts are in elements of the op's dtype. Each copy is ordered on the
// stream of the BufferView it reads or writes (host: ignored).
//
// Threading: one thread at a time (the op's).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/buffer.h"
#include "common/status.h"
#include "ops/restart/slowmo_update.h"

namespace braid::restart {

class PackMemory {
 public:
  // For buffers of `dtype` on `device`; fails, naming the op, when `device` is a GPU
  // and no restart kernels are registered.
  static Status Create(int device, DataType dtype, const std::string& op_name,
                       std::unique_ptr<PackMemory>* out);
  virtual ~PackMemory() = default;

  // Makes the packed buffer hold at least `count` elements (contents not kept).
  virtual Status Reserve(int64_t count) = 0;
  virtual void* data() = 0;

  // Copies the buffers `from`, one after the other, to `dst` (packed buffer or a
  // flat buffer in the same memory) starting at element `offset`.
  virtual Status Gather(const std::vector<BufferView>& from, void* dst, int64_t offset) = 0;
  // to[k] = (packed buffer, from element `offset` on, in order) * scale.
  virtual Status Scatter(int64_t offset, double scale, const std::vector<BufferView>& to) = 0;
  // Host bytes to / from the packed buffer at element `offset`; the host waits.
  virtual Status WriteFromHost(int64_t offset, const void* src, int64_t count, void* stream) = 0;
  virtual Status ReadToHost(int64_t offset, void* dst, int64_t count, void* stream) = 0;
  // The SlowMo pass for `params` (their sums at the packed buffer's start, in
  // order), against the flat slow buffers x_old and s.
  virtual Status SlowMoUpdate(const std::vector<BufferView>& params, const BufferView& x_old,
                              const BufferView& s, const SlowMoCoefficients& c) = 0;

 protected:
  explicit PackMemory(DataType dtype) : dtype_(dtype), elem_(DataTypeSize(dtype)) {}
  char* At(void* base, int64_t offset) const {
    return static_cast<char*>(base) + offset * static_cast<int64_t>(elem_);
  }

  DataType dtype_;
  size_t elem_;
};

}  // namespace braid::restart
