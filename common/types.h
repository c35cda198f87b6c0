// The shared vocabulary of every layer: element types, reduction operators and
// collective kinds. Plain enums with stable integer values: the C API and the
// wire format both carry them as integers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace braid {

enum class DataType : int32_t {
  kUInt8 = 0,
  kInt8 = 1,
  kInt32 = 2,
  kInt64 = 3,
  kFloat16 = 4,
  kBFloat16 = 5,
  kFloat32 = 6,
  kFloat64 = 7,
  // Appended later, so the values above keep their meaning on the wire and in the
  // C API. Host memory only: NCCL has neither type (collectives/nccl).
  kInt16 = 8,
  // One byte, 0 or 1. Reductions are logical: sum and max are OR, product and min
  // are AND (what numpy and torch do element-wise); average and scaling are refused.
  kBool = 9,
};
constexpr int kNumDataTypes = 10;

enum class ReduceOp : int32_t {
  kSum = 0,
  kAverage = 1,
  kMin = 2,
  kMax = 3,
  kProduct = 4,
};
constexpr int kNumReduceOps = 5;

enum class Collective : int32_t {
  kAllreduce = 0,
  kAllgather = 1,
  kBroadcast = 2,
  kBarrier = 3,
  // A rank that has run out of data: until every rank has joined, it takes part in
  // the others' collectives with empty contributions (see docs/engine.md).
  kJoin = 4,
  // Each rank contributes (index, value) pairs, its own number of them; every rank
  // ends with their sum scattered into a dense tensor (docs/sparse.md).
  kSparseAllreduce = 5,
  // The same pairs, gathered from every rank in rank order and returned as they are.
  kSparseAllgather = 6,
  // Each rank sends its tensor to some ranks and receives theirs from others (a
  // graph; docs/gossip.md) and mixes them: out = self_weight * x + sum of
  // weight_j * x_j over the ranks j it receives from.
  kNeighborAllreduce = 7,
  // The same exchange without the mixing: the received tensors are returned, one
  // block per neighbour in the order the rank named them.
  kNeighborExchange = 8,
};
constexpr int kNumCollectives = 9;

// The sparse collectives, whose tensors are (index, value) pairs.
inline bool IsSparse(Collective c) {
  return c == Collective::kSparseAllreduce || c == Collective::kSparseAllgather;
}

// The neighbour collectives, whose communication follows a graph.
inline bool IsNeighbor(Collective c) {
  return c == Collective::kNeighborAllreduce || c == Collective::kNeighborExchange;
}

// Device ordinal of host memory; 0, 1, ... are CUDA devices.
constexpr int kCpuDevice = -1;

size_t DataTypeSize(DataType dtype);
const char* DataTypeName(DataType dtype);
const char* ReduceOpName(ReduceOp op);
const char* CollectiveName(Collective collective);
std::string DeviceName(int device);

bool IsValidDataType(int32_t value);
bool IsValidReduceOp(int32_t value);
bool IsFloatingPoint(DataType dtype);
// float16 and bfloat16, which the host reduces through float32.
bool IsSixteenBitFloat(DataType dtype);

}  // namespace braid
