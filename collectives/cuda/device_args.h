// Argument checks shared by the device data plane's backends (NCCL, host-staged): every rejection
// is kInvalidArgument (kInternal for an undersized staging buffer, the caller's bug) naming the
// collective, raised before anything is enqueued.
#pragma once

#include <cstdint>
#include <vector>

#include "common/buffer.h"
#include "common/status.h"

namespace braid {
namespace cuda {

// What a buffer must satisfy: on `device`, and with `check_pointers`, really
// device (or managed) memory there according to cudaPointerGetAttributes.
struct BufferRules {
  const char* backend = "nccl";  // names the backend in messages
  int device = 0;
  bool check_pointers = true;
};

Status CheckBuffer(const BufferView& buf, const BufferRules& rules, const char* what);

// A fused group: valid buffers of one dtype, and a staging buffer holding at least
// their total size, which is returned in `total_bytes`.
Status CheckGroup(const std::vector<BufferView>& buffers, const BufferView& staging,
                  const BufferRules& rules, int64_t* total_bytes);

// One non-negative count per rank, send holding counts[rank], recv their sum.
Status CheckAllgatherv(const BufferView& send, const BufferView& recv,
                       const std::vector<int64_t>& counts, int rank, int size,
                       const BufferRules& rules);

}  // namespace cuda
}  // namespace braid
