// Decentralized momentum SGD on flat buffers: Algorithm 2 of Yu, Jin, Yang (ICML
// 2019, "On the linear speedup analysis of communication efficient momentum SGD
// for distributed non-convex optimization"). Every rank i, at step t:
//
//   u~_i = beta * u_i + g_i                          local momentum step
//   x~_i = x_i - lr * u~_i                           Option I (heavy ball)
//   x~_i = x_i - lr * (beta * u~_i + g_i)            Option II (Nesterov)
//   u_i  = sum_j W_t[i][j] u~_j,  x_i = sum_j W_t[i][j] x~_j    mixing step
//
// with W_t the doubly stochastic mixing matrix of a gossip graph (graph.h) at step
// t, where t is the step counter *before* the step (the first step mixes with
// W_0). beta = 0 is D-PSGD (Lian et al., 2017). Weight decay is folded into the
// gradient (g + weight_decay * x). Options:
//
//   mix_momentum = false   mix x only; u stays local (u = u~), as most other
//                          libraries do.
//   average_period K > 0   every K-th step (when the counter after it is a multiple
//                          of K) replaces the mixing step by the exact average over
//                          the ranks of x~ and u~ (one allreduce). Mixing first would
//                          change nothing: W's columns sum to 1, so the average of
//                          W x~ is the average of x~.
//
// A mixing step is ONE neighbour allreduce: x~ (and u~) are packed into one flat
// buffer (ops/restart/pack_memory.h), rank i sends it to the ranks j with W[j][i] >
// 0 and receives from those with W[i][j] > 0, with its row of W_t as the weights.
// The request is named after the op; a time-varying graph (period P) names it
// "<name>/phase<t mod P>", so that each phase's graph is cached by the engine under
// its own name. Averages are allreduces named "<name>/average"; the consensus
// distance uses "<name>/distance.mean" and "<name>/distance". At world size 1
// nothing is communicated (W = [1]).
//
// A failed communication leaves the buffers at x~ and u~ (the local step applied)
// and the step counted.
//
// Threading: one thread at a time per op. Ops of different names may run at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/buffer.h"
#include "common/status.h"
#include "ops/gossip/device_kernels.h"
#include "ops/gossip/graph.h"
#include "ops/restart/pack_memory.h"
#include "ops/restart/periodic_averager.h"

namespace braid::gossip {

// How the op reaches an engine (as the restart ops do).
using EnqueueFn = restart::EnqueueFn;

struct DecentralizedOptions {
  // The requests' base name: the same on every rank, unique among the ops and
  // tensors in flight.
  std::string name;
  int rank = 0;  // this rank in the graph
  int size = 1;  // the world size; the graph must have as many ranks
  Graph graph;
  double momentum = 0.9;  // beta, in [0, 1); 0: D-PSGD
  bool nesterov = false;  // Option II
  bool mix_momentum = true;
  int64_t average_period = 0;  // K; 0: never
  double weight_decay = 0.0;

  Status Validate() const;
};

class DecentralizedSGD {
 public:
  static Status Create(EnqueueFn enqueue, DecentralizedOptions options,
                       std::unique_ptr<DecentralizedSGD>* out);

  // Registers the parameters x (updated in place), their gradients g (read by
  // Step) and the momentum buffers u (updated in place). Contiguous float32 or
  // float64 buffers of one dtype on one device; grads and momentum are empty or
  // pairwise the size of params. Step needs grads, and momentum unless beta = 0;
  // Mix needs neither. The counts, in order, must be the same on every rank.
  // Replaces the earlier registration; the buffers must stay valid until the next.
  Status SetBuffers(std::vector<BufferView> params, std::vector<BufferView> grads,
                    std::vector<BufferView> momentum);

  // One step: the local momentum step with learning rate `lr` (>= 0), then the
  // mixing step with W_t (or the average, every K-th step). Collective.
  Status Step(double lr);
  // The communication of one step alone (for a framework whose optimizer took the
  // local step): mixes x (and u) with W_t, or averages every K-th step; counts the
  // step. Collective.
  Status Mix();
  // Replaces x (and u) by their exact average over the ranks now, without counting
  // a step (e.g. before evaluating or saving). Checks that the ranks are at the
  // same step. Collective.
  Status Consensus();
  // sqrt((1/n) sum_i ||x_i - xbar||^2), the consensus distance of the parameters,
  // the same on every rank; x is not changed. Collective (two allreduces).
  Status ConsensusDistance(double* distance);

  const std::string& name() const { return options_.name; }
  const DecentralizedOptions& options() const { return options_; }
  // Steps counted so far (restored from a checkpoint with set_step): the next step
  // mixes with W_step().
  int64_t step() const { return step_; }
  void set_step(int64_t step) { step_ = step; }
  // Whether the next step averages instead of mixing.
  bool average_due() const;
  // The name of the mixing request at step t.
  std::string MixName(int64_t t) const;
  // Elements of one mixing request: x, and u when it is mixed.
  int64_t mixed_count() const;

 private:
  DecentralizedSGD(EnqueueFn enqueue, DecentralizedOptions options);

  Status CheckRegistered(const char* what) const;
  Status LocalStep(double lr);
  // Mixes with W_t or averages (every K-th step), then counts the step.
  Status Communicate();
  Status MixWith(int64_t t);
  Status Average();
  // Packs `parts` and the step-agreement slots, allreduces the sum under `name`
  // and checks the slots; the sums stay in the packed buffer.
  Status SumWithCheck(const std::string& name, const std::vector<BufferView>& parts,
                      int64_t* ranks);
  Status Enqueue(Request r);
  bool mixes_momentum() const { return options_.mix_momentum && !momentum_.empty(); }
  void* stream() const { return params_.empty() ? nullptr : params_[0].stream; }

  EnqueueFn enqueue_;
  DecentralizedOptions options_;
  int64_t step_ = 0;
  std::vector<BufferView> params_;
  std::vector<BufferView> grads_;
  std::vector<BufferView> momentum_;
  int64_t params_count_ = 0;
  DataType dtype_ = DataType::kFloat32;
  int device_ = kCpuDevice;
  std::unique_ptr<restart::PackMemory> memory_;
  const GossipDeviceKernels* kernels_ = nullptr;  // GPU buffers; null on the host
};

}  // namespace braid::gossip
