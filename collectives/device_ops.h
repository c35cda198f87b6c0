// What the executor does with tensor memory on a GPU besides the collective
// itself: the copies before it (out of place, prescale), the post-processing after
// it (postscale, average), zero-filled stand-ins, and device allocations. For host
// memory the executor does these itself (collectives/cpu/); a device has a
// DeviceOps from the backend that registered it.
//
// Work is enqueued on the device plane's own stream, stream(): non-blocking (no
// implicit ordering with the legacy default stream) and used by nothing but the
// engine. It is ordered after the framework's kernels with WaitFor, on the ready
// events recorded when the tensors were enqueued (core/ready_event.h); nothing but
// Synchronize waits on the host.
//
// Threading: one thread at a time (the engine's coordinator).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "common/types.h"
#include "collectives/cpu/mix.h"

namespace braid {

struct DeviceCopy {
  const void* src = nullptr;
  void* dst = nullptr;  // may equal src
  int64_t count = 0;    // elements
};

class DeviceOps {
 public:
  virtual ~DeviceOps() = default;
  virtual int device() const = 0;

  // The stream the executor queues a group's copies on, and names to the backend.
  virtual void* stream() const = 0;
  // stream() waits for `ready` (a ready event) or, when it is null, for the work
  // queued so far on `producer` (a cudaStream_t; null: the legacy default stream).
  virtual Status WaitFor(const void* ready, void* producer) = 0;
  // Blocks, without spinning, until everything queued on stream() so far has run.
  virtual Status Synchronize() = 0;

  // For each copy: dst = src * factor, then (integers) divided by `divisor` toward
  // zero when divisor > 1; as cpu::ScaleCopy and cpu::DivideBy do on the host.
  // Queued on stream().
  virtual Status ScaledCopies(const std::vector<DeviceCopy>& copies, DataType dtype, double factor,
                              int64_t divisor) = 0;

  // `bytes` of device memory, zero-filled (on stream()) when `zero`; freed when the last
  // reference goes (after the device has finished with it: callers keep it alive
  // until the collective using it has completed).
  virtual Status Allocate(int64_t bytes, bool zero, std::shared_ptr<void>* memory) = 0;

  // A persistent device buffer of at least `bytes` for packing fused groups.
  virtual Status FusionBuffer(int64_t bytes, void** data) = 0;

  // The sparse collectives (collectives/sparse/). The defaults refuse, for planes
  // without the kernels.
  //
  // Zeroes `bytes` bytes at `data`, queued on stream().
  virtual Status Zero(void* data, int64_t bytes);
  // As cpu::ScatterAdd (collectives/cpu/scatter_add.h), queued on stream(). Pairs
  // with the same index in one call are added with atomics, in an order that may
  // differ from run to run; distinct indices give the same bits as the host.
  virtual Status ScatterAdd(void* dense, int64_t length, int64_t row, DataType dtype,
                            const void* indices, DataType index_dtype, const void* values,
                            int64_t count, double factor);
  // As cpu::FindIndexOutOfRange, after the work queued on stream(); the host
  // waits for the answer (*position -1: every index is in range).
  virtual Status FindIndexOutOfRange(const void* indices, DataType index_dtype, int64_t count,
                                     int64_t length, int64_t* position, int64_t* value);

  // The neighbour collectives' mixing pass (collectives/cpu/mix.h): as cpu::Mix,
  // queued on stream(), with the same order of operations, so that it gives the
  // same bits as the host. The default refuses.
  virtual Status Mix(const MixArgs& args);
};

}  // namespace braid
