#include "collectives/nccl/nccl_datatypes.h"

#include <string>

namespace braid {
namespace nccl {

Status NcclType(DataType dtype, ncclDataType_t* out) {
  switch (dtype) {
    case DataType::kUInt8:
      *out = ncclUint8;
      return Status::OK();
    case DataType::kInt8:
      *out = ncclInt8;
      return Status::OK();
    case DataType::kInt32:
      *out = ncclInt32;
      return Status::OK();
    case DataType::kInt64:
      *out = ncclInt64;
      return Status::OK();
    case DataType::kFloat16:
      *out = ncclFloat16;
      return Status::OK();
    case DataType::kBFloat16:
      *out = ncclBfloat16;
      return Status::OK();
    case DataType::kFloat32:
      *out = ncclFloat32;
      return Status::OK();
    case DataType::kFloat64:
      *out = ncclFloat64;
      return Status::OK();
    case DataType::kInt16:
    case DataType::kBool:
      // The same words on every rank (they agreed on the dtype): no rank's handle
      // says anything the others' do not.
      return InvalidArgument(std::string("nccl has no ") + DataTypeName(dtype) +
                             " type (it carries uint8, int8, int32, int64, float16, bfloat16, "
                             "float32 and float64); keep " +
                             DataTypeName(dtype) +
                             " tensors in host memory, or set BRAID_GPU_BACKEND=mpi to stage "
                             "them through it");
  }
  return InvalidArgument("nccl: invalid data type " + std::to_string(static_cast<int32_t>(dtype)));
}

Status NcclOp(ReduceOp op, ncclRedOp_t* out) {
  switch (op) {
    case ReduceOp::kSum:
      *out = ncclSum;
      return Status::OK();
    case ReduceOp::kMin:
      *out = ncclMin;
      return Status::OK();
    case ReduceOp::kMax:
      *out = ncclMax;
      return Status::OK();
    case ReduceOp::kProduct:
      *out = ncclProd;
      return Status::OK();
    case ReduceOp::kAverage:
      return InvalidArgument(
          "nccl: the backend does not average; the caller sums and divides (backend.h)");
  }
  return InvalidArgument("nccl: invalid reduce op " + std::to_string(static_cast<int32_t>(op)));
}

}  // namespace nccl
}  // namespace braid
