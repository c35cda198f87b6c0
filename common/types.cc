#include "common/types.h"

namespace braid {

size_t DataTypeSize(DataType dtype) {
  switch (dtype) {
    case DataType::kUInt8:
    case DataType::kInt8:
    case DataType::kBool:
      return 1;
    case DataType::kInt16:
    case DataType::kFloat16:
    case DataType::kBFloat16:
      return 2;
    case DataType::kInt32:
    case DataType::kFloat32:
      return 4;
    case DataType::kInt64:
    case DataType::kFloat64:
      return 8;
  }
  return 0;
}

const char* DataTypeName(DataType dtype) {
  switch (dtype) {
    case DataType::kUInt8:
      return "uint8";
    case DataType::kInt8:
      return "int8";
    case DataType::kInt32:
      return "int32";
    case DataType::kInt64:
      return "int64";
    case DataType::kFloat16:
      return "float16";
    case DataType::kBFloat16:
      return "bfloat16";
    case DataType::kFloat32:
      return "float32";
    case DataType::kFloat64:
      return "float64";
    case DataType::kInt16:
      return "int16";
    case DataType::kBool:
      return "bool";
  }
  return "unknown";
}

const char* ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAverage:
      return "average";
    case ReduceOp::kMin:
      return "min";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kProduct:
      return "product";
  }
  return "unknown";
}

const char* CollectiveName(Collective collective) {
  switch (collective) {
    case Collective::kAllreduce:
      return "allreduce";
    case Collective::kAllgather:
      return "allgather";
    case Collective::kBroadcast:
      return "broadcast";
    case Collective::kBarrier:
      return "barrier";
    case Collective::kJoin:
      return "join";
    case Collective::kSparseAllreduce:
      return "sparse_allreduce";
    case Collective::kSparseAllgather:
      return "sparse_allgather";
    case Collective::kNeighborAllreduce:
      return "neighbor_allreduce";
    case Collective::kNeighborExchange:
      return "neighbor_exchange";
  }
  return "unknown";
}

std::string DeviceName(int device) {
  return device == kCpuDevice ? std::string("cpu") : "cuda:" + std::to_string(device);
}

bool IsValidDataType(int32_t value) {
  return value >= 0 && value < kNumDataTypes;
}
bool IsValidReduceOp(int32_t value) {
  return value >= 0 && value < kNumReduceOps;
}

bool IsFloatingPoint(DataType dtype) {
  return IsSixteenBitFloat(dtype) || dtype == DataType::kFloat32 || dtype == DataType::kFloat64;
}

bool IsSixteenBitFloat(DataType dtype) {
  return dtype == DataType::kFloat16 || dtype == DataType::kBFloat16;
}

}  // namespace braid
