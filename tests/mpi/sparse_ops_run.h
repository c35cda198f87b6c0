// The step-by-step comparison shared by the sparse-op suites: run an op and the
// reference (sparse_ops_reference.h) side by side and compare parameters, memory,
// momentum and last update after every step.
#pragma once

#include <functional>
#include <string>

#include "tests/mpi/sparse_ops_harness.h"

namespace soh {

struct RunSpec {
  sor::Method method = sor::kGmc;
  braid_sparse_options_t options{};
  sor::SimOptions sim;  // method and coefficients (sizes come from the net)
  int steps = 5;
  std::function<double(int)> lr = [](int t) { return 0.1 / (1 + 0.2 * t); };
  std::function<double(int)> density;  // per step; empty: the op's
  bool zero_grads_on_rank1 = false;
};

inline const char* MemoryName(sor::Method m) {
  return m == sor::kDgc ? "accumulation" : "memory";
}

// Runs spec on `net`; returns the first failure.
inline ::testing::AssertionResult RunAgainstReference(const RunSpec& spec, Net net,
                                                      const std::string& name) {
  const int rank = ctu::MyWorldRank(), size = ctu::WorldSize();
  Op op;
  if (Create(spec.method, name, spec.options, &op) != BRAID_OK || net.Register(op.op) != BRAID_OK)
    return ::testing::AssertionFailure() << "create/register: " << braid_last_error();
  sor::SimOptions so = net.Layout(spec.sim);
  so.method = spec.method;
  sor::Sim sim(so, size, net.FlatParams());
  for (int t = 1; t <= spec.steps; ++t) {
    const double lr = spec.lr(t);
    const double density = spec.density ? spec.density(t) : -1.0;
    net.SetGrads(rank, t, spec.zero_grads_on_rank1 && rank == 1);
    if (braid_sparse_op_step(op.op, lr, density) != BRAID_OK)
      return ::testing::AssertionFailure() << "step " << t << ": " << braid_last_error();
    auto grads = net.AllGrads(size, t);
    if (spec.zero_grads_on_rank1 && size > 1) grads[1].assign(grads[1].size(), 0.0);
    sim.Step(lr, density < 0 ? spec.options.density : density, grads);
    const std::string at = " after step " + std::to_string(t);
    auto r = Near(net.FlatParams(), sim.w, "w" + at);
    if (r) r = Near(State(op.op, MemoryName(spec.method)), sim.e[rank], "memory" + at);
    if (r && spec.method != sor::kGmc)
      r = Near(State(op.op, "momentum"), sim.a[rank], "momentum" + at);
    if (r && spec.method == sor::kGmc) r = Near(State(op.op, "last_update"), sim.U, "U" + at);
    if (!r) return r;
    // sent + e_new == z: the memory is exactly zero where the reference sent.
    const std::vector<double> memory = State(op.op, MemoryName(spec.method));
    for (int64_t i : sim.chosen[rank]) {
      if (memory[i] != 0.0)
        return ::testing::AssertionFailure() << "memory[" << i << "] = " << memory[i] << at;
    }
    if (!SameOnEveryRank(net.FlatParams()))
      return ::testing::AssertionFailure() << "the ranks' parameters differ" << at;
  }
  return ::testing::AssertionSuccess();
}

inline braid_sparse_options_t Options(double density, double momentum) {
  braid_sparse_options_t o;
  braid_sparse_options_init(&o);
  o.density = density;
  o.momentum = momentum;
  return o;
}

}  // namespace soh
