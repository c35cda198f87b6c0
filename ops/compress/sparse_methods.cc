// M-DSGD, GMC and DGC on SparseStep: their fused-pass coefficients and their
// parameter updates (sparse_methods.h), and SparseStep::Create.
#include "ops/compress/sparse_methods.h"

#include <cmath>

namespace braid::compress {
namespace {

FusedCoefficients Base(double clip, double weight_decay) {
  FusedCoefficients c;
  c.clip = clip;
  c.weight_decay = weight_decay;
  return c;
}

Status CheckOptions(const SparseStepOptions& o) {
  const std::string what = "sparse op '" + o.name + "': ";
  auto finite_at_least_zero = [](double v) { return std::isfinite(v) && v >= 0.0; };
  if (!(o.density >= 0.0 && o.density <= 1.0)) {
    return InvalidArgument(what + "the density must be in [0, 1], not " +
                           std::to_string(o.density));
  }
  if (!finite_at_least_zero(o.momentum)) {
    return InvalidArgument(what + "the momentum must be finite and not negative");
  }
  if (!std::isfinite(o.weight_decay)) {
    return InvalidArgument(what + "the weight decay must be finite");
  }
  if (!finite_at_least_zero(o.clip_norm)) {
    return InvalidArgument(what + "clip_norm must be finite and not negative");
  }
  if (o.clip_norm > 0.0 && o.method != SparseMethod::kDgc) {
    return InvalidArgument(what + "clip_norm is DGC's local clipping: not for this method");
  }
  if (o.nesterov && o.method == SparseMethod::kGmc) {
    return InvalidArgument(what + "GMC has no Nesterov variant");
  }
  if (!(o.sample_fraction > 0.0 && o.sample_fraction <= 1.0)) {
    return InvalidArgument(what + "sample_fraction must be in (0, 1], not " +
                           std::to_string(o.sample_fraction));
  }
  return Status::OK();
}

}  // namespace

Status SparseStep::Create(EnqueueFn enqueue, const SparseStepOptions& options,
                          std::unique_ptr<SparseStep>* out) {
  if (options.name.empty()) return InvalidArgument("a sparse op needs a name");
  if (!enqueue) return InvalidArgument("sparse op '" + options.name + "': no engine to run on");
  BRAID_RETURN_IF_ERROR(CheckOptions(options));
  switch (options.method) {
    case SparseMethod::kMdsgd:
      out->reset(new Mdsgd(std::move(enqueue), options));
      break;
    case SparseMethod::kGmc:
      out->reset(new Gmc(std::move(enqueue), options));
      break;
    default:
      out->reset(new Dgc(std::move(enqueue), options));
      break;
  }
  return Status::OK();
}

Status ParseSelection(const std::string& text, SelectionMethod* out) {
  if (text == "topk") {
    *out = SelectionMethod::kTopK;
  } else if (text == "threshold") {
    *out = SelectionMethod::kThreshold;
  } else if (text == "randomk") {
    *out = SelectionMethod::kRandomK;
  } else {
    return InvalidArgument("selection must be 'topk', 'threshold' or 'randomk', not '" + text +
                           "'");
  }
  return Status::OK();
}

Status ParseScope(const std::string& text, SelectionScope* out) {
  if (text == "tensor") {
    *out = SelectionScope::kTensor;
  } else if (text == "global") {
    *out = SelectionScope::kGlobal;
  } else {
    return InvalidArgument("scope must be 'tensor' or 'global', not '" + text + "'");
  }
  return Status::OK();
}

// M-DSGD: v = beta v + g'; z = e + lr v (nesterov: (e + lr beta v) + lr g').
FusedCoefficients Mdsgd::Coefficients(double lr, double clip, bool dense) const {
  FusedCoefficients c = Base(clip, options_.weight_decay);
  c.form = MomentumForm::kHeavyBall;
  c.mu = options_.momentum;
  c.ca = options_.nesterov ? lr * options_.momentum : lr;
  c.cg = options_.nesterov ? lr : 0.0;
  c.dense = dense ? DenseWrite::kZ : DenseWrite::kNone;
  return c;
}

// w = w - avg(sent): the update buffer, or the dense average.
Status Mdsgd::ApplyUpdate(double) {
  for (const Segment& s : segments_) {
    ApplySegment a;
    a.w = s.w.data;
    a.src = s.dense_offset >= 0 ? At(dense_, s.dense_offset) : At(update_, s.offset);
    a.count = s.w.count;
    a.dtype = dtype_;
    BRAID_RETURN_IF_ERROR(RunApply(a, 1.0));
  }
  return Status::OK();
}

// GMC: z = (e + lr g') + beta U.
FusedCoefficients Gmc::Coefficients(double lr, double clip, bool dense) const {
  FusedCoefficients c = Base(clip, options_.weight_decay);
  c.cg = lr;
  c.cl = options_.momentum;
  c.dense = dense ? DenseWrite::kZ : DenseWrite::kNone;
  return c;
}

// w = w - U with U the averaged update (the dense tensors' averages are copied into
// U, which the sparse allreduce left zero there).
Status Gmc::ApplyUpdate(double) {
  for (const Segment& s : segments_) {
    ApplySegment a;
    a.w = s.w.data;
    a.src = s.dense_offset >= 0 ? At(dense_, s.dense_offset) : At(update_, s.offset);
    a.keep = At(update_, s.offset);
    a.count = s.w.count;
    a.dtype = dtype_;
    BRAID_RETURN_IF_ERROR(RunApply(a, 1.0));
  }
  return Status::OK();
}

// DGC: u = m u + g', v = v + u (nesterov: u = m (u + g'), v = (v + u) + g'); a
// dense tensor writes g' alone.
FusedCoefficients Dgc::Coefficients(double, double clip, bool dense) const {
  FusedCoefficients c = Base(clip, options_.weight_decay);
  c.form = options_.nesterov ? MomentumForm::kDgcNesterov : MomentumForm::kHeavyBall;
  c.mu = options_.momentum;
  c.ca = 1.0;
  c.cg = options_.nesterov ? 1.0 : 0.0;
  c.dense = dense ? DenseWrite::kGradient : DenseWrite::kNone;
  return c;
}

// Sparse tensors: w = w - lr avg(sent). Dense tensors: momentum SGD on avg(g').
Status Dgc::ApplyUpdate(double lr) {
  for (const Segment& s : segments_) {
    ApplySegment a;
    a.w = s.w.data;
    a.count = s.w.count;
    a.dtype = dtype_;
    if (s.dense_offset < 0) {
      a.src = At(update_, s.offset);
      BRAID_RETURN_IF_ERROR(RunApply(a, lr));
      continue;
    }
    a.src = At(dense_, s.dense_offset);
    a.momentum = At(momentum_, s.offset);
    BRAID_RETURN_IF_ERROR(RunDenseMomentum(a, options_.momentum, lr, options_.nesterov));
  }
  return Status::OK();
}

}  // namespace braid::compress
