#include "core/request.h"

#include <cmath>

namespace braid {

int64_t RequestMeta::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool RequestMeta::operator==(const RequestMeta& o) const {
  return name == o.name && collective == o.collective && dtype == o.dtype && op == o.op &&
         root == o.root && device == o.device && prescale == o.prescale &&
         postscale == o.postscale && shape == o.shape;
}

int64_t Response::NumBytes() const {
  return meta.NumElements() * static_cast<int64_t>(DataTypeSize(meta.dtype));
}

Status ValidateRequest(const RequestMeta& meta, int world_size) {
  if (meta.name.empty()) return InvalidArgument("a tensor name must not be empty");
  for (int64_t d : meta.shape) {
    if (d < 0) return InvalidArgument("tensor '" + meta.name + "' has a negative dimension");
  }
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
  return Status::OK();
}

}  // namespace braid
