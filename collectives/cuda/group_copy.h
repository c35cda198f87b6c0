// Packing a fused group: its buffers copied back to back into one device buffer
// (and back out) with one batched copy kernel launch each way, for the device
// backends that reduce a group as one buffer (NCCL, host-staged).
#pragma once

#include <cuda_runtime_api.h>

#include <vector>

#include "collectives/backend.h"
#include "collectives/cuda/batched_copy.h"
#include "common/buffer.h"
#include "common/status.h"

namespace braid {
namespace cuda {

enum class GroupCopy { kPack, kUnpack };

// kPack: each buffer to its place in `packed` (offsets are the running sum of the
// buffers' bytes, in order); kUnpack: back from there. Scaled on the way as
// `scaling` says. Enqueued on `stream`.
Status CopyGroup(const BatchedCopier& copier, const std::vector<BufferView>& buffers, char* packed,
                 GroupCopy direction, cudaStream_t stream, const Scaling& scaling = Scaling());

// Scales `buf` in place (nothing when `scaling` is the identity). On `stream`.
Status ScaleInPlace(const BatchedCopier& copier, const BufferView& buf, const Scaling& scaling,
                    cudaStream_t stream);

// The pre- and post-reduction passes of a ReduceScaling.
inline Scaling PreScaling(const ReduceScaling& s) {
  return Scaling{s.prescale, 1};
}
inline Scaling PostScaling(const ReduceScaling& s) {
  return Scaling{s.postscale, s.divisor};
}

}  // namespace cuda
}  // namespace braid
