#include "collectives/cuda/group_copy.h"

namespace braid {
namespace cuda {

Status CopyGroup(const BatchedCopier& copier, const std::vector<BufferView>& buffers, char* packed,
                 GroupCopy direction, cudaStream_t stream, const Scaling& scaling) {
  if (buffers.empty()) return Status::OK();
  std::vector<CopyEntry> entries;
  entries.reserve(buffers.size());
  int64_t offset = 0;
  for (const BufferView& b : buffers) {
    char* in_group = packed + offset;
    if (direction == GroupCopy::kPack) {
      entries.push_back(CopyEntry{b.data, in_group, b.count});
    } else {
      entries.push_back(CopyEntry{in_group, b.data, b.count});
    }
    offset += b.bytes();
  }
  return copier.Copy(entries, buffers[0].dtype, scaling, stream);
}

Status ScaleInPlace(const BatchedCopier& copier, const BufferView& buf, const Scaling& scaling,
                    cudaStream_t stream) {
  if ((scaling.factor == 1.0 && scaling.divisor <= 1) || buf.count == 0) return Status::OK();
  return copier.Copy({CopyEntry{buf.data, buf.data, buf.count}}, buf.dtype, scaling, stream);
}

}  // namespace cuda
}  // namespace braid
