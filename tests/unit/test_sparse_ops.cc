// The sparse ops in one process: the fused pass against the equations written here,
// and SparseStep (GMC, M-DSGD, DGC) over a one-rank stand-in for the engine
// (sparse_ops_local.h): one sparse allreduce per step, GMC at density 1 is heavy
// ball, the flat layout (dense tensors last), the state names and the checks.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "ops/compress/sparse_methods.h"
#include "ops/compress/sparse_passes.h"
#include "tests/unit/sparse_ops_local.h"

namespace braid::compress {
namespace {

BufferView View(std::vector<double>& v) {
  return BufferView{v.data(), static_cast<int64_t>(v.size()), DataType::kFloat64, kCpuDevice,
                    nullptr};
}

double Value(int64_t i, int salt) {
  return std::sin(0.7 * i + salt) * (1 + i % 3);
}

TEST(SparsePasses, FusedPassFollowsTheEquations) {
  const int64_t n = 101;
  std::vector<double> w(n), g(n), e(n), a(n), l(n), out(n);
  for (int64_t i = 0; i < n; ++i) {
    w[i] = Value(i, 1), g[i] = Value(i, 2), e[i] = Value(i, 3), a[i] = Value(i, 4);
    l[i] = Value(i, 5);
  }
  for (MomentumForm form :
       {MomentumForm::kNone, MomentumForm::kHeavyBall, MomentumForm::kDgcNesterov}) {
    for (DenseWrite dense : {DenseWrite::kNone, DenseWrite::kZ, DenseWrite::kGradient}) {
      std::vector<double> e2 = e, a2 = a, out2(n, 0.0);
      FusedCoefficients c;
      c.clip = 0.5, c.weight_decay = 0.01, c.form = form, c.mu = 0.9;
      c.ca = 0.1, c.cg = 0.2, c.cl = 0.3, c.dense = dense;
      FusedSegment s{w.data(), g.data(),    e2.data(), a2.data(),
                     l.data(), out2.data(), n,         DataType::kFloat64};
      FusedPassHost(s, c);
      for (int64_t i = 0; i < n; ++i) {
        const double gp = 0.5 * (g[i] + 0.01 * w[i]);
        if (dense == DenseWrite::kGradient) {
          ASSERT_EQ(out2[i], gp);
          ASSERT_EQ(e2[i], e[i]);
          continue;
        }
        double ai = a[i];
        if (form == MomentumForm::kHeavyBall) ai = 0.9 * a[i] + gp;
        if (form == MomentumForm::kDgcNesterov) ai = 0.9 * (a[i] + gp);
        double z = e[i];
        if (form != MomentumForm::kNone) z += 0.1 * ai;
        z = (z + 0.2 * gp) + 0.3 * l[i];
        ASSERT_NEAR(a2[i], ai, 1e-15);
        ASSERT_NEAR(dense == DenseWrite::kZ ? out2[i] : e2[i], z, 1e-14);
        if (dense == DenseWrite::kZ) ASSERT_EQ(e2[i], 0.0);
      }
    }
  }
}

struct OneRank {
  std::vector<std::vector<double>> w, g;
  std::unique_ptr<SparseStep> op;
  int sparse_calls = 0;

  OneRank(SparseStepOptions o, std::vector<int64_t> sizes, std::vector<bool> dense = {}) {
    o.name = "one_rank";
    EXPECT_TRUE(SparseStep::Create(testing::HostEngine(&sparse_calls), o, &op).ok());
    std::vector<BufferView> pv, gv;
    for (size_t j = 0; j < sizes.size(); ++j) {
      w.emplace_back(sizes[j]);
      g.emplace_back(sizes[j]);
      for (int64_t i = 0; i < sizes[j]; ++i) w[j][i] = Value(i, int(j));
    }
    for (size_t j = 0; j < sizes.size(); ++j) pv.push_back(View(w[j])), gv.push_back(View(g[j]));
    Status st = op->SetBuffers(pv, gv, dense);
    EXPECT_TRUE(st.ok()) << st.message();
  }
  void Grads(int t) {
    for (size_t j = 0; j < g.size(); ++j)
      for (size_t i = 0; i < g[j].size(); ++i) g[j][i] = Value(int64_t(i) + 3 * t, int(j) + t);
  }
};

TEST(SparseStepOneRank, GmcDensityOneIsHeavyBall) {
  SparseStepOptions o;
  o.method = SparseMethod::kGmc;
  o.density = 1.0;
  o.momentum = 0.7;
  OneRank r(o, {13, 4});
  std::vector<std::vector<double>> W = r.w, prev = r.w;
  for (int t = 1; t <= 5; ++t) {
    r.Grads(t);
    ASSERT_TRUE(r.op->Step(0.1).ok());
    for (size_t j = 0; j < W.size(); ++j) {
      for (size_t i = 0; i < W[j].size(); ++i) {
        const double next = W[j][i] - 0.1 * r.g[j][i] + 0.7 * (W[j][i] - prev[j][i]);
        prev[j][i] = W[j][i];
        W[j][i] = next;
        ASSERT_NEAR(r.w[j][i], W[j][i], 1e-13) << t;
      }
    }
  }
  EXPECT_EQ(r.sparse_calls, 5);
  EXPECT_EQ(r.op->step(), 5);
}

TEST(SparseStepOneRank, DenseTensorsGoLastAndThroughTheDenseAllreduce) {
  SparseStepOptions o;
  o.method = SparseMethod::kDgc;
  o.density = 0.25;
  OneRank r(o, {8, 3, 8}, {false, true, false});
  r.Grads(1);
  ASSERT_TRUE(r.op->Step(0.1).ok());
  const SparseStepStats& s = r.op->last_stats();
  EXPECT_EQ(s.pairs, 4);
  EXPECT_EQ(s.dense_bytes, 3 * 8);
  BufferView u;
  ASSERT_TRUE(r.op->State("momentum", &u).ok());
  const double* m = static_cast<const double*>(u.data);
  // The dense tensor (registered second) sits at [16, 19): momentum SGD's u = g.
  for (int i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(m[16 + i], r.g[1][i]);
  for (int i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(r.w[1][i], Value(i, 1) - 0.1 * r.g[1][i]);
}

TEST(SparseStepOneRank, StateNames) {
  SparseStepOptions o;
  std::vector<std::pair<SparseMethod, std::vector<std::string>>> cases = {
      {SparseMethod::kGmc, {"memory", "last_update"}},
      {SparseMethod::kMdsgd, {"memory", "momentum"}},
      {SparseMethod::kDgc, {"accumulation", "momentum"}}};
  for (const auto& [method, names] : cases) {
    o.method = method;
    OneRank r(o, {5});
    EXPECT_EQ(r.op->StateNames(), names);
    BufferView v;
    EXPECT_FALSE(r.op->State("nothing", &v).ok());
  }
}

TEST(SparseStepOneRank, Checks) {
  std::unique_ptr<SparseStep> op;
  SparseStepOptions o;
  EXPECT_FALSE(SparseStep::Create(testing::HostEngine(), o, &op).ok());  // no name
  o.name = "checks";
  EXPECT_FALSE(SparseStep::Create(nullptr, o, &op).ok());
  o.density = 2.0;
  EXPECT_FALSE(SparseStep::Create(testing::HostEngine(), o, &op).ok());
  o.density = 0.1;
  o.sample_fraction = 0.0;
  EXPECT_FALSE(SparseStep::Create(testing::HostEngine(), o, &op).ok());
  o.sample_fraction = 0.01;
  o.nesterov = true;  // GMC has none
  EXPECT_FALSE(SparseStep::Create(testing::HostEngine(), o, &op).ok());
  o.nesterov = false;
  ASSERT_TRUE(SparseStep::Create(testing::HostEngine(), o, &op).ok());
  std::vector<double> w(4), g(4);
  std::vector<float> f(4);
  BufferView fv{f.data(), 4, DataType::kFloat32, kCpuDevice, nullptr};
  EXPECT_FALSE(op->SetBuffers({View(w)}, {fv}, {}).ok());
  EXPECT_FALSE(op->SetBuffers({}, {}, {}).ok());
  EXPECT_FALSE(op->SetBuffers({View(w)}, {View(g)}, {true, false}).ok());
  EXPECT_FALSE(op->Step(0.1).ok());  // nothing registered
  ASSERT_TRUE(op->SetBuffers({View(w)}, {View(g)}, {}).ok());
  EXPECT_FALSE(op->Step(std::nan(""), 0.1).ok());
  EXPECT_TRUE(op->Step(0.1, 0.5).ok());
  SelectionMethod m;
  SelectionScope s;
  EXPECT_FALSE(ParseSelection("top", &m).ok());
  EXPECT_TRUE(ParseScope("global", &s).ok());
  EXPECT_EQ(s, SelectionScope::kGlobal);
}

}  // namespace
}  // namespace braid::compress
