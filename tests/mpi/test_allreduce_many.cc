// Backend::AllreduceMany: a fused group reduced as one buffer, through the
// packing default and through the ring working on the tensors in place.
#include <gtest/gtest.h>
#include <mpi.h>

#include <memory>
#include <vector>

#include "collectives/mpi/mpi_backend.h"

namespace braid {
namespace {

class AllreduceManyTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    mpi::MpiBackendOptions options;
    options.ring_threshold_bytes = GetParam();
    options.scratch_bytes = 4096;
    options.ring_segment_bytes = 256;  // 64 floats: segments split inside pieces too
    ASSERT_TRUE(mpi::MpiBackend::Create(comm_, options, &backend_).ok());
  }
  void TearDown() override {
    backend_.reset();
    MPI_Comm_free(&comm_);
  }

  // Rank r's element i of piece p: (r + 1) * (p + 1) + i % 5.
  template <typename T>
  void Run(DataType dtype, ReduceOp op, const std::vector<int64_t>& counts) {
    std::vector<std::vector<T>> pieces;
    std::vector<BufferView> views;
    int64_t total = 0;
    for (size_t p = 0; p < counts.size(); ++p) {
      pieces.emplace_back(counts[p]);
      for (int64_t i = 0; i < counts[p]; ++i)
        pieces[p][i] = static_cast<T>((rank_ + 1) * static_cast<int>(p + 1) + i % 5);
      total += counts[p];
    }
    for (auto& piece : pieces) {
      BufferView v;
      v.data = piece.data();
      v.count = static_cast<int64_t>(piece.size());
      v.dtype = dtype;
      views.push_back(v);
    }
    std::vector<T> staging_memory(total);
    BufferView staging;
    staging.data = staging_memory.data();
    staging.count = total;
    staging.dtype = dtype;
    Status st = backend_->AllreduceMany(views, op, staging);
    ASSERT_TRUE(st.ok()) << st.ToString();
    const int n = size_;
    for (size_t p = 0; p < counts.size(); ++p) {
      const int scale = static_cast<int>(p + 1);
      for (int64_t i = 0; i < counts[p]; ++i) {
        const int rest = static_cast<int>(i % 5);
        T expected = op == ReduceOp::kSum ? static_cast<T>(scale * n * (n + 1) / 2 + n * rest)
                                          : static_cast<T>(scale * n + rest);
        ASSERT_EQ(pieces[p][i], expected) << "piece " << p << " element " << i;
      }
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  std::unique_ptr<mpi::MpiBackend> backend_;
};

const std::vector<int64_t> kUneven = {0, 1, 17, 5, 0, 300, 2, 64, 65, 1000};

TEST_P(AllreduceManyTest, FloatSumOverUnevenPieces) {
  Run<float>(DataType::kFloat32, ReduceOp::kSum, kUneven);
}

TEST_P(AllreduceManyTest, IntMaxOverUnevenPieces) {
  Run<int32_t>(DataType::kInt32, ReduceOp::kMax, kUneven);
}

TEST_P(AllreduceManyTest, FewerElementsThanRanks) {
  Run<double>(DataType::kFloat64, ReduceOp::kSum, {0, 1, 0, 1});
}

TEST_P(AllreduceManyTest, ManySmallTensors) {
  Run<int64_t>(DataType::kInt64, ReduceOp::kSum, std::vector<int64_t>(200, 33));
}

// 0: every group takes the ring in place; 1 GiB: every group is packed.
INSTANTIATE_TEST_SUITE_P(RingAndPacked, AllreduceManyTest,
                         ::testing::Values(int64_t{0}, int64_t{1} << 30));

}  // namespace
}  // namespace braid
