// SparseStep's buffers, state, fused passes and exchange (sparse_step.h). The
// selection is in sparse_select.cc, the methods in sparse_methods.cc.
#include "ops/compress/sparse_step.h"

#include <cmath>
#include <limits>

#include "ops/compress/memory.h"

namespace braid::compress {
namespace {

std::string What(const std::string& name) {
  return "sparse op '" + name + "': ";
}

}  // namespace

SparseStep::SparseStep(EnqueueFn enqueue, const SparseStepOptions& options)
    : options_(options), enqueue_(std::move(enqueue)) {}

Status SparseStep::CheckBuffers(const std::vector<BufferView>& params,
                                const std::vector<BufferView>& grads,
                                const std::vector<bool>& dense) const {
  const std::string what = What(options_.name);
  if (params.empty()) return InvalidArgument(what + "no parameters given");
  if (params.size() != grads.size()) {
    return InvalidArgument(what + std::to_string(params.size()) + " parameters but " +
                           std::to_string(grads.size()) + " gradients");
  }
  if (!dense.empty() && dense.size() != params.size()) {
    return InvalidArgument(what + std::to_string(dense.size()) + " dense flags for " +
                           std::to_string(params.size()) + " tensors");
  }
  const DataType dtype = params[0].dtype;
  const int device = params[0].device;
  if (dtype != DataType::kFloat32 && dtype != DataType::kFloat64) {
    return InvalidArgument(what + "parameter 0 is " + DataTypeName(dtype) +
                           "; the sparse ops take float32 and float64 tensors");
  }
  for (size_t i = 0; i < params.size(); ++i) {
    for (const BufferView* v : {&params[i], &grads[i]}) {
      const char* kind = v == &params[i] ? "parameter " : "gradient ";
      if (v->dtype != dtype || v->device != device) {
        return InvalidArgument(what + kind + std::to_string(i) + " is " + DataTypeName(v->dtype) +
                               " on " + DeviceName(v->device) + ", parameter 0 " +
                               DataTypeName(dtype) + " on " + DeviceName(device) +
                               ": one op takes one dtype on one device");
      }
      if (v->count < 0 || (v->count > 0 && v->data == nullptr)) {
        return InvalidArgument(what + kind + std::to_string(i) +
                               " has a null pointer or a negative count");
      }
    }
    if (params[i].count != grads[i].count) {
      return InvalidArgument(what + "parameter " + std::to_string(i) + " has " +
                             std::to_string(params[i].count) + " elements but its gradient " +
                             std::to_string(grads[i].count));
    }
  }
  return Status::OK();
}

Status SparseStep::SetBuffers(std::vector<BufferView> params, std::vector<BufferView> grads,
                              std::vector<bool> dense) {
  BRAID_RETURN_IF_ERROR(CheckBuffers(params, grads, dense));
  const SparseStepDeviceKernels* kernels = nullptr;
  if (params[0].device != kCpuDevice) {
    BRAID_RETURN_IF_ERROR(SparseStepDeviceKernelsFor(options_.name, params[0].device, &kernels));
  }
  // The flat layout: the sparse tensors in order, then the dense-flagged ones, so
  // that a global selection runs over one contiguous run.
  std::vector<Segment> segments(params.size());
  int64_t total = 0, dense_total = 0;
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < params.size(); ++i) {
      const bool is_dense = !dense.empty() && dense[i];
      if (is_dense != (pass == 1)) continue;
      Segment& s = segments[i];
      s.offset = total;
      s.w = params[i];
      s.g = grads[i];
      if (is_dense) {
        s.dense_offset = dense_total;
        dense_total += params[i].count;
      }
      total += params[i].count;
    }
  }
  const bool same =
      have_buffers_ && total == total_ && params[0].dtype == dtype_ && params[0].device == device_;
  segments_ = std::move(segments);
  dtype_ = params[0].dtype;
  device_ = params[0].device;
  stream_ = params[0].stream;
  kernels_ = kernels;
  total_ = total;
  dense_total_ = dense_total;
  sparse_total_ = total - dense_total;
  index_dtype_ =
      total - 1 <= std::numeric_limits<int32_t>::max() ? DataType::kInt32 : DataType::kInt64;
  if (same) return Status::OK();
  have_buffers_ = false;
  BRAID_RETURN_IF_ERROR(Allocate());
  have_buffers_ = true;
  return Status::OK();
}

// The state (zeroed) and the scratch over the flat layout.
Status SparseStep::Allocate() {
  const int64_t bytes = total_ * static_cast<int64_t>(DataTypeSize(dtype_));
  BRAID_RETURN_IF_ERROR(memory_.Make(device_, kernels_, bytes, stream_));
  if (has_momentum()) {
    BRAID_RETURN_IF_ERROR(momentum_.Make(device_, kernels_, bytes, stream_));
  } else {
    momentum_.Reset();
  }
  BRAID_RETURN_IF_ERROR(update_.Make(device_, kernels_, bytes, stream_));
  BRAID_RETURN_IF_ERROR(dense_.Make(device_, kernels_, bytes, stream_));
  BRAID_RETURN_IF_ERROR(values_.Make(device_, kernels_, bytes, stream_));
  return indices_.Make(device_, kernels_, total_ * 8, stream_);
}

std::vector<std::string> SparseStep::StateNames() const {
  std::vector<std::string> names = {memory_name()};
  if (has_momentum()) names.push_back("momentum");
  if (keeps_last_update()) names.push_back("last_update");
  return names;
}

Status SparseStep::State(const std::string& name, BufferView* out) const {
  if (!have_buffers_) {
    return InvalidArgument(What(options_.name) + "no buffers registered (SetBuffers)");
  }
  const FlatArray* a = nullptr;
  if (name == memory_name()) a = &memory_;
  if (name == "momentum" && has_momentum()) a = &momentum_;
  if (name == "last_update" && keeps_last_update()) a = &update_;
  if (a == nullptr) return InvalidArgument(What(options_.name) + "no state named '" + name + "'");
  *out = BufferView{a->data(), total_, dtype_, device_, stream_};
  return Status::OK();
}

uint64_t SparseStep::StepSeed(uint64_t salt) const {
  // splitmix64 of (seed, step, salt): a fresh stream per step and tensor, the same
  // on every rank.
  uint64_t x = options_.seed + 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(step_ + 1) +
               0xbf58476d1ce4e5b9ull * (salt + 1);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// DGC's local clipping: g' scaled so that its norm over every tensor of the op is
// at most clip_norm / sqrt(N).
Status SparseStep::ClipFactor(double* clip) const {
  *clip = 1.0;
  if (options_.clip_norm <= 0.0) return Status::OK();
  if (world_size_ < 1) {
    return InvalidArgument(What(options_.name) + "clipping needs the number of ranks");
  }
  double sum = 0.0;
  for (const Segment& s : segments_) {
    double part = 0.0;
    if (kernels_ == nullptr) {
      part = SquaredNormHost(s.w.data, s.g.data, s.w.count, dtype_, options_.weight_decay);
    } else if (s.w.count > 0) {
      BRAID_RETURN_IF_ERROR(kernels_->squared_norm(device_, s.w.data, s.g.data, s.w.count, dtype_,
                                                   options_.weight_decay, &part, stream_));
    }
    sum += part;
  }
  const double norm = std::sqrt(sum);
  const double limit = options_.clip_norm / std::sqrt(static_cast<double>(world_size_));
  if (norm > limit) *clip = limit / norm;
  return Status::OK();
}

Status SparseStep::FusedPasses(double lr, double clip) {
  for (const Segment& s : segments_) {
    const bool dense = s.dense_offset >= 0;
    FusedSegment f;
    f.w = s.w.data;
    f.g = s.g.data;
    f.memory = At(memory_, s.offset);
    f.momentum = has_momentum() ? At(momentum_, s.offset) : nullptr;
    f.last = keeps_last_update() ? At(update_, s.offset) : nullptr;
    f.dense_out = dense ? At(dense_, s.dense_offset) : nullptr;
    f.count = s.w.count;
    f.dtype = dtype_;
    const FusedCoefficients c = Coefficients(lr, clip, dense);
    if (f.count == 0) continue;
    if (kernels_ == nullptr) {
      FusedPassHost(f, c);
    } else {
      BRAID_RETURN_IF_ERROR(kernels_->fused_pass(device_, f, c, stream_));
    }
  }
  return Status::OK();
}

// The sent step: values = memory at the indices, memory = 0 there (DGC: the
// momentum too).
Status SparseStep::TakeSent(int64_t k) {
  const BufferView e{memory_.data(), total_, dtype_, device_, stream_};
  const BufferView idx{indices_.data(), k, index_dtype_, device_, stream_};
  const BufferView vals{values_.data(), k, dtype_, device_, stream_};
  BRAID_RETURN_IF_ERROR(ExtractSent(e, idx, vals));
  if (!masks_momentum()) return Status::OK();
  const BufferView u{momentum_.data(), total_, dtype_, device_, stream_};
  return ExtractSent(u, idx, BufferView{nullptr, k, dtype_, device_, stream_});
}

Status SparseStep::Exchange(int64_t k) {
  SparseParts parts;
  parts.index_dtype = index_dtype_;
  parts.index_shape = {k};
  parts.index_device = device_;
  parts.value_dtype = dtype_;
  parts.value_shape = {k};
  parts.value_device = device_;
  parts.dense_shape = {total_};
  parts.dense_dtype = dtype_;
  parts.dense_device = device_;
  Request r;
  BRAID_RETURN_IF_ERROR(
      DescribeSparse(options_.name, Collective::kSparseAllreduce, parts, &r.meta));
  r.meta.op = ReduceOp::kAverage;
  r.meta.dense_fallback = options_.dense_fallback;
  r.indices = indices_.data();
  r.input = values_.data();
  r.output = update_.data();
  r.stream = stream_;
  std::shared_ptr<Handle> sparse, dense;
  BRAID_RETURN_IF_ERROR(enqueue_(std::move(r), &sparse));
  Status st;
  if (dense_total_ > 0) {
    Request d;
    d.meta.name = options_.name + ".dense";
    d.meta.collective = Collective::kAllreduce;
    d.meta.dtype = dtype_;
    d.meta.op = ReduceOp::kAverage;
    d.meta.device = device_;
    d.meta.shape = {dense_total_};
    d.input = d.output = dense_.data();
    d.stream = stream_;
    st = enqueue_(std::move(d), &dense);
  }
  Status waited = sparse->Wait();
  if (dense != nullptr) {
    Status dense_waited = dense->Wait();
    if (waited.ok()) waited = dense_waited;
  }
  return st.ok() ? waited : st;
}

Status SparseStep::Step(double lr, double density) {
  const std::string what = What(options_.name);
  if (!have_buffers_) return InvalidArgument(what + "no buffers registered (SetBuffers)");
  if (!std::isfinite(lr)) return InvalidArgument(what + "the learning rate is not finite");
  if (density < 0.0) density = options_.density;
  if (!(density <= 1.0)) {
    return InvalidArgument(what + "the density must be in [0, 1], not " + std::to_string(density));
  }
  double clip = 1.0;
  BRAID_RETURN_IF_ERROR(ClipFactor(&clip));
  BRAID_RETURN_IF_ERROR(FusedPasses(lr, clip));
  int64_t k = 0;
  BRAID_RETURN_IF_ERROR(Select(density, &k));
  BRAID_RETURN_IF_ERROR(TakeSent(k));
  BRAID_RETURN_IF_ERROR(Exchange(k));
  BRAID_RETURN_IF_ERROR(ApplyUpdate(lr));
  ++step_;
  const auto value_size = static_cast<int64_t>(DataTypeSize(dtype_));
  stats_.pairs = k;
  stats_.value_bytes = k * value_size;
  stats_.index_bytes = k * static_cast<int64_t>(DataTypeSize(index_dtype_));
  stats_.dense_bytes = dense_total_ * value_size;
  return Status::OK();
}

Status SparseStep::RunApply(const ApplySegment& s, double scale) {
  if (s.count == 0) return Status::OK();
  if (kernels_ == nullptr) {
    ApplyHost(s, scale);
    return Status::OK();
  }
  return kernels_->apply(device_, s, scale, stream_);
}

Status SparseStep::RunDenseMomentum(const ApplySegment& s, double mu, double lr, bool nesterov) {
  if (s.count == 0) return Status::OK();
  if (kernels_ == nullptr) {
    DenseMomentumHost(s, mu, lr, nesterov);
    return Status::OK();
  }
  return kernels_->dense_momentum(device_, s, mu, lr, nesterov, stream_);
}

}  // namespace braid::compress
