// braid_sparse_allreduce_async and braid_sparse_allgather_async through the C API
// (docs/sparse.md): every value dtype, int32 and int64 indices, sum and average,
// flat and row (embedding-like) dense tensors, k = 0 on a rank, duplicates within
// a rank and across ranks, the first and last rows, fused groups, the dense
// fallback, errors that must reach every rank, and the counters. The expected
// dense tensors are computed in the test from every rank's pairs.
#include <string>
#include <vector>

#include "tests/mpi/sparse_test_util.h"

namespace {

using ctu::Handle;
using ctu::Tensor;

class Sparse : public ctu::BraidTest {};

struct Case {
  int dtype;
  int index_dtype;
  int op;
  int64_t length;
  int64_t row;  // 1 with a flat (1-D) dense tensor
  int flags;
};

std::vector<int64_t> DenseShape(const Case& c) {
  if (c.row == 1) return {c.length};
  return {c.length, c.row};
}

// Runs one sparse allreduce of this rank's pairs into a dense tensor first filled
// with garbage (the output is overwritten, not added to), and checks it.
void CheckAllreduce(const Case& c, int rank, int size, int salt) {
  const auto all = stu::AllPairs(size, c.length, c.row, salt);
  stu::PairTensors mine(all[rank], c.dtype, c.index_dtype, c.row, c.row == 1);
  Tensor dense(c.dtype, DenseShape(c));
  dense.Fill([](int64_t i) { return 1000.0 + static_cast<double>(i % 7); });
  Handle h;
  const std::string name = ctu::UniqueName("sparse");
  ASSERT_EQ(braid_sparse_allreduce_async(name.c_str(), mine.indices.desc(), mine.values.desc(),
                                         dense.desc(), c.op, c.flags, h.out()),
            BRAID_OK)
      << braid_last_error();
  ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
  EXPECT_TRUE(stu::Matches(c.dtype, dense.data(),
                           stu::Reference(all, c.length, c.row, c.op == BRAID_AVERAGE, c.dtype)))
      << ctu::DtypeName(c.dtype) << " indices " << ctu::DtypeName(c.index_dtype) << " "
      << ctu::OpName(c.op) << " row " << c.row;
}

TEST_F(Sparse, EveryDtypeIndexTypeOpAndShape) {
  int salt = 0;
  for (int dtype : ctu::FloatDtypes())
    for (int index_dtype : {BRAID_INT32, BRAID_INT64})
      for (int op : {BRAID_SUM, BRAID_AVERAGE})
        for (int64_t row : {int64_t{1}, int64_t{3}})
          CheckAllreduce({dtype, index_dtype, op, 37, row, 0}, rank_, size_, salt++);
}

TEST_F(Sparse, OneRowDenseAndEveryRankTheSameIndex) {
  // Every pair of every rank lands in the only row.
  CheckAllreduce({BRAID_FLOAT32, BRAID_INT32, BRAID_SUM, 1, 4, 0}, rank_, size_, 3);
  CheckAllreduce({BRAID_FLOAT64, BRAID_INT64, BRAID_AVERAGE, 1, 1, 0}, rank_, size_, 4);
}

TEST_F(Sparse, DenseFallbackGivesTheSameSums) {
  // A dense tensor of 4 rows gets far more pairs than rows: the fallback runs it
  // as a dense allreduce (at np > 1); the sums must not change.
  for (int flags : {0, BRAID_SPARSE_DENSE_FALLBACK})
    for (int op : {BRAID_SUM, BRAID_AVERAGE})
      CheckAllreduce({BRAID_FLOAT32, BRAID_INT32, op, 4, 2, flags}, rank_, size_, 5 + op);
}

TEST_F(Sparse, NoPairsAnywhereZeroesTheDenseTensor) {
  Tensor indices(BRAID_INT32, {0}), values(BRAID_FLOAT32, {0}), dense(BRAID_FLOAT32, {9});
  dense.Fill([](int64_t) { return 5.0; });
  Handle h;
  const std::string name = ctu::UniqueName("empty");
  ASSERT_EQ(braid_sparse_allreduce_async(name.c_str(), indices.desc(), values.desc(), dense.desc(),
                                         BRAID_SUM, 0, h.out()),
            BRAID_OK);
  ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
  EXPECT_TRUE(ctu::MatchesValues(dense, [](int64_t) { return 0.0; }));
}

// Several tensors in flight at once (fused when they are ready in one cycle), of
// two dtypes and both index types, each with its own result.
TEST_F(Sparse, ManyInFlightAtOnce) {
  constexpr int kTensors = 8;
  std::vector<Case> cases;
  std::vector<std::vector<stu::RankPairs>> pairs;
  std::vector<std::unique_ptr<stu::PairTensors>> mine;
  std::vector<std::unique_ptr<Tensor>> dense;
  std::vector<Handle> handles(kTensors);
  for (int t = 0; t < kTensors; ++t) {
    cases.push_back({t % 2 ? BRAID_FLOAT64 : BRAID_FLOAT32, t % 3 ? BRAID_INT32 : BRAID_INT64,
                     t % 4 < 2 ? BRAID_SUM : BRAID_AVERAGE, 50 + t, 1 + t % 3, 0});
    pairs.push_back(stu::AllPairs(size_, cases[t].length, cases[t].row, 20 + t));
    mine.push_back(std::make_unique<stu::PairTensors>(
        pairs[t][rank_], cases[t].dtype, cases[t].index_dtype, cases[t].row, cases[t].row == 1));
    dense.push_back(std::make_unique<Tensor>(cases[t].dtype, DenseShape(cases[t])));
    const std::string name = ctu::UniqueName("many");
    ASSERT_EQ(
        braid_sparse_allreduce_async(name.c_str(), mine[t]->indices.desc(), mine[t]->values.desc(),
                                     dense[t]->desc(), cases[t].op, 0, handles[t].out()),
        BRAID_OK)
        << braid_last_error();
  }
  for (int t = 0; t < kTensors; ++t) {
    ASSERT_EQ(handles[t].Wait(), BRAID_OK) << handles[t].Error();
    EXPECT_TRUE(stu::Matches(cases[t].dtype, dense[t]->data(),
                             stu::Reference(pairs[t], cases[t].length, cases[t].row,
                                            cases[t].op == BRAID_AVERAGE, cases[t].dtype)))
        << "tensor " << t;
  }
}

TEST_F(Sparse, AllgatherReturnsEveryRanksPairsInRankOrder) {
  const int64_t length = 23, row = 2;
  const auto all = stu::AllPairs(size_, length, row, 7);
  stu::PairTensors mine(all[rank_], BRAID_FLOAT32, BRAID_INT64, row, false);
  const int64_t shape[] = {length, row};
  Handle h;
  const std::string name = ctu::UniqueName("gather");
  ASSERT_EQ(braid_sparse_allgather_async(name.c_str(), mine.indices.desc(), mine.values.desc(), 2,
                                         shape, h.out()),
            BRAID_OK)
      << braid_last_error();
  ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
  const void *indices = nullptr, *values = nullptr;
  int64_t total = -1;
  const int64_t* rank_pairs = nullptr;
  ASSERT_EQ(braid_handle_sparse_output(h.get(), &indices, &values, &total, &rank_pairs), BRAID_OK);
  int64_t at = 0;
  for (int r = 0; r < size_; ++r) {
    ASSERT_EQ(rank_pairs[r], static_cast<int64_t>(all[r].indices.size())) << "rank " << r;
    for (size_t i = 0; i < all[r].indices.size(); ++i, ++at) {
      EXPECT_EQ(static_cast<const int64_t*>(indices)[at], all[r].indices[i]);
      for (int64_t j = 0; j < row; ++j)
        EXPECT_EQ(static_cast<const float*>(values)[at * row + j], all[r].values[i * row + j]);
    }
  }
  EXPECT_EQ(total, at);
}

TEST_F(Sparse, StatsCountValuesAndIndicesApart) {
  ASSERT_EQ(braid_reset_stats(), BRAID_OK);
  const auto all = stu::AllPairs(size_, 10, 3, 9);
  stu::PairTensors mine(all[rank_], BRAID_FLOAT64, BRAID_INT32, 3, false);
  Tensor dense(BRAID_FLOAT64, {10, 3});
  Handle h;
  const std::string name = ctu::UniqueName("stats");
  ASSERT_EQ(braid_sparse_allreduce_async(name.c_str(), mine.indices.desc(), mine.values.desc(),
                                         dense.desc(), BRAID_SUM, 0, h.out()),
            BRAID_OK);
  ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
  int64_t count = 0, bytes = 0, index_bytes = 0;
  ASSERT_EQ(braid_stats(BRAID_SPARSE_ALLREDUCE, &count, &bytes), BRAID_OK);
  ASSERT_EQ(braid_sparse_stats(BRAID_SPARSE_ALLREDUCE, &index_bytes), BRAID_OK);
  const auto k = static_cast<int64_t>(all[rank_].indices.size());
  EXPECT_EQ(count, 1);
  EXPECT_EQ(bytes, k * 3 * 8);
  EXPECT_EQ(index_bytes, k * 4);
  EXPECT_EQ(braid_sparse_stats(BRAID_ALLREDUCE, &index_bytes), BRAID_ERR_INVALID_ARGUMENT);
}

}  // namespace
