#include "collectives/host_checks.h"

#include <string>

namespace braid {

Status CheckHostBuffer(const BufferView& buf, const char* what, const char* backend) {
  if (buf.device != kCpuDevice) {
    return InvalidArgument(std::string(what) + ": " + backend + " handles host memory, not " +
                           DeviceName(buf.device));
  }
  if (!IsValidDataType(static_cast<int32_t>(buf.dtype))) {
    return InvalidArgument(std::string(what) + ": invalid data type");
  }
  if (buf.count < 0) return InvalidArgument(std::string(what) + ": negative element count");
  if (buf.count > 0 && buf.data == nullptr) {
    return InvalidArgument(std::string(what) + ": null data pointer");
  }
  return Status::OK();
}

Status CheckBroadcastRoot(int root, int size) {
  if (root >= 0 && root < size) return Status::OK();
  return InvalidArgument("broadcast: root " + std::to_string(root) + " outside [0, " +
                         std::to_string(size) + ")");
}

Status CheckAllgathervCounts(const BufferView& send, const BufferView& recv,
                             const std::vector<int64_t>& counts, int rank, int size) {
  if (static_cast<int>(counts.size()) != size) {
    return InvalidArgument("allgatherv: " + std::to_string(counts.size()) + " counts for " +
                           std::to_string(size) + " ranks");
  }
  if (send.dtype != recv.dtype) return InvalidArgument("allgatherv: send and recv dtypes differ");
  if (counts[rank] != send.count) {
    return InvalidArgument("allgatherv: send holds " + std::to_string(send.count) +
                           " elements, counts[rank] says " + std::to_string(counts[rank]));
  }
  int64_t total = 0;
  for (int64_t c : counts) {
    if (c < 0) return InvalidArgument("allgatherv: negative count");
    total += c;
  }
  if (recv.count != total) {
    return InvalidArgument("allgatherv: recv holds " + std::to_string(recv.count) +
                           " elements, counts sum to " + std::to_string(total));
  }
  return Status::OK();
}

Status CheckHostAllgatherv(const BufferView& send, const BufferView& recv,
                           const std::vector<int64_t>& counts, int rank, int size,
                           const char* backend) {
  BRAID_RETURN_IF_ERROR(CheckHostBuffer(send, "allgatherv send", backend));
  BRAID_RETURN_IF_ERROR(CheckHostBuffer(recv, "allgatherv recv", backend));
  return CheckAllgathervCounts(send, recv, counts, rank, size);
}

}  // namespace braid
