// What a sparse exchange does to memory besides moving it: check indices, zero
// and scatter-add into dense tensors, copy pairs into the outgoing message, and
// hold the gathered messages. One implementation for host memory (collectives/cpu)
// and one over a GPU's DeviceOps, so that the exchange itself
// (sparse_exchange.h) is written once.
//
// Threading: one thread at a time (the engine's coordinator).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "collectives/device_ops.h"
#include "common/buffer.h"
#include "common/status.h"
#include "common/types.h"

namespace braid {

class SparseMemory {
 public:
  virtual ~SparseMemory() = default;
  virtual int device() const = 0;
  virtual void* stream() const = 0;

  // The position of the first of `count` indices outside [0, length) (-1: none)
  // and its value. The host has the answer when this returns.
  virtual Status FindIndexOutOfRange(const void* indices, DataType index_dtype, int64_t count,
                                     int64_t length, int64_t* position, int64_t* value) = 0;
  virtual Status Zero(void* data, int64_t bytes) = 0;
  // As cpu::ScatterAdd (collectives/cpu/scatter_add.h).
  virtual Status ScatterAdd(void* dense, int64_t length, int64_t row, DataType dtype,
                            const void* indices, DataType index_dtype, const void* values,
                            int64_t count, double factor) = 0;
  // Byte copies (DeviceCopy::count in bytes).
  virtual Status CopyBytes(const std::vector<DeviceCopy>& copies) = 0;
  // A buffer of at least `bytes` that stays valid until the next call (kept and
  // reused: the exchange's persistent message buffer).
  virtual Status MessageBuffer(int64_t bytes, void** data) = 0;
  // A new buffer of `bytes` owned by the caller (a sparse allgather's output).
  virtual Status Allocate(int64_t bytes, std::shared_ptr<void>* memory) = 0;
  // A contiguous buffer for packing a fused dense allreduce of `bytes`.
  virtual Status Staging(int64_t bytes, DataType dtype, BufferView* staging) = 0;
  // Returns once everything queued so far has run (the outputs are final).
  virtual Status Finish() = 0;
};

// Host memory. `staging(bytes)` returns the engine's fusion buffer with at least
// min(bytes, staging_capacity) bytes ready.
std::unique_ptr<SparseMemory> HostSparseMemory(std::function<char*(int64_t)> staging,
                                               int64_t staging_capacity);

// Memory of the GPU `ops` drives, with work queued on ops->stream().
std::unique_ptr<SparseMemory> DeviceSparseMemory(DeviceOps* ops);

}  // namespace braid
