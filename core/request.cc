#include "core/request.h"

#include <cmath>
#include <sstream>

#include "common/text.h"

namespace braid {
namespace {

// The product of `shape`, or -1 when a dimension is negative or the product
// overflows. A zero dimension makes it 0 whatever the others are (an empty array
// of shape [2^40, 2^40, 0] is a valid one).
int64_t CheckedProduct(const std::vector<int64_t>& shape) {
  bool overflow = false, empty = false;
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    empty = empty || d == 0;
    overflow = overflow || __builtin_mul_overflow(n, d, &n);
  }
  if (empty) return 0;
  return overflow ? -1 : n;
}

}  // namespace

int64_t RequestMeta::NumElements() const {
  return CheckedProduct(shape);
}

bool RequestMeta::operator==(const RequestMeta& o) const {
  return name == o.name && collective == o.collective && dtype == o.dtype && op == o.op &&
         root == o.root && device == o.device && prescale == o.prescale &&
         postscale == o.postscale && shape == o.shape;
}

int64_t Response::NumBytes() const {
  return meta.NumElements() * static_cast<int64_t>(DataTypeSize(meta.dtype));
}

Status ValidateShape(const std::string& name, const std::vector<int64_t>& shape, DataType dtype) {
  auto refuse = [&](const std::string& why) {
    return InvalidArgument("tensor '" + name + "' of shape " + BracketList(shape) + ": " + why);
  };
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) return refuse("dimension " + std::to_string(i) + " is negative");
  }
  const int64_t elements = CheckedProduct(shape);
  if (elements < 0) return refuse("the element count overflows int64");
  int64_t bytes = 0;
  if (__builtin_mul_overflow(elements, static_cast<int64_t>(DataTypeSize(dtype)), &bytes)) {
    return refuse(std::to_string(elements) + " " + DataTypeName(dtype) +
                  " elements overflow an int64 byte count");
  }
  return Status::OK();
}

Status ValidateRequest(const RequestMeta& meta, int world_size) {
  if (meta.name.empty()) return InvalidArgument("a tensor name must not be empty");
  if (!IsValidDataType(static_cast<int32_t>(meta.dtype))) {
    return InvalidArgument("tensor '" + meta.name + "' has unknown dtype " +
                           std::to_string(static_cast<int32_t>(meta.dtype)));
  }
  BRAID_RETURN_IF_ERROR(ValidateShape(meta.name, meta.shape, meta.dtype));
  if (meta.collective == Collective::kBroadcast && (meta.root < 0 || meta.root >= world_size)) {
    return InvalidArgument("broadcast of '" + meta.name + "': root rank " +
                           std::to_string(meta.root) + " is not in [0, " +
                           std::to_string(world_size) + ")");
  }
  if (meta.collective == Collective::kAllgather && meta.shape.empty()) {
    return InvalidArgument("allgather of '" + meta.name +
                           "': a scalar has no first dimension to gather along");
  }
  if (!std::isfinite(meta.prescale) || !std::isfinite(meta.postscale)) {
    return InvalidArgument("allreduce of '" + meta.name + "': scale factors must be finite");
  }
  if (meta.collective != Collective::kAllreduce) return Status::OK();
  // A bool is true or false: there is no bool between them to average or scale to.
  if (meta.dtype == DataType::kBool && meta.op == ReduceOp::kAverage) {
    return InvalidArgument("allreduce of '" + meta.name +
                           "': bool tensors cannot be averaged (sum and max are logical or, "
                           "product and min logical and)");
  }
  if (meta.dtype == DataType::kBool && (meta.prescale != 1.0 || meta.postscale != 1.0)) {
    return InvalidArgument("allreduce of '" + meta.name +
                           "': bool tensors cannot be scaled (prescale and postscale must be 1)");
  }
  return Status::OK();
}

}  // namespace braid
