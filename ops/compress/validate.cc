#include "ops/compress/validate.h"

#include <limits>
#include <string>

#include "ops/compress/dtype_dispatch.h"

namespace braid::compress {
namespace {

Status Invalid(const char* op, const std::string& why) {
  return InvalidArgument(std::string("compress '") + op + "': " + why);
}

}  // namespace

Status CheckValues(const char* op, const BufferView& x) {
  if (!IsValueType(x.dtype)) {
    return Invalid(op, std::string("values of dtype ") + DataTypeName(x.dtype) +
                           " (supported: float16, bfloat16, float32, float64)");
  }
  if (x.count < 0) return Invalid(op, "a negative element count");
  if (x.count > 0 && x.data == nullptr) return Invalid(op, "a buffer without data");
  return Status::OK();
}

Status CheckOutputs(const char* op, const BufferView& x, const BufferView& indices,
                    const BufferView& values, int64_t needed) {
  if (!IsIndexType(indices.dtype)) {
    return Invalid(op, std::string("indices of dtype ") + DataTypeName(indices.dtype) +
                           " (supported: int32, int64)");
  }
  if (indices.dtype == DataType::kInt32 && x.count - 1 > std::numeric_limits<int32_t>::max()) {
    return Invalid(op, std::to_string(x.count) + " elements do not fit int32 indices: use int64");
  }
  if (indices.count < needed || (needed > 0 && indices.data == nullptr)) {
    return Invalid(op, "the indices hold " + std::to_string(indices.count) + " entries, " +
                           std::to_string(needed) + " needed");
  }
  if (indices.device != x.device) {
    return Invalid(op, "the indices are on " + DeviceName(indices.device) + ", the values on " +
                           DeviceName(x.device));
  }
  if (values.data == nullptr) return Status::OK();
  if (values.dtype != x.dtype) {
    return Invalid(op, std::string("the output values are ") + DataTypeName(values.dtype) +
                           ", the input " + DataTypeName(x.dtype));
  }
  if (values.count < needed) {
    return Invalid(op, "the output values hold " + std::to_string(values.count) + " entries, " +
                           std::to_string(needed) + " needed");
  }
  if (values.device != x.device) {
    return Invalid(op, "the output values are on " + DeviceName(values.device) + ", the input on " +
                           DeviceName(x.device));
  }
  return Status::OK();
}

Status CheckK(const char* op, const BufferView& x, int64_t k) {
  if (k < 0 || k > x.count) {
    return Invalid(op, "k = " + std::to_string(k) + " outside [0, " + std::to_string(x.count) +
                           "], the number of elements");
  }
  return Status::OK();
}

Status KernelsFor(const char* op, const BufferView& x, const CompressDeviceKernels** kernels) {
  *kernels = nullptr;
  if (x.device == kCpuDevice) return Status::OK();
  return CompressDeviceKernelsFor(op, x.device, kernels);
}

}  // namespace braid::compress
