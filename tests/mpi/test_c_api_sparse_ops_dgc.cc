// DGC through the C API on every rank count, step by step against the reference
// written from the equations (sparse_ops_reference.h): momentum correction,
// momentum factor masking, the Nesterov variant, local gradient clipping scaled by
// 1/sqrt(N), a warm-up density schedule, dense-flagged tensors (momentum SGD on the
// averaged gradient), weight decay, per-tensor and global scope.
#include <string>
#include <vector>

#include "tests/mpi/sparse_ops_run.h"

namespace {

using ctu::BraidTest;
using soh::Net;
using soh::Options;
using soh::RunSpec;

class SparseOpsDgcTest : public BraidTest {};

RunSpec Dgc(double density, double m, bool nesterov, double wd = 0.0, double clip = 0.0) {
  RunSpec s;
  s.method = sor::kDgc;
  s.options = Options(density, m);
  s.options.nesterov = nesterov;
  s.options.weight_decay = wd;
  s.options.clip_norm = clip;
  s.sim.beta = m;
  s.sim.nesterov = nesterov;
  s.sim.weight_decay = wd;
  s.sim.clip_norm = clip;
  return s;
}

TEST_F(SparseOpsDgcTest, MatchesReference) {
  RunSpec s = Dgc(0.1, 0.9, false, 0.001);
  s.steps = 6;
  EXPECT_TRUE(soh::RunAgainstReference(s, Net({37, 1, 100, 8}), ctu::UniqueName("dgc")));
}

// A dense-flagged tensor between sparse ones: the flat layout puts it last; its
// update is momentum SGD on the dense average of g.
TEST_F(SparseOpsDgcTest, DenseFlaggedTensors) {
  RunSpec s = Dgc(0.1, 0.9, false, 0.001);
  EXPECT_TRUE(soh::RunAgainstReference(s, Net({37, 6, 100, 3}, {false, true, false, true}),
                                       ctu::UniqueName("dgc")));
  RunSpec n = Dgc(0.1, 0.9, true);
  EXPECT_TRUE(soh::RunAgainstReference(n, Net({37, 6, 100, 3}, {false, true, false, true}),
                                       ctu::UniqueName("dgc")));
}

// Nesterov, clipping that is active (the gradients' norm is far above 1 / sqrt(N))
// and DGC's warm-up: the density falls step by step.
TEST_F(SparseOpsDgcTest, NesterovClippingWarmup) {
  RunSpec s = Dgc(0.001, 0.9, true, 0.0001, 1.0);
  s.steps = 7;
  s.density = [](int t) {
    const double schedule[] = {0.25, 0.0625, 0.015625, 0.004, 0.001};
    return schedule[t - 1 < 4 ? t - 1 : 4];
  };
  EXPECT_TRUE(
      soh::RunAgainstReference(s, Net({200, 1, 64}, {false, true, false}), ctu::UniqueName("dgc")));
}

TEST_F(SparseOpsDgcTest, ClippingInactiveWhenTheNormIsSmall) {
  RunSpec s = Dgc(0.1, 0.5, false, 0.0, 1e6);
  EXPECT_TRUE(soh::RunAgainstReference(s, Net({40, 20}), ctu::UniqueName("dgc")));
}

TEST_F(SparseOpsDgcTest, GlobalScope) {
  RunSpec s = Dgc(0.05, 0.9, false, 0.001);
  s.options.scope = BRAID_SCOPE_GLOBAL;
  s.sim.global = true;
  EXPECT_TRUE(soh::RunAgainstReference(s, Net({37, 6, 100, 3}, {false, true, false, false}),
                                       ctu::UniqueName("dgc")));
}

TEST_F(SparseOpsDgcTest, ZeroGradientsOnOneRank) {
  RunSpec s = Dgc(0.1, 0.9, false);
  s.zero_grads_on_rank1 = true;
  EXPECT_TRUE(soh::RunAgainstReference(s, Net({30, 5}), ctu::UniqueName("dgc")));
}

// Momentum factor masking: where a rank sent, its momentum and accumulation are 0.
TEST_F(SparseOpsDgcTest, MasksTheMomentumWhereSent) {
  Net net({64});
  soh::Op op;
  braid_sparse_options_t o = Options(0.125, 0.9);
  ASSERT_EQ(braid_dgc_create(ctu::UniqueName("dgc").c_str(), &o, &op.op), BRAID_OK);
  ASSERT_EQ(net.Register(op.op), BRAID_OK) << braid_last_error();
  for (int t = 1; t <= 3; ++t) {
    net.SetGrads(rank_, t);
    ASSERT_EQ(braid_sparse_op_step(op.op, 0.1, -1.0), BRAID_OK) << braid_last_error();
    const auto u = soh::State(op.op, "momentum"), v = soh::State(op.op, "accumulation");
    int zeros = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] != 0.0) continue;
      ++zeros;
      EXPECT_EQ(u[i], 0.0) << i;
    }
    EXPECT_EQ(zeros, 8) << "step " << t;
  }
}

}  // namespace
