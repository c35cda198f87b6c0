#include "collectives/backend.h"

#include <cstring>

#include "collectives/cpu/reduce.h"

namespace braid {

Status Backend::AllreduceMany(const std::vector<BufferView>& buffers, ReduceOp op,
                              const BufferView& staging) {
  if (buffers.size() == 1) return Allreduce(buffers[0], op);
  int64_t total = 0;
  for (const BufferView& b : buffers) total += b.bytes();
  if (staging.bytes() < total) {
    return Internal("fused allreduce: staging holds " + std::to_string(staging.bytes()) +
                    " bytes, the group needs " + std::to_string(total));
  }
  char* packed = static_cast<char*>(staging.data);
  int64_t offset = 0;
  for (const BufferView& b : buffers) {
    if (b.bytes() > 0) std::memcpy(packed + offset, b.data, static_cast<size_t>(b.bytes()));
    offset += b.bytes();
  }
  BufferView fused = staging;
  fused.count = total / static_cast<int64_t>(DataTypeSize(staging.dtype));
  BRAID_RETURN_IF_ERROR(Allreduce(fused, op));
  offset = 0;
  for (const BufferView& b : buffers) {
    if (b.bytes() > 0) std::memcpy(b.data, packed + offset, static_cast<size_t>(b.bytes()));
    offset += b.bytes();
  }
  return Status::OK();
}

Status Backend::AllreduceScaled(const std::vector<BufferView>& buffers, ReduceOp op,
                                const BufferView& staging, const ReduceScaling& scaling) {
  if (scaling.pre()) {
    for (const BufferView& b : buffers)
      cpu::ScaleCopy(b.data, b.data, b.count, b.dtype, scaling.prescale);
  }
  BRAID_RETURN_IF_ERROR(AllreduceMany(buffers, op, staging));
  if (scaling.post()) {
    for (const BufferView& b : buffers)
      cpu::ScaleCopy(b.data, b.data, b.count, b.dtype, scaling.postscale, scaling.divisor);
  }
  return Status::OK();
}

Status Backend::NeighborExchange(const std::vector<PeerBuffer>&, const std::vector<PeerBuffer>&) {
  return InvalidArgument(std::string("the ") + name() +
                         " backend does not implement neighbour exchange");
}

}  // namespace braid
