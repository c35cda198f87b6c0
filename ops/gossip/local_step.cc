#include "ops/gossip/local_step.h"

#include <string>

namespace braid::gossip {
namespace {

// Arithmetic in T (as the parameters are stored): float32 models step in float32.
template <typename T, bool kNesterov, bool kMomentum>
void Step(T* __restrict x, const T* __restrict g, T* __restrict u, int64_t n,
          const LocalStepCoefficients& c) {
  const T lr = static_cast<T>(c.lr);
  const T beta = static_cast<T>(c.beta);
  const T wd = static_cast<T>(c.weight_decay);
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i] + wd * x[i];
    // Local momentum step; without a momentum buffer u~ = g~ (beta = 0, D-PSGD).
    const T ui = kMomentum ? beta * u[i] + gi : gi;
    x[i] = x[i] - lr * (kNesterov ? beta * ui + gi : ui);
    if (kMomentum) u[i] = ui;
  }
}

template <typename T>
void Dispatch(const LocalStepSegment& s, const LocalStepCoefficients& c) {
  T* x = static_cast<T*>(s.x);
  const T* g = static_cast<const T*>(s.g);
  T* u = static_cast<T*>(s.u);
  if (u == nullptr) {
    if (c.nesterov) {
      Step<T, true, false>(x, g, u, s.count, c);
    } else {
      Step<T, false, false>(x, g, u, s.count, c);
    }
  } else if (c.nesterov) {
    Step<T, true, true>(x, g, u, s.count, c);
  } else {
    Step<T, false, true>(x, g, u, s.count, c);
  }
}

template <typename T>
double Distance(const T* x, const T* sum, int64_t n, double inv_ranks) {
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - static_cast<double>(sum[i]) * inv_ranks;
    acc += d * d;
  }
  return acc;
}

Status Unsupported(const char* what, DataType dtype) {
  return InvalidArgument(std::string(what) + ": unsupported dtype " + DataTypeName(dtype) +
                         " (float32 and float64 are)");
}

}  // namespace

Status LocalStepHost(const LocalStepSegment& segment, const LocalStepCoefficients& c) {
  switch (segment.dtype) {
    case DataType::kFloat32:
      Dispatch<float>(segment, c);
      return Status::OK();
    case DataType::kFloat64:
      Dispatch<double>(segment, c);
      return Status::OK();
    default:
      return Unsupported("decentralized local step", segment.dtype);
  }
}

Status SquaredDistanceHost(const void* x, const void* sum, int64_t count, DataType dtype,
                           double inv_ranks, double* out) {
  switch (dtype) {
    case DataType::kFloat32:
      *out =
          Distance(static_cast<const float*>(x), static_cast<const float*>(sum), count, inv_ranks);
      return Status::OK();
    case DataType::kFloat64:
      *out = Distance(static_cast<const double*>(x), static_cast<const double*>(sum), count,
                      inv_ranks);
      return Status::OK();
    default:
      return Unsupported("consensus distance", dtype);
  }
}

}  // namespace braid::gossip
