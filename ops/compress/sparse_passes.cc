// The sparse ops' element-wise passes on the host (sparse_passes.h) and the
// registration of their GPU kernels. Built with -ffp-contract=off
// (ops/CMakeLists.txt): the passes must round like the GPU kernels.
#include "ops/compress/sparse_passes.h"

#include <atomic>

#include "collectives/device_plane.h"

namespace braid::compress {
namespace {

std::atomic<const SparseStepDeviceKernels*> g_kernels{nullptr};

template <typename T>
void Fused(const FusedSegment& s, const FusedCoefficients& c) {
  const T* w = static_cast<const T*>(s.w);
  const T* g = static_cast<const T*>(s.g);
  T* e = static_cast<T*>(s.memory);
  T* a = static_cast<T*>(s.momentum);
  const T* l = static_cast<const T*>(s.last);
  T* out = static_cast<T*>(s.dense_out);
  const T clip = static_cast<T>(c.clip), wd = static_cast<T>(c.weight_decay);
  const T mu = static_cast<T>(c.mu), ca = static_cast<T>(c.ca), cg = static_cast<T>(c.cg);
  const T cl = static_cast<T>(c.cl);
  const bool has_a = c.form != MomentumForm::kNone && a != nullptr;
  const bool nesterov = c.form == MomentumForm::kDgcNesterov;
  for (int64_t i = 0; i < s.count; ++i) {
    const T gp = clip * (g[i] + wd * w[i]);
    if (c.dense == DenseWrite::kGradient) {
      out[i] = gp;
      continue;
    }
    T z = e[i];
    if (has_a) {
      const T ai = nesterov ? mu * (a[i] + gp) : mu * a[i] + gp;
      a[i] = ai;
      if (ca != T(0)) z = z + ca * ai;
    }
    if (cg != T(0)) z = z + cg * gp;
    if (l != nullptr && cl != T(0)) z = z + cl * l[i];
    if (c.dense == DenseWrite::kZ) {
      out[i] = z;
      e[i] = T(0);
    } else {
      e[i] = z;
    }
  }
}

template <typename T>
void Apply(const ApplySegment& s, double scale) {
  T* w = static_cast<T*>(s.w);
  const T* src = static_cast<const T*>(s.src);
  T* keep = static_cast<T*>(s.keep);
  const T f = static_cast<T>(scale);
  if (f == T(1)) {
    for (int64_t i = 0; i < s.count; ++i) w[i] = w[i] - src[i];
  } else {
    for (int64_t i = 0; i < s.count; ++i) w[i] = w[i] - f * src[i];
  }
  if (keep != nullptr && keep != src) {
    for (int64_t i = 0; i < s.count; ++i) keep[i] = src[i];
  }
}

template <typename T>
void DenseMomentum(const ApplySegment& s, double mu, double lr, bool nesterov) {
  T* w = static_cast<T*>(s.w);
  const T* avg = static_cast<const T*>(s.src);
  T* a = static_cast<T*>(s.momentum);
  const T m = static_cast<T>(mu), r = static_cast<T>(lr);
  for (int64_t i = 0; i < s.count; ++i) {
    const T ai = m * a[i] + avg[i];
    a[i] = ai;
    w[i] = w[i] - r * (nesterov ? avg[i] + m * ai : ai);
  }
}

template <typename T>
double SquaredNorm(const void* wv, const void* gv, int64_t count, double weight_decay) {
  const T* w = static_cast<const T*>(wv);
  const T* g = static_cast<const T*>(gv);
  const T wd = static_cast<T>(weight_decay);
  double sum = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    const double v = static_cast<double>(g[i] + wd * w[i]);
    sum += v * v;
  }
  return sum;
}

}  // namespace

void FusedPassHost(const FusedSegment& s, const FusedCoefficients& c) {
  if (s.dtype == DataType::kFloat64) {
    Fused<double>(s, c);
  } else {
    Fused<float>(s, c);
  }
}

void ApplyHost(const ApplySegment& s, double scale) {
  if (s.dtype == DataType::kFloat64) {
    Apply<double>(s, scale);
  } else {
    Apply<float>(s, scale);
  }
}

void DenseMomentumHost(const ApplySegment& s, double mu, double lr, bool nesterov) {
  if (s.dtype == DataType::kFloat64) {
    DenseMomentum<double>(s, mu, lr, nesterov);
  } else {
    DenseMomentum<float>(s, mu, lr, nesterov);
  }
}

double SquaredNormHost(const void* w, const void* g, int64_t count, DataType dtype,
                       double weight_decay) {
  if (dtype == DataType::kFloat64) return SquaredNorm<double>(w, g, count, weight_decay);
  return SquaredNorm<float>(w, g, count, weight_decay);
}

void RegisterSparseStepDeviceKernels(const SparseStepDeviceKernels* kernels) {
  g_kernels.store(kernels, std::memory_order_release);
}

const SparseStepDeviceKernels* SparseStepDeviceKernelsOrNull() {
  return g_kernels.load(std::memory_order_acquire);
}

Status SparseStepDeviceKernelsFor(const std::string& op, int device,
                                  const SparseStepDeviceKernels** out) {
  const SparseStepDeviceKernels* k = SparseStepDeviceKernelsOrNull();
  Status loaded;
  if (k == nullptr) {
    // The kernels come with the CUDA plugin, which registers them when it loads.
    DevicePlugin unused;
    loaded = LoadDevicePlugin(&unused);
    k = SparseStepDeviceKernelsOrNull();
  }
  if (k == nullptr) {
    return InvalidArgument("sparse op '" + op + "': the buffers are on " + DeviceName(device) +
                           ", but no GPU kernels for the sparse ops are available" +
                           (loaded.ok() ? std::string() : " (" + loaded.message() + ")") +
                           "; use host buffers");
  }
  *out = k;
  return Status::OK();
}

}  // namespace braid::compress
