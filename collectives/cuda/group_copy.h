// Packing a fused group: its buffers copied back to back into one device buffer
// (and back out) with one batched copy kernel launch each way, for the device
// backends that reduce a group as one buffer (NCCL, host-staged).
#pragma once

#include <cuda_runtime_api.h>

#include <vector>

#include "collectives/cuda/batched_copy.h"
#include "common/buffer.h"
#include "common/status.h"

namespace braid {
namespace cuda {

enum class GroupCopy { kPack, kUnpack };

// kPack: each buffer to its place in `packed` (offsets are the running sum of the
// buffers' bytes, in order); kUnpack: back from there. Enqueued on `stream`.
Status CopyGroup(const BatchedCopier& copier, const std::vector<BufferView>& buffers, char* packed,
                 GroupCopy direction, cudaStream_t stream);

}  // namespace cuda
}  // namespace braid
