// BatchedCopier: many device copies of one dtype, each element optionally scaled,
// in one kernel launch. The GPU data plane packs a fused group's tensors into the
// fusion buffer with it (dst = consecutive offsets, prescale fused into the copy)
// and unpacks the reduced result (src = those offsets, postscale and the average
// fused), where the host data plane loops over cpu::ScaleCopy / cpu::DivideBy.
//
// What a call guarantees:
// - Asynchronous on `stream`: Copy enqueues kernels and returns; nothing waits for
//   the device. The copies run after the work already on `stream`, and later work
//   on `stream` sees them done. Errors raised while the kernel runs (a bad device
//   pointer) surface at the next synchronising call, as with any CUDA kernel.
// - No host-side state outlives the call: the entry descriptors travel as kernel
//   parameters (copied at launch), so `entries` may be freed on return, calls may
//   be captured into a CUDA graph, and nothing synchronises. A batch of more than
//   kMaxEntriesPerLaunch (non-empty) entries is split into several launches on
//   `stream`.
// - The src and dst buffers must stay valid, and no other stream may write them (or
//   read the dst ranges), until `stream` has passed the copy.
// - Each element is transformed exactly as the host path does (bit for bit: see
//   scale_element.cuh), so GPU and CPU ranks produce the same fused results.
// - In place (src == dst) works; partly overlapping ranges, and dst ranges of two
//   entries that overlap, are undefined.
// - Pointers must be device memory the copier's device can access (device memory
//   of that device, managed memory, mapped pinned host memory) and aligned to the
//   element size. Speed: 16-byte vectors wherever src and dst have the same
//   address modulo 16; keep fusion-buffer offsets multiples of 16 bytes for this.
//
// Threading: a BatchedCopier is immutable after Create; Copy may be called from
// several threads at once (on different streams, or on one stream in the order the
// caller wants). Copy makes the copier's device current for the call only.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "common/types.h"

namespace braid {
namespace cuda {

// One copy of `count` elements (not bytes) from `src` to `dst`.
struct CopyEntry {
  const void* src = nullptr;
  void* dst = nullptr;
  int64_t count = 0;
};

// The host data plane's two post-processing steps, fused into the copy:
//   cpu::ScaleCopy(dst, src, count, dtype, factor);     // factor 1: plain copy
//   if (divisor > 1) cpu::DivideBy(dst, count, dtype, divisor);
// An allreduce average folds 1/n into `factor` for floating types and sets
// `divisor` = n for integers, like core/executor.cc's ReducePlan: integers must
// not be multiplied by 1/n, since e.g. 49 * (1.0 / 49) < 1 truncates to 0.
//
// Integers: the double product is clamped to the type's range and truncated
// toward zero, on the device as on the host.
// NaN payloads are not preserved by scaling (the GPU returns its canonical NaN);
// a plain copy (factor 1, divisor <= 1) is bitwise.
struct Scaling {
  double factor = 1.0;
  int64_t divisor = 1;  // <= 1: no division
};

class BatchedCopier {
 public:
  // Most non-empty entries one launch takes (32 bytes of kernel parameters each,
  // within CUDA 12.1's 32764-byte limit).
  static constexpr int kMaxEntriesPerLaunch = 1000;

  // Checks that `device` exists and can run the kernels (compute capability 7.0+,
  // a driver of CUDA 12.1 or later for large kernel parameters, a kernel image for
  // the device in this build).
  static Status Create(int device, std::unique_ptr<BatchedCopier>* out);

  // dst[i] = src[i] * scale for every entry (ScaleCopy semantics).
  Status Copy(const std::vector<CopyEntry>& entries, DataType dtype, double scale,
              cudaStream_t stream) const;

  // The general form: ScaleCopy then DivideBy, as described at Scaling.
  // kInvalidArgument (nothing enqueued) for: an unknown dtype, a negative count, a
  // null or misaligned pointer in a non-empty entry, a non-finite factor with an
  // integer dtype. kBackendError when a launch fails (earlier launches of the
  // same call may already be enqueued).
  Status Copy(const std::vector<CopyEntry>& entries, DataType dtype, const Scaling& scaling,
              cudaStream_t stream) const;

  int device() const { return device_; }

 private:
  explicit BatchedCopier(int device) : device_(device) {}
  int device_;
};

}  // namespace cuda
}  // namespace braid
