// Sparse collectives that must fail: on this rank alone before anything is queued
// (bad shapes and types), or on every rank with the same message (a dense tensor
// or type that differs between ranks, an index out of range on one rank), with
// nothing written out of bounds and the engine usable afterwards.
#include <string>
#include <vector>

#include "tests/mpi/sparse_test_util.h"

namespace {

using ctu::Handle;
using ctu::Tensor;

class SparseErrors : public ctu::BraidTest {};

// Submits one sparse allreduce; returns the enqueue code or, when it was
// queued, the wait's, with the message in *error.
int RunSparse(Tensor& indices, Tensor& values, Tensor& dense, int op, std::string* error,
              const braid_tensor_t* dense_desc = nullptr) {
  Handle h;
  const std::string name = ctu::UniqueName("err");
  int rc = braid_sparse_allreduce_async(name.c_str(), indices.desc(), values.desc(),
                                        dense_desc ? dense_desc : dense.desc(), op, 0, h.out());
  if (rc != BRAID_OK) {
    *error = braid_last_error();
    return rc;
  }
  rc = h.Wait();
  *error = h.Error();
  return rc;
}

TEST_F(SparseErrors, LocalMistakesAreRefusedAtOnce) {
  Tensor idx(BRAID_INT32, {2}), vals(BRAID_FLOAT32, {2}), dense(BRAID_FLOAT32, {5});
  Tensor wrong_rows(BRAID_FLOAT32, {3}), int_vals(BRAID_INT32, {2}), bad_idx(BRAID_FLOAT32, {2});
  Tensor dense64(BRAID_FLOAT64, {5}), idx2d(BRAID_INT32, {2, 1});
  std::string e;
  EXPECT_EQ(RunSparse(idx, wrong_rows, dense, BRAID_SUM, &e), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.find("do not match"), std::string::npos) << e;
  EXPECT_EQ(RunSparse(idx, int_vals, dense, BRAID_SUM, &e), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(RunSparse(bad_idx, vals, dense, BRAID_SUM, &e), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.find("indices must be int32 or int64"), std::string::npos) << e;
  EXPECT_EQ(RunSparse(idx, vals, dense64, BRAID_SUM, &e), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(RunSparse(idx2d, vals, dense, BRAID_SUM, &e), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(RunSparse(idx, vals, dense, BRAID_MAX, &e), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.find("sum or average"), std::string::npos) << e;
  EXPECT_TRUE(ctu::EngineUsable());
}

// The last rank gives an index one past the end (and, at np > 2, rank 0 a
// negative one): every rank fails with a message naming them, and the guard
// elements around every rank's dense tensor are untouched.
TEST_F(SparseErrors, IndexOutOfRangeFailsEveryRank) {
  const int64_t length = 6;
  Tensor idx(BRAID_INT64, {2}), vals(BRAID_FLOAT32, {2}), guarded(BRAID_FLOAT32, {length + 2});
  idx.Set(0, 1);
  idx.Set(1, rank_ == size_ - 1 ? length : (rank_ == 0 && size_ > 2 ? -1 : 2));
  vals.Fill([](int64_t) { return 1.0; });
  guarded.Fill([](int64_t) { return 9.0; });
  braid_tensor_t dense = *guarded.desc();
  dense.data = static_cast<float*>(guarded.data()) + 1;
  const int64_t shape[] = {length};
  dense.shape = shape;
  std::string e;
  EXPECT_EQ(RunSparse(idx, vals, guarded, BRAID_SUM, &e, &dense), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_NE(e.find("rank " + std::to_string(size_ - 1) + ": sparse_allreduce of"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("index 6 (pair 1)"), std::string::npos) << e;
  if (size_ > 2) EXPECT_NE(e.find("index -1"), std::string::npos) << e;
  EXPECT_EQ(ctu::LoadElem(BRAID_FLOAT32, guarded.data(), 0), 9.0);
  EXPECT_EQ(ctu::LoadElem(BRAID_FLOAT32, guarded.data(), length + 1), 9.0);
  EXPECT_TRUE(ctu::EngineUsable());
}

TEST_F(SparseErrors, DenseShapeOrTypesThatDifferAcrossRanksFailEveryRank) {
  CTU_REQUIRE_RANKS(2);
  struct Variant {
    const char* expect;
    int value_dtype, index_dtype;
    int64_t length;
  };
  const bool odd = rank_ == 1;
  const Variant variants[] = {
      {"Mismatched dense shapes", BRAID_FLOAT32, BRAID_INT32, odd ? 8 : 7},
      {"Mismatched data types", odd ? BRAID_FLOAT64 : BRAID_FLOAT32, BRAID_INT32, 7},
      {"Mismatched index types", BRAID_FLOAT32, odd ? BRAID_INT64 : BRAID_INT32, 7},
  };
  for (const Variant& v : variants) {
    Tensor idx(v.index_dtype, {1}), vals(v.value_dtype, {1}), dense(v.value_dtype, {v.length});
    idx.Set(0, 0);
    vals.Set(0, 1.0);
    std::string e;
    EXPECT_EQ(RunSparse(idx, vals, dense, BRAID_SUM, &e), BRAID_ERR_MISMATCH) << v.expect;
    EXPECT_NE(e.find(v.expect), std::string::npos) << e;
  }
  EXPECT_TRUE(ctu::EngineUsable());
}

// A rank that has joined takes part with no pairs; the others' sums come out.
TEST_F(SparseErrors, JoinedRankContributesNothing) {
  CTU_REQUIRE_RANKS(2);
  const int64_t length = 5;
  if (rank_ == 0) {
    int last = -1;
    ASSERT_EQ(braid_join(&last), BRAID_OK) << braid_last_error();
    return;
  }
  Tensor idx(BRAID_INT32, {1}), vals(BRAID_FLOAT32, {1}), dense(BRAID_FLOAT32, {length});
  idx.Set(0, rank_ % length);
  vals.Set(0, 1.0);
  std::string e;
  ASSERT_EQ(RunSparse(idx, vals, dense, BRAID_SUM, &e), BRAID_OK) << e;
  EXPECT_TRUE(ctu::MatchesValues(dense, [&](int64_t i) {
    double sum = 0;
    for (int r = 1; r < size_; ++r) sum += (r % length == i) ? 1.0 : 0.0;
    return sum;
  }));
  int last = -1;
  ASSERT_EQ(braid_join(&last), BRAID_OK) << braid_last_error();
}

}  // namespace
