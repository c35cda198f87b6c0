// Element values for the MPI transport tests: typed access to a buffer of any
// dtype, and per-rank contributions whose reductions are exact in every dtype.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstdint>

#include "common/half.h"
#include "common/types.h"
#include "tests/mpi/world.h"

namespace braid {
namespace test {

// Every dtype whose sum is arithmetic (bool's is logical: its own suite).
inline constexpr DataType kDtypes[] = {DataType::kUInt8,    DataType::kInt8,    DataType::kInt16,
                                       DataType::kInt32,    DataType::kInt64,   DataType::kFloat16,
                                       DataType::kBFloat16, DataType::kFloat32, DataType::kFloat64};
inline constexpr ReduceOp kOps[] = {ReduceOp::kSum, ReduceOp::kMin, ReduceOp::kMax,
                                    ReduceOp::kProduct};

using braid_test::WorldRank;
using braid_test::WorldSize;

// Collective: true on every rank when the check failed on any. Checks stop on
// all ranks together, so a failure never leaves the others waiting in a collective.
inline bool AnyRankFailed(bool failed_here) {
  int mine = failed_here ? 1 : 0, any = 0;
  MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any != 0;
}

inline void SetValue(void* buf, DataType dtype, int64_t i, double v) {
  switch (dtype) {
    case DataType::kUInt8:
      static_cast<uint8_t*>(buf)[i] = static_cast<uint8_t>(v);
      break;
    case DataType::kInt8:
      static_cast<int8_t*>(buf)[i] = static_cast<int8_t>(v);
      break;
    case DataType::kInt32:
      static_cast<int32_t*>(buf)[i] = static_cast<int32_t>(v);
      break;
    case DataType::kInt64:
      static_cast<int64_t*>(buf)[i] = static_cast<int64_t>(v);
      break;
    case DataType::kFloat16:
      static_cast<uint16_t*>(buf)[i] = FloatToHalf(float(v));
      break;
    case DataType::kBFloat16:
      static_cast<uint16_t*>(buf)[i] = FloatToBFloat16(float(v));
      break;
    case DataType::kFloat32:
      static_cast<float*>(buf)[i] = static_cast<float>(v);
      break;
    case DataType::kFloat64:
      static_cast<double*>(buf)[i] = v;
      break;
    case DataType::kInt16:
      static_cast<int16_t*>(buf)[i] = static_cast<int16_t>(v);
      break;
    case DataType::kBool:
      static_cast<uint8_t*>(buf)[i] = v != 0.0;
      break;
  }
}

inline double GetValue(const void* buf, DataType dtype, int64_t i) {
  switch (dtype) {
    case DataType::kUInt8:
      return static_cast<const uint8_t*>(buf)[i];
    case DataType::kInt8:
      return static_cast<const int8_t*>(buf)[i];
    case DataType::kInt32:
      return static_cast<const int32_t*>(buf)[i];
    case DataType::kInt64:
      return static_cast<double>(static_cast<const int64_t*>(buf)[i]);
    case DataType::kFloat16:
      return HalfToFloat(static_cast<const uint16_t*>(buf)[i]);
    case DataType::kBFloat16:
      return BFloat16ToFloat(static_cast<const uint16_t*>(buf)[i]);
    case DataType::kFloat32:
      return static_cast<const float*>(buf)[i];
    case DataType::kFloat64:
      return static_cast<const double*>(buf)[i];
    case DataType::kInt16:
      return static_cast<const int16_t*>(buf)[i];
    case DataType::kBool:
      return static_cast<const uint8_t*>(buf)[i];
  }
  return 0;
}

// Small integers, exact in every dtype (bfloat16 included) and in every result.
inline double Contribution(ReduceOp op, DataType dtype, int rank, int64_t i) {
  switch (op) {
    case ReduceOp::kSum:
      return (rank + 1) + (i % 3);
    case ReduceOp::kProduct:
      return 1 + ((i + rank) % 2);
    default:
      return ((i * 7 + rank * 3) % 11) - (dtype == DataType::kUInt8 ? 0 : 5);
  }
}

inline double Expected(ReduceOp op, DataType dtype, int nranks, int64_t i) {
  double acc = Contribution(op, dtype, 0, i);
  for (int r = 1; r < nranks; ++r) {
    const double v = Contribution(op, dtype, r, i);
    switch (op) {
      case ReduceOp::kSum:
        acc += v;
        break;
      case ReduceOp::kProduct:
        acc *= v;
        break;
      case ReduceOp::kMin:
        acc = std::min(acc, v);
        break;
      default:
        acc = std::max(acc, v);
        break;
    }
  }
  return acc;
}

}  // namespace test
}  // namespace braid
