// The sparse collectives on GPU tensors, through the engine's device path on a
// fake device (tests/mpi/fake_device_plane.h) so that it runs on every machine:
// pairs and dense tensors on device 0, the index check, packing, scatter-add and
// zeroing queued on the device plane's stream, the exchange on the fake device
// backend. The CUDA kernels themselves are checked in tests/gpu.
#include <string>
#include <vector>

#include "tests/mpi/fake_device_plane.h"
#include "tests/mpi/sparse_test_util.h"

namespace {

using ctu::Handle;
using ctu::Tensor;

constexpr int kDevice = 0;

const bool kRegistered = [] {
  fake::RegisterFakeDevicePlugin();
  return true;
}();

class SparseDevice : public ctu::BraidTest {};

TEST_F(SparseDevice, AllreduceSumsAndAveragesOnTheDevice) {
  int salt = 0;
  for (int flags : {0, BRAID_SPARSE_DENSE_FALLBACK}) {
    for (int op : {BRAID_SUM, BRAID_AVERAGE}) {
      for (int dtype : {BRAID_FLOAT32, BRAID_FLOAT16}) {
        const int64_t length = flags ? 3 : 41, row = 2;
        const auto all = stu::AllPairs(size_, length, row, salt++);
        stu::PairTensors mine(all[rank_], dtype, BRAID_INT32, row, false, kDevice);
        Tensor dense(dtype, {length, row}, kDevice);
        dense.Fill([](int64_t) { return 3.0; });
        Handle h;
        const std::string name = ctu::UniqueName("dev");
        ASSERT_EQ(
            braid_sparse_allreduce_async(name.c_str(), mine.indices.desc(), mine.values.desc(),
                                         dense.desc(), op, flags, h.out()),
            BRAID_OK)
            << braid_last_error();
        ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
        EXPECT_TRUE(stu::Matches(dtype, dense.data(),
                                 stu::Reference(all, length, row, op == BRAID_AVERAGE, dtype)))
            << ctu::OpName(op) << " flags " << flags;
      }
    }
  }
}

TEST_F(SparseDevice, IndexOutOfRangeFailsEveryRank) {
  Tensor idx(BRAID_INT64, {1}, kDevice), vals(BRAID_FLOAT32, {1}, kDevice);
  Tensor dense(BRAID_FLOAT32, {4}, kDevice);
  idx.Set(0, rank_ == size_ - 1 ? -3 : 1);
  vals.Set(0, 1.0);
  Handle h;
  const std::string name = ctu::UniqueName("dev_range");
  ASSERT_EQ(braid_sparse_allreduce_async(name.c_str(), idx.desc(), vals.desc(), dense.desc(),
                                         BRAID_SUM, 0, h.out()),
            BRAID_OK);
  EXPECT_EQ(h.Wait(), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_NE(h.Error().find("rank " + std::to_string(size_ - 1) + ": "), std::string::npos)
      << h.Error();
  EXPECT_NE(h.Error().find("index -3"), std::string::npos) << h.Error();
}

TEST_F(SparseDevice, AllgatherOnTheDevice) {
  const int64_t length = 9;
  const auto all = stu::AllPairs(size_, length, 1, 11);
  stu::PairTensors mine(all[rank_], BRAID_FLOAT64, BRAID_INT32, 1, true, kDevice);
  const int64_t shape[] = {length};
  Handle h;
  const std::string name = ctu::UniqueName("dev_gather");
  ASSERT_EQ(braid_sparse_allgather_async(name.c_str(), mine.indices.desc(), mine.values.desc(), 1,
                                         shape, h.out()),
            BRAID_OK);
  ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
  const void *indices = nullptr, *values = nullptr;
  int64_t total = 0;
  const int64_t* pairs = nullptr;
  ASSERT_EQ(braid_handle_sparse_output(h.get(), &indices, &values, &total, &pairs), BRAID_OK);
  int64_t at = 0;
  for (int r = 0; r < size_; ++r) {
    ASSERT_EQ(pairs[r], static_cast<int64_t>(all[r].indices.size()));
    for (size_t i = 0; i < all[r].indices.size(); ++i, ++at) {
      EXPECT_EQ(static_cast<const int32_t*>(indices)[at], all[r].indices[i]);
      EXPECT_EQ(static_cast<const double*>(values)[at], all[r].values[i]);
    }
  }
  EXPECT_EQ(total, at);
}

}  // namespace
