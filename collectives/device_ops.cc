#include "collectives/device_ops.h"

namespace braid {
namespace {

Status NoSparseKernels() {
  return InvalidArgument(
      "this GPU data plane has no kernels for sparse collectives (rebuild braid with CUDA)");
}

}  // namespace

Status DeviceOps::Zero(void*, int64_t) {
  return NoSparseKernels();
}

Status DeviceOps::ScatterAdd(void*, int64_t, int64_t, DataType, const void*, DataType, const void*,
                             int64_t, double) {
  return NoSparseKernels();
}

Status DeviceOps::FindIndexOutOfRange(const void*, DataType, int64_t, int64_t, int64_t*, int64_t*) {
  return NoSparseKernels();
}

Status DeviceOps::Mix(const MixArgs&) {
  return InvalidArgument(
      "this GPU data plane has no mixing kernel for neighbour collectives (rebuild braid with "
      "CUDA)");
}

}  // namespace braid
