// The three sparse methods on SparseStep (sparse_step.h). N ranks, rank k, the
// parameters w (the same on every rank), the learning rate lr read each step,
// g'_k = clip * (g_k + weight_decay * w) (clip = 1 except DGC's clipping), topk the
// selection, avg the sparse allreduce's average over the ranks:
//
// M-DSGD (Zhao, Gao, Li: "On the Convergence of Memory-Based Distributed SGD"),
// state "memory" (e) and "momentum" (v):
//     v_k = beta * v_k + g'_k
//     z_k = e_k + lr * v_k                  (nesterov: e_k + lr * (g'_k + beta * v_k))
//     sent_k = topk(z_k);  e_k = z_k - sent_k;  w = w - avg(sent)
//   beta = 0 is plain top-k with memory. x~ = w - mean_k(e_k) follows dense
//   momentum SGD: x~ = x~ - lr * mean_k(v_k).
//
// GMC (Zhao, Xie, Gao, Li: "Global Momentum Compression for Sparse Communication
// in Distributed SGD", arXiv 1905.12948), state "memory" (e) and "last_update" (U):
//     z_k = e_k + lr * g'_k + beta * U      (U = w_{t-1} - w_t: the last averaged update)
//     sent_k = topk(z_k);  e_k = z_k - sent_k;  U = avg(sent);  w = w - U
//   so z_k = e_k + lr * g'_k - beta * (w_t - w_{t-1}) where w_t - w_{t-1} is the op's
//   own last step: a change the caller makes to w between steps (loading weights,
//   a broadcast) does not enter the momentum. With density 1 (e = 0) it is
//   heavy-ball momentum SGD on the averaged gradient:
//   w_{t+1} = w_t - lr * avg(g') + beta * (w_t - w_{t-1}).
//
// DGC (Lin, Han, Mao, Wang, Dally, ICLR 2018), state "momentum" (u) and
// "accumulation" (v):
//     u_k = m * u_k + g'_k;  v_k = v_k + u_k      (nesterov: u_k = m * (u_k + g'_k);
//                                                  v_k = v_k + u_k + g'_k)
//     sent_k = topk(v_k);  v_k[sent] = 0;  u_k[sent] = 0  (momentum factor masking)
//     w = w - lr * avg(sent)
//   clip_norm > 0: local gradient clipping, g'_k scaled by min(1, (clip_norm /
//   sqrt(N)) / ||g_k + weight_decay * w||), the norm over all the op's tensors.
//
// Dense-flagged tensors go whole through the dense allreduce: M-DSGD and GMC send
// their z (density 1 for that tensor; GMC keeps the average as its U there); DGC
// sends g' and runs momentum SGD on the average: u = m * u + avg(g'),
// w = w - lr * u (nesterov: w = w - lr * (avg(g') + m * u)).
//
// Threading: as SparseStep.
#pragma once

#include "ops/compress/sparse_step.h"

namespace braid::compress {

class Mdsgd : public SparseStep {
 public:
  Mdsgd(EnqueueFn enqueue, const SparseStepOptions& options)
      : SparseStep(std::move(enqueue), options) {}

 protected:
  FusedCoefficients Coefficients(double lr, double clip, bool dense) const override;
  bool has_momentum() const override { return true; }
  Status ApplyUpdate(double lr) override;
};

class Gmc : public SparseStep {
 public:
  Gmc(EnqueueFn enqueue, const SparseStepOptions& options)
      : SparseStep(std::move(enqueue), options) {}

 protected:
  FusedCoefficients Coefficients(double lr, double clip, bool dense) const override;
  bool has_momentum() const override { return false; }
  bool keeps_last_update() const override { return true; }
  Status ApplyUpdate(double lr) override;
};

class Dgc : public SparseStep {
 public:
  Dgc(EnqueueFn enqueue, const SparseStepOptions& options)
      : SparseStep(std::move(enqueue), options) {}

 protected:
  FusedCoefficients Coefficients(double lr, double clip, bool dense) const override;
  bool has_momentum() const override { return true; }
  bool masks_momentum() const override { return true; }
  const char* memory_name() const override { return "accumulation"; }
  Status ApplyUpdate(double lr) override;
};

// Parses "topk" / "threshold" / "randomk" and "tensor" / "global".
Status ParseSelection(const std::string& text, SelectionMethod* out);
Status ParseScope(const std::string& text, SelectionScope* out);

}  // namespace braid::compress
