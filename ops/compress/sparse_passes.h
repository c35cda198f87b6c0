// The element-wise passes of the sparse training ops (sparse_step.h: M-DSGD, GMC,
// DGC) on one tensor's slices, on the host and, through the table below, on a GPU.
// Every pass reads and writes each element once; they are bound by memory
// bandwidth.
//
// The fused pass builds what a rank may send (z) in its memory, element by element:
//
//   g'  = clip * (g + weight_decay * w)       (the gradient with weight decay folded in)
//   a   = mu * a + g'                          (momentum form kHeavyBall)
//   a   = mu * (a + g')                        (momentum form kDgcNesterov)
//   z   = ((e + ca * a) + cg * g') + cl * l    (a term only when its coefficient is not 0;
//                                               l: the last update, may be absent)
//   e   = z                                    (dense write kNone)
//   out = z, e = 0                             (dense write kZ: the tensor is sent whole)
//   out = g'                                   (dense write kGradient: only g' is written)
//
// with e the memory, a the momentum, w the parameter and g the gradient. The
// arithmetic is the dtype's own (float32 or float64), evaluated in the order written
// with no fused multiply-add (the host file is built with -ffp-contract=off, the GPU
// kernels use explicitly rounded operations), so the host and a GPU write the same bits.
//
// Threading: reentrant; the host passes run on the calling thread.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "common/types.h"

namespace braid::compress {

enum class MomentumForm { kNone, kHeavyBall, kDgcNesterov };
enum class DenseWrite { kNone, kZ, kGradient };

struct FusedCoefficients {
  double clip = 1.0;
  double weight_decay = 0.0;
  MomentumForm form = MomentumForm::kNone;
  double mu = 0.0;  // the momentum factor
  double ca = 0.0;  // z's coefficient of the momentum
  double cg = 0.0;  // z's coefficient of g'
  double cl = 0.0;  // z's coefficient of the last update
  DenseWrite dense = DenseWrite::kNone;
};

// One tensor's slices, `count` elements of `dtype` each, in one memory.
struct FusedSegment {
  const void* w = nullptr;
  const void* g = nullptr;
  void* memory = nullptr;
  void* momentum = nullptr;    // null when the form is kNone (or dense write kGradient)
  const void* last = nullptr;  // null: no last-update term
  void* dense_out = nullptr;   // the dense writes' target
  int64_t count = 0;
  DataType dtype = DataType::kFloat32;
};

// After the exchange:
//   Apply:          w = w - scale * src;  keep = src when keep is not null
//   DenseMomentum:  a = mu * a + avg;  w = w - lr * a          (nesterov: w = w - lr * (avg + mu *
//   a))
struct ApplySegment {
  void* w = nullptr;
  const void* src = nullptr;
  void* keep = nullptr;
  void* momentum = nullptr;
  int64_t count = 0;
  DataType dtype = DataType::kFloat32;
};

// Host versions (float32, float64).
void FusedPassHost(const FusedSegment& s, const FusedCoefficients& c);
void ApplyHost(const ApplySegment& s, double scale);
void DenseMomentumHost(const ApplySegment& s, double mu, double lr, bool nesterov);
// sum over the elements of (g + weight_decay * w)^2, accumulated in double.
double SquaredNormHost(const void* w, const void* g, int64_t count, DataType dtype,
                       double weight_decay);

// The GPU kernels, registered by the CUDA plugin library when it loads (as
// device_kernels.h). All work is ordered on `stream`; the host waits only where said.
struct SparseStepDeviceKernels {
  Status (*allocate)(int device, int64_t bytes, void** memory) = nullptr;
  void (*release)(int device, void* memory) = nullptr;
  Status (*zero)(int device, void* memory, int64_t bytes, void* stream) = nullptr;
  Status (*copy)(int device, void* dst, const void* src, int64_t bytes, void* stream) = nullptr;
  Status (*fused_pass)(int device, const FusedSegment& s, const FusedCoefficients& c,
                       void* stream) = nullptr;
  Status (*apply)(int device, const ApplySegment& s, double scale, void* stream) = nullptr;
  Status (*dense_momentum)(int device, const ApplySegment& s, double mu, double lr, bool nesterov,
                           void* stream) = nullptr;
  // The host waits for the result.
  Status (*squared_norm)(int device, const void* w, const void* g, int64_t count, DataType dtype,
                         double weight_decay, double* out, void* stream) = nullptr;
  // indices[j] += base for j < count (int32 or int64).
  Status (*add_base)(int device, void* indices, DataType index_dtype, int64_t count, int64_t base,
                     void* stream) = nullptr;
};

// Installs `kernels` (null removes them).
void RegisterSparseStepDeviceKernels(const SparseStepDeviceKernels* kernels);
const SparseStepDeviceKernels* SparseStepDeviceKernelsOrNull();
// The table, loading the CUDA plugin first when none is registered; fails naming
// `op` and `device` when there is none.
Status SparseStepDeviceKernelsFor(const std::string& op, int device,
                                  const SparseStepDeviceKernels** out);

}  // namespace braid::compress
