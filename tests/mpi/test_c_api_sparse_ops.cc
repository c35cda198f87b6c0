// GMC and M-DSGD through the C API on every rank count, against a reference that
// simulates every rank from the equations (sparse_ops_reference.h): parameters,
// memory, momentum and last update after each step; GMC at density 1 is heavy-ball
// momentum SGD on the averaged gradient; M-DSGD's x~ = w - mean(e) follows dense
// momentum SGD; per-tensor and global scope, weight decay, k = 0, a rank with zero
// gradients, dense-flagged tensors; the ranks' parameters are bit-identical.
#include <cmath>
#include <string>
#include <vector>

#include "tests/mpi/sparse_ops_run.h"

namespace {

using ctu::BraidTest;
using soh::Net;
using soh::Options;
using soh::RunSpec;

class SparseOpsTest : public BraidTest {};

RunSpec Gmc(double density, double beta, double wd = 0.0) {
  RunSpec s;
  s.method = sor::kGmc;
  s.options = Options(density, beta);
  s.options.weight_decay = wd;
  s.sim.beta = beta;
  s.sim.weight_decay = wd;
  return s;
}

RunSpec Mdsgd(double density, double beta, bool nesterov, double wd = 0.0) {
  RunSpec s;
  s.method = sor::kMdsgd;
  s.options = Options(density, beta);
  s.options.nesterov = nesterov;
  s.options.weight_decay = wd;
  s.sim.beta = beta;
  s.sim.nesterov = nesterov;
  s.sim.weight_decay = wd;
  return s;
}

TEST_F(SparseOpsTest, GmcPerTensorMatchesReference) {
  RunSpec s = Gmc(0.1, 0.9);
  s.steps = 6;
  EXPECT_TRUE(soh::RunAgainstReference(s, Net({37, 1, 100, 8}), ctu::UniqueName("gmc")));
}

TEST_F(SparseOpsTest, GmcWeightDecayAndGlobalScope) {
  RunSpec s = Gmc(0.05, 0.7, 0.01);
  s.options.scope = BRAID_SCOPE_GLOBAL;
  s.sim.global = true;
  EXPECT_TRUE(soh::RunAgainstReference(s, Net({37, 1, 100, 8}), ctu::UniqueName("gmc")));
}

TEST_F(SparseOpsTest, GmcDenseFlaggedTensorAndDensitySchedule) {
  RunSpec s = Gmc(0.1, 0.9, 0.001);
  s.density = [](int t) { return t < 3 ? 0.5 : 0.02; };
  EXPECT_TRUE(
      soh::RunAgainstReference(s, Net({20, 6, 50}, {false, true, false}), ctu::UniqueName("gmc")));
}

// With every entry sent, GMC is heavy-ball momentum SGD on the averaged gradient:
// W_{t+1} = W_t - lr avg(g) + beta (W_t - W_{t-1}).
TEST_F(SparseOpsTest, GmcDensityOneIsHeavyBall) {
  Net net({30, 7});
  soh::Op op;
  braid_sparse_options_t o = Options(1.0, 0.8);
  ASSERT_EQ(braid_gmc_create(ctu::UniqueName("gmc").c_str(), &o, &op.op), BRAID_OK);
  ASSERT_EQ(net.Register(op.op), BRAID_OK) << braid_last_error();
  std::vector<double> W = net.FlatParams(), previous = W;
  for (int t = 1; t <= 6; ++t) {
    const double lr = 0.05 * t;
    net.SetGrads(rank_, t);
    ASSERT_EQ(braid_sparse_op_step(op.op, lr, -1.0), BRAID_OK) << braid_last_error();
    const auto grads = net.AllGrads(size_, t);
    std::vector<double> next(W.size());
    for (size_t i = 0; i < W.size(); ++i) {
      double avg = 0.0;
      for (int r = 0; r < size_; ++r) avg += grads[r][i];
      avg /= size_;
      next[i] = W[i] - lr * avg + 0.8 * (W[i] - previous[i]);
    }
    previous = W;
    W = next;
    ASSERT_TRUE(soh::Near(net.FlatParams(), W, "w after step " + std::to_string(t), 1e-12));
    for (double e : soh::State(op.op, "memory")) ASSERT_EQ(e, 0.0);
  }
}

TEST_F(SparseOpsTest, MdsgdMatchesReference) {
  RunSpec s = Mdsgd(0.1, 0.9, false, 0.005);
  EXPECT_TRUE(soh::RunAgainstReference(s, Net({37, 1, 100, 8}), ctu::UniqueName("mdsgd")));
}

TEST_F(SparseOpsTest, MdsgdNesterovGlobalAndVanilla) {
  RunSpec s = Mdsgd(0.03, 0.9, true);
  s.options.scope = BRAID_SCOPE_GLOBAL;
  s.sim.global = true;
  EXPECT_TRUE(soh::RunAgainstReference(s, Net({64, 3, 40}), ctu::UniqueName("mdsgd")));
  RunSpec vanilla = Mdsgd(0.2, 0.0, false);  // beta = 0: top-k SGD with memory
  EXPECT_TRUE(soh::RunAgainstReference(vanilla, Net({25, 9}), ctu::UniqueName("mdsgd")));
}

// x~ = w - mean_k(e_k) follows dense momentum SGD: x~ = x~ - lr mean_k(v_k), with
// v_k = beta v_k + g_k, whatever was selected.
TEST_F(SparseOpsTest, MdsgdVirtualSequenceIsMomentumSgd) {
  for (bool nesterov : {false, true}) {
    Net net({50, 13});
    soh::Op op;
    braid_sparse_options_t o = Options(0.05, 0.9);
    o.nesterov = nesterov;
    ASSERT_EQ(braid_mdsgd_create(ctu::UniqueName("mdsgd").c_str(), &o, &op.op), BRAID_OK);
    ASSERT_EQ(net.Register(op.op), BRAID_OK) << braid_last_error();
    std::vector<double> X = net.FlatParams();
    std::vector<std::vector<double>> V(size_, std::vector<double>(X.size(), 0.0));
    for (int t = 1; t <= 8; ++t) {
      const double lr = 0.1;
      net.SetGrads(rank_, t);
      ASSERT_EQ(braid_sparse_op_step(op.op, lr, -1.0), BRAID_OK) << braid_last_error();
      const auto grads = net.AllGrads(size_, t);
      for (size_t i = 0; i < X.size(); ++i) {
        double step = 0.0;
        for (int r = 0; r < size_; ++r) {
          V[r][i] = 0.9 * V[r][i] + grads[r][i];
          step += nesterov ? grads[r][i] + 0.9 * V[r][i] : V[r][i];
        }
        X[i] -= lr * step / size_;
      }
      const auto memories = soh::Gather(soh::State(op.op, "memory"));
      std::vector<double> x = net.FlatParams();
      for (size_t i = 0; i < x.size(); ++i) {
        double mean = 0.0;
        for (int r = 0; r < size_; ++r) mean += memories[r][i];
        x[i] -= mean / size_;
      }
      ASSERT_TRUE(soh::Near(x, X, "x~ after step " + std::to_string(t), 1e-12));
    }
  }
}

// density 0: k = 0 on every rank; the memory keeps everything and w does not move.
TEST_F(SparseOpsTest, ZeroKSendsNothing) {
  RunSpec s = Gmc(0.0, 0.9);
  s.steps = 3;
  EXPECT_TRUE(soh::RunAgainstReference(s, Net({10, 4}), ctu::UniqueName("gmc")));
  RunSpec m = Mdsgd(0.001, 0.5, false);  // k rounds up to 1 per tensor
  EXPECT_TRUE(soh::RunAgainstReference(m, Net({10, 4}), ctu::UniqueName("mdsgd")));
}

TEST_F(SparseOpsTest, RankWithZeroGradients) {
  RunSpec s = Mdsgd(0.1, 0.9, false);
  s.zero_grads_on_rank1 = true;
  EXPECT_TRUE(soh::RunAgainstReference(s, Net({30, 5}), ctu::UniqueName("mdsgd")));
  RunSpec g = Gmc(0.1, 0.9);
  g.zero_grads_on_rank1 = true;
  EXPECT_TRUE(soh::RunAgainstReference(g, Net({30, 5}), ctu::UniqueName("gmc")));
}

TEST_F(SparseOpsTest, StatsCountWhatWasSent) {
  Net net({100, 10});
  soh::Op op;
  braid_sparse_options_t o = Options(0.1, 0.9);
  ASSERT_EQ(braid_gmc_create(ctu::UniqueName("gmc").c_str(), &o, &op.op), BRAID_OK);
  ASSERT_EQ(net.Register(op.op), BRAID_OK);
  net.SetGrads(rank_, 1);
  ASSERT_EQ(braid_sparse_op_step(op.op, 0.1, -1.0), BRAID_OK) << braid_last_error();
  int64_t pairs = -1, value_bytes = -1, index_bytes = -1, dense_bytes = -1, step = -1;
  ASSERT_EQ(braid_sparse_op_stats(op.op, &pairs, &value_bytes, &index_bytes, &dense_bytes),
            BRAID_OK);
  EXPECT_EQ(pairs, 11);  // 10 + 1
  EXPECT_EQ(value_bytes, 88);
  EXPECT_EQ(index_bytes, 44);  // int32 indices: the layout fits
  EXPECT_EQ(dense_bytes, 0);
  ASSERT_EQ(braid_sparse_op_get_step(op.op, &step), BRAID_OK);
  EXPECT_EQ(step, 1);
}

}  // namespace
