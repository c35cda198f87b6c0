#include "ops/restart/slowmo_update.h"

namespace braid::restart {
namespace {

// Arithmetic in T (as the parameters are stored): float32 models update in float32.
template <typename T, bool kNesterov>
void Update(T* __restrict x, const T* __restrict sum, T* __restrict x_old, T* __restrict s,
            int64_t n, const SlowMoCoefficients& c) {
  const T inv_ranks = static_cast<T>(c.inv_ranks);
  const T inv_lr = static_cast<T>(c.inv_lr);
  const T beta = static_cast<T>(c.beta);
  const T alpha_lr = static_cast<T>(c.alpha_lr);
  for (int64_t i = 0; i < n; ++i) {
    // d: the block's slow gradient, measured from where the block started (x_old).
    const T d = (x_old[i] - sum[i] * inv_ranks) * inv_lr;
    const T si = beta * s[i] + d;
    const T xo = x_old[i] - alpha_lr * (kNesterov ? beta * si + d : si);
    s[i] = si;
    x_old[i] = xo;
    x[i] = xo;
  }
}

template <typename T>
void Dispatch(const SlowMoSegment& g, const SlowMoCoefficients& c) {
  T* x = static_cast<T*>(g.x);
  const T* sum = static_cast<const T*>(g.sum);
  T* x_old = static_cast<T*>(g.x_old);
  T* s = static_cast<T*>(g.s);
  if (c.nesterov) {
    Update<T, true>(x, sum, x_old, s, g.count, c);
  } else {
    Update<T, false>(x, sum, x_old, s, g.count, c);
  }
}

}  // namespace

Status SlowMoUpdateHost(const SlowMoSegment& segment, const SlowMoCoefficients& c) {
  switch (segment.dtype) {
    case DataType::kFloat32:
      Dispatch<float>(segment, c);
      return Status::OK();
    case DataType::kFloat64:
      Dispatch<double>(segment, c);
      return Status::OK();
    default:
      return InvalidArgument(std::string("SlowMo update: unsupported dtype ") +
                             DataTypeName(segment.dtype) + " (float32 and float64 are)");
  }
}

}  // namespace braid::restart
