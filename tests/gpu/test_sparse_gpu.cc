// The sparse collectives on a GPU: the scatter-add and index-check kernels
// against the host's (collectives/cpu/scatter_add.h), then sparse allreduce and
// allgather through the whole engine on cudaMalloc'd tensors (NCCL at np 1,
// host-staged where ranks share the GPU), against sums computed in the test.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "braid/braid.h"
#include "collectives/cpu/scatter_add.h"
#include "collectives/cuda/scatter_add.h"
#include "common/half.h"

namespace {

template <typename T>
void* ToDevice(const std::vector<T>& v) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, v.size() * sizeof(T) + 8), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  return p;
}

template <typename T>
std::vector<T> ToHost(const void* p, size_t n) {
  std::vector<T> out(n);
  EXPECT_EQ(cudaMemcpy(out.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return out;
}

// Distinct indices (the kernel's atomics then add in one order per element) in
// rows of 3, plus indices out of range the kernel must skip.
TEST(SparseKernels, ScatterAddMatchesTheHost) {
  const int64_t length = 1000, row = 3, pairs = 400;
  std::vector<int32_t> idx(pairs);
  std::vector<float> vals(pairs * row);
  for (int64_t p = 0; p < pairs; ++p) idx[p] = static_cast<int32_t>((p * 7) % length);
  idx[5] = -1;
  idx[6] = static_cast<int32_t>(length);
  for (size_t i = 0; i < vals.size(); ++i) vals[i] = static_cast<float>(i % 11) - 5.0f;
  std::vector<float> host(length * row, 1.0f);
  braid::cpu::ScatterAdd(host.data(), length, row, braid::DataType::kFloat32, idx.data(),
                         braid::DataType::kInt32, vals.data(), pairs, 0.5);
  void* d_idx = ToDevice(idx);
  void* d_vals = ToDevice(vals);
  void* d_dense = ToDevice(std::vector<float>(length * row, 1.0f));
  ASSERT_TRUE(braid::cuda::ScatterAdd(d_dense, length, row, braid::DataType::kFloat32, d_idx,
                                      braid::DataType::kInt32, d_vals, pairs, 0.5, nullptr)
                  .ok());
  EXPECT_EQ(ToHost<float>(d_dense, length * row), host);
  unsigned long long* first = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&first), sizeof(*first)), cudaSuccess);
  ASSERT_EQ(cudaMemset(first, 0xff, sizeof(*first)), cudaSuccess);
  ASSERT_TRUE(braid::cuda::FindIndexOutOfRange(d_idx, braid::DataType::kInt32, pairs, length, first,
                                               nullptr)
                  .ok());
  EXPECT_EQ(ToHost<unsigned long long>(first, 1)[0], 5u);
  for (void* p : {d_idx, d_vals, d_dense, static_cast<void*>(first)}) cudaFree(p);
}

TEST(SparseKernels, SixteenBitDuplicatesAddUp) {
  // Small integers: every order of the atomics gives the same exact sum.
  std::vector<int64_t> idx = {3, 3, 0, 3};
  std::vector<uint16_t> vals = {braid::FloatToHalf(1), braid::FloatToHalf(2),
                                braid::FloatToHalf(-4), braid::FloatToHalf(8)};
  void* d_idx = ToDevice(idx);
  void* d_vals = ToDevice(vals);
  void* d_dense = ToDevice(std::vector<uint16_t>(4, braid::FloatToHalf(0)));
  ASSERT_TRUE(braid::cuda::ScatterAdd(d_dense, 4, 1, braid::DataType::kFloat16, d_idx,
                                      braid::DataType::kInt64, d_vals, 4, 1.0, nullptr)
                  .ok());
  std::vector<uint16_t> got = ToHost<uint16_t>(d_dense, 4);
  EXPECT_EQ(braid::HalfToFloat(got[0]), -4.0f);
  EXPECT_EQ(braid::HalfToFloat(got[3]), 11.0f);
  for (void* p : {d_idx, d_vals, d_dense}) cudaFree(p);
}

class SparseEngineGpu : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_EQ(braid_init(), BRAID_OK) << braid_last_error(); }
  static void TearDownTestSuite() { braid_shutdown(); }
};

// Rank r sends pairs (r + 2p) mod length with value r + 1 + p, rows of 2.
TEST_F(SparseEngineGpu, AllreduceAndAllgatherOnDeviceTensors) {
  const int rank = braid_rank(), size = braid_size();
  const int64_t length = 101, row = 2, pairs = 5 + rank;
  auto index_of = [&](int r, int64_t p) { return (r + 2 * p) % length; };
  std::vector<int32_t> idx(pairs);
  std::vector<float> vals(pairs * row);
  for (int64_t p = 0; p < pairs; ++p) {
    idx[p] = static_cast<int32_t>(index_of(rank, p));
    for (int64_t j = 0; j < row; ++j) vals[p * row + j] = static_cast<float>(rank + 1 + p + j);
  }
  std::vector<double> expected(length * row, 0.0);
  for (int r = 0; r < size; ++r)
    for (int64_t p = 0; p < 5 + r; ++p)
      for (int64_t j = 0; j < row; ++j) expected[index_of(r, p) * row + j] += r + 1 + p + j;
  void* d_idx = ToDevice(idx);
  void* d_vals = ToDevice(vals);
  void* d_dense = ToDevice(std::vector<float>(length * row, 7.0f));
  int64_t idx_shape[] = {pairs}, val_shape[] = {pairs, row}, dense_shape[] = {length, row};
  braid_tensor_t ti{d_idx, BRAID_INT32, 1, idx_shape, 0, nullptr};
  braid_tensor_t tv{d_vals, BRAID_FLOAT32, 2, val_shape, 0, nullptr};
  braid_tensor_t td{d_dense, BRAID_FLOAT32, 2, dense_shape, 0, nullptr};
  braid_handle_t h = nullptr;
  ASSERT_EQ(braid_sparse_allreduce_async("gpu.sparse", &ti, &tv, &td, BRAID_SUM, 0, &h), BRAID_OK)
      << braid_last_error();
  ASSERT_EQ(braid_wait(h), BRAID_OK) << braid_handle_error(h);
  braid_handle_free(h);
  std::vector<float> got = ToHost<float>(d_dense, length * row);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], expected[i]) << i;

  ASSERT_EQ(braid_sparse_allgather_async("gpu.sparse.gather", &ti, &tv, 2, dense_shape, &h),
            BRAID_OK);
  ASSERT_EQ(braid_wait(h), BRAID_OK) << braid_handle_error(h);
  const void *all_idx = nullptr, *all_vals = nullptr;
  int64_t total = 0;
  const int64_t* rank_pairs = nullptr;
  ASSERT_EQ(braid_handle_sparse_output(h, &all_idx, &all_vals, &total, &rank_pairs), BRAID_OK);
  std::vector<int32_t> gathered = ToHost<int32_t>(all_idx, static_cast<size_t>(total));
  int64_t at = 0;
  for (int r = 0; r < size; ++r) {
    EXPECT_EQ(rank_pairs[r], 5 + r);
    for (int64_t p = 0; p < 5 + r; ++p, ++at) EXPECT_EQ(gathered[at], index_of(r, p));
  }
  braid_handle_free(h);
  for (void* p : {d_idx, d_vals, d_dense}) cudaFree(p);
}

}  // namespace
