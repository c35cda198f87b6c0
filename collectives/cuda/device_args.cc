#include "collectives/cuda/device_args.h"

#include <cuda_runtime_api.h>

#include <string>

namespace braid {
namespace cuda {
namespace {

std::string Prefix(const BufferRules& rules, const char* what) {
  return std::string(rules.backend) + " " + what + ": ";
}

Status CheckPointer(const void* data, const BufferRules& rules, const char* what) {
  const int device = rules.device;
  cudaPointerAttributes attr{};
  const cudaError_t rc = cudaPointerGetAttributes(&attr, data);
  if (rc != cudaSuccess) {
    (void)cudaGetLastError();  // not sticky: leave nothing for the next call
    return InvalidArgument(Prefix(rules, what) + "the buffer is not CUDA memory (" +
                           cudaGetErrorName(rc) + ")");
  }
  if (attr.type == cudaMemoryTypeManaged) return Status::OK();
  if (attr.type != cudaMemoryTypeDevice) {
    return InvalidArgument(Prefix(rules, what) + "the buffer is host memory, not memory on " +
                           DeviceName(device));
  }
  if (attr.device != device) {
    return InvalidArgument(Prefix(rules, what) + "the buffer is on " + DeviceName(attr.device) +
                           ", the backend uses " + DeviceName(device));
  }
  return Status::OK();
}

}  // namespace

Status CheckBuffer(const BufferView& buf, const BufferRules& rules, const char* what) {
  if (buf.device != rules.device) {
    return InvalidArgument(Prefix(rules, what) + "the backend handles memory on " +
                           DeviceName(rules.device) + ", not " + DeviceName(buf.device));
  }
  if (!IsValidDataType(static_cast<int32_t>(buf.dtype))) {
    return InvalidArgument(Prefix(rules, what) + "invalid data type " +
                           std::to_string(static_cast<int32_t>(buf.dtype)));
  }
  if (buf.count < 0) return InvalidArgument(Prefix(rules, what) + "negative element count");
  if (buf.count > 0 && buf.data == nullptr) {
    return InvalidArgument(Prefix(rules, what) + "null data pointer");
  }
  if (rules.check_pointers && buf.count > 0) return CheckPointer(buf.data, rules, what);
  return Status::OK();
}

Status CheckGroup(const std::vector<BufferView>& buffers, const BufferView& staging,
                  const BufferRules& rules, int64_t* total_bytes) {
  int64_t total = 0;
  for (const BufferView& b : buffers) {
    BRAID_RETURN_IF_ERROR(CheckBuffer(b, rules, "fused allreduce"));
    if (b.dtype != buffers[0].dtype) {
      return InvalidArgument(Prefix(rules, "fused allreduce") + "a group mixes dtypes");
    }
    total += b.bytes();
  }
  BRAID_RETURN_IF_ERROR(CheckBuffer(staging, rules, "fused allreduce staging"));
  if (staging.bytes() < total) {
    return Internal(Prefix(rules, "fused allreduce") + "staging holds " +
                    std::to_string(staging.bytes()) + " bytes, the group needs " +
                    std::to_string(total));
  }
  *total_bytes = total;
  return Status::OK();
}

Status CheckAllgatherv(const BufferView& send, const BufferView& recv,
                       const std::vector<int64_t>& counts, int rank, int size,
                       const BufferRules& rules) {
  BRAID_RETURN_IF_ERROR(CheckBuffer(send, rules, "allgatherv send"));
  BRAID_RETURN_IF_ERROR(CheckBuffer(recv, rules, "allgatherv recv"));
  if (static_cast<int64_t>(counts.size()) != size) {
    return InvalidArgument(Prefix(rules, "allgatherv") + "" + std::to_string(counts.size()) +
                           " counts for " + std::to_string(size) + " ranks");
  }
  if (send.dtype != recv.dtype) {
    return InvalidArgument(Prefix(rules, "allgatherv") + "send and recv dtypes differ");
  }
  int64_t total = 0;
  for (int64_t c : counts) {
    if (c < 0) return InvalidArgument(Prefix(rules, "allgatherv") + "negative count");
    total += c;
  }
  if (counts[rank] != send.count) {
    return InvalidArgument(Prefix(rules, "allgatherv") + "send holds " +
                           std::to_string(send.count) + " elements, counts[rank] says " +
                           std::to_string(counts[rank]));
  }
  if (recv.count != total) {
    return InvalidArgument(Prefix(rules, "allgatherv") + "recv holds " +
                           std::to_string(recv.count) + " elements, counts sum to " +
                           std::to_string(total));
  }
  return Status::OK();
}

}  // namespace cuda
}  // namespace braid
