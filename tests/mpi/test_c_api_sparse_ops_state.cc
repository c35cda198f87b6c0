// The sparse ops' selections other than exact top-k (DGC's threshold, random-k
// with a shared seed), their state round trip mid-run, and their errors, through
// the C API on every rank count.
#include <algorithm>
#include <string>
#include <vector>

#include "tests/mpi/sparse_ops_run.h"

namespace {

using ctu::BraidTest;
using soh::Net;
using soh::Options;

class SparseOpsStateTest : public BraidTest {};

// Runs `method` with `selection` and `scope` against the reference, taking each
// rank's selection from the op (where its memory became exactly 0) and checking it:
// random-k selects k_i per tensor and the same indices on every rank; the
// threshold selects a prefix of the exact top-k order.
void RunWithOpSelection(sor::Method method, int selection, int scope, int rank, int size) {
  Net net({90, 1, 200, 17});
  braid_sparse_options_t o = Options(0.05, 0.9);
  o.selection = selection;
  o.scope = scope;
  o.sample_fraction = 0.5;
  o.seed = 1234;
  soh::Op op;
  ASSERT_EQ(soh::Create(method, ctu::UniqueName("select"), o, &op), BRAID_OK);
  ASSERT_EQ(net.Register(op.op), BRAID_OK) << braid_last_error();
  sor::SimOptions so;
  so.method = method;
  so.beta = 0.9;
  so.global = scope == BRAID_SCOPE_GLOBAL;
  so = net.Layout(so);
  sor::Sim sim(so, size, net.FlatParams());
  for (int t = 1; t <= 4; ++t) {
    net.SetGrads(rank, t);
    ASSERT_EQ(braid_sparse_op_step(op.op, 0.1, -1.0), BRAID_OK) << braid_last_error();
    sim.Build(0.1, net.AllGrads(size, t));
    const auto mine = soh::SentPositions(soh::State(op.op, soh::MemoryName(method)), sim.z[rank]);
    std::vector<double> mask(static_cast<size_t>(net.total), 0.0);
    for (int64_t i : mine) mask[i] = 1.0;
    const auto masks = soh::Gather(mask);
    std::vector<std::vector<int64_t>> given(size);
    for (int r = 0; r < size; ++r) {
      for (int64_t i = 0; i < net.total; ++i)
        if (masks[r][i] != 0.0) given[r].push_back(i);
      const auto top = sim.Select(sim.z[r], 0.05);
      if (selection == BRAID_SELECT_RANDOMK) {
        EXPECT_EQ(given[r], given[0]) << "rank " << r << " drew other indices, step " << t;
        EXPECT_EQ(given[r].size(), top.size()) << "step " << t;
      } else {
        EXPECT_FALSE(given[r].empty());
        EXPECT_TRUE(std::includes(top.begin(), top.end(), given[r].begin(), given[r].end()))
            << "rank " << r << ": not among the top-k, step " << t;
      }
    }
    sim.Finish(0.1, 0.05, &given);
    ASSERT_TRUE(soh::Near(net.FlatParams(), sim.w, "w at step " + std::to_string(t)));
    ASSERT_TRUE(soh::Near(soh::State(op.op, soh::MemoryName(method)), sim.e[rank], "memory"));
    ASSERT_TRUE(soh::SameOnEveryRank(net.FlatParams()));
  }
}

TEST_F(SparseOpsStateTest, RandomKSameIndicesEverywhere) {
  for (int scope : {BRAID_SCOPE_TENSOR, BRAID_SCOPE_GLOBAL}) {
    RunWithOpSelection(sor::kGmc, BRAID_SELECT_RANDOMK, scope, rank_, size_);
    RunWithOpSelection(sor::kDgc, BRAID_SELECT_RANDOMK, scope, rank_, size_);
  }
}

TEST_F(SparseOpsStateTest, ThresholdSelectsTheTopEntries) {
  for (int scope : {BRAID_SCOPE_TENSOR, BRAID_SCOPE_GLOBAL}) {
    RunWithOpSelection(sor::kMdsgd, BRAID_SELECT_THRESHOLD, scope, rank_, size_);
    RunWithOpSelection(sor::kDgc, BRAID_SELECT_THRESHOLD, scope, rank_, size_);
  }
}

std::vector<const char*> StateNames(sor::Method m) {
  if (m == sor::kGmc) return {"memory", "last_update"};
  if (m == sor::kMdsgd) return {"memory", "momentum"};
  return {"accumulation", "momentum"};
}

// Save the state after 3 steps, go on for 3; a new op restored from the save goes
// the same way, bit for bit (random-k's seed follows the step count).
TEST_F(SparseOpsStateTest, StateRoundTripMidRun) {
  for (sor::Method m : {sor::kGmc, sor::kMdsgd, sor::kDgc}) {
    braid_sparse_options_t o = Options(0.1, 0.9);
    o.selection = m == sor::kMdsgd ? BRAID_SELECT_RANDOMK : BRAID_SELECT_TOPK;
    o.weight_decay = 0.01;
    Net a({50, 3, 20}, {false, true, false});
    soh::Op op;
    ASSERT_EQ(soh::Create(m, ctu::UniqueName("a"), o, &op), BRAID_OK);
    ASSERT_EQ(a.Register(op.op), BRAID_OK);
    for (int t = 1; t <= 3; ++t) {
      a.SetGrads(rank_, t);
      ASSERT_EQ(braid_sparse_op_step(op.op, 0.1, -1.0), BRAID_OK) << braid_last_error();
    }
    std::vector<std::vector<double>> saved;
    for (const char* n : StateNames(m)) saved.push_back(soh::State(op.op, n));
    const std::vector<double> saved_w = a.FlatParams();
    for (int t = 4; t <= 6; ++t) {
      a.SetGrads(rank_, t);
      ASSERT_EQ(braid_sparse_op_step(op.op, 0.1, -1.0), BRAID_OK) << braid_last_error();
    }
    Net b({50, 3, 20}, {false, true, false});
    b.SetFlatParams(saved_w);
    soh::Op restored;
    ASSERT_EQ(soh::Create(m, ctu::UniqueName("b"), o, &restored), BRAID_OK);
    ASSERT_EQ(b.Register(restored.op), BRAID_OK);
    for (size_t i = 0; i < saved.size(); ++i)
      soh::WriteState(restored.op, StateNames(m)[i], saved[i]);
    ASSERT_EQ(braid_sparse_op_set_step(restored.op, 3), BRAID_OK);
    for (int t = 4; t <= 6; ++t) {
      b.SetGrads(rank_, t);
      ASSERT_EQ(braid_sparse_op_step(restored.op, 0.1, -1.0), BRAID_OK) << braid_last_error();
    }
    EXPECT_EQ(b.FlatParams(), a.FlatParams()) << "method " << m;
    for (const char* n : StateNames(m))
      EXPECT_EQ(soh::State(restored.op, n), soh::State(op.op, n)) << n;
  }
}

TEST_F(SparseOpsStateTest, Errors) {
  soh::Op op;
  braid_sparse_options_t o = Options(0.1, 0.9);
  ASSERT_EQ(braid_gmc_create(ctu::UniqueName("err").c_str(), &o, &op.op), BRAID_OK);
  std::vector<double> w(10), g(9);
  std::vector<float> gf(10);
  int64_t n10 = 10, n9 = 9;
  braid_tensor_t p{w.data(), BRAID_FLOAT64, 1, &n10, BRAID_DEVICE_CPU, nullptr};
  braid_tensor_t short_g{g.data(), BRAID_FLOAT64, 1, &n9, BRAID_DEVICE_CPU, nullptr};
  braid_tensor_t float_g{gf.data(), BRAID_FLOAT32, 1, &n10, BRAID_DEVICE_CPU, nullptr};
  EXPECT_EQ(braid_sparse_op_set_buffers(op.op, &p, &short_g, 1, nullptr),
            BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(braid_last_error()).find("elements"), std::string::npos);
  EXPECT_EQ(braid_sparse_op_set_buffers(op.op, &p, &float_g, 1, nullptr),
            BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(braid_last_error()).find("float32"), std::string::npos);
  EXPECT_EQ(braid_sparse_op_step(op.op, 0.1, -1.0), BRAID_ERR_INVALID_ARGUMENT);  // no buffers
  braid_tensor_t good_g{w.data(), BRAID_FLOAT64, 1, &n10, BRAID_DEVICE_CPU, nullptr};
  ASSERT_EQ(braid_sparse_op_set_buffers(op.op, &p, &good_g, 1, nullptr), BRAID_OK);
  EXPECT_EQ(braid_sparse_op_step(op.op, 0.1, 1.5), BRAID_ERR_INVALID_ARGUMENT);
  void* data = nullptr;
  int64_t count = 0;
  EXPECT_EQ(braid_sparse_op_state(op.op, "momentum", &data, &count), BRAID_ERR_INVALID_ARGUMENT);
  soh::Op bad;
  o.clip_norm = 1.0;  // DGC's alone
  EXPECT_EQ(braid_gmc_create("bad", &o, &bad.op), BRAID_ERR_INVALID_ARGUMENT);
  o.clip_norm = 0.0;
  o.selection = 7;
  EXPECT_EQ(braid_mdsgd_create("bad", &o, &bad.op), BRAID_ERR_INVALID_ARGUMENT);
  o.selection = BRAID_SELECT_TOPK;
  o.density = -0.5;
  EXPECT_EQ(braid_dgc_create("bad", &o, &bad.op), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(braid_dgc_create(nullptr, &o, &bad.op), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(ctu::EngineUsable());
}

}  // namespace
