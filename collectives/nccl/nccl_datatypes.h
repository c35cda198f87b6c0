// braid's element types and reduce operators as NCCL's.
#pragma once

#include <nccl.h>

#include "common/status.h"
#include "common/types.h"

namespace braid {
namespace nccl {

// braid's DataTypes except int16 and bool, which NCCL lacks, have an NCCL
// counterpart; those two and values outside the enum are kInvalidArgument, with a
// message naming the dtype and the backend (the same on every rank).
Status NcclType(DataType dtype, ncclDataType_t* out);

// kSum, kMin, kMax and kProduct. kAverage is kInvalidArgument: averaging and
// scale factors are the caller's (backend.h), so ncclAvg is never used here.
Status NcclOp(ReduceOp op, ncclRedOp_t* out);

}  // namespace nccl
}  // namespace braid
