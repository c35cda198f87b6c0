// What every device backend (NCCL, host-staged) must do, as checks a suite runs on
// its own backend: allreduce of every dtype x op x size, a fused group through the
// staging buffer, scaling folded into the passes, allgatherv in and out of place, broadcast from
// every root. Expected values depend on the rank and the number of ranks only (nccl_test_util.h),
// so every check holds at any np.
#pragma once

#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "collectives/backend.h"
#include "collectives/cuda/device_memory.h"
#include "nccl_test_util.h"

namespace braid::nccl::testing {

constexpr DataType kAllTypes[] = {DataType::kUInt8,   DataType::kInt8,    DataType::kInt32,
                                  DataType::kInt64,   DataType::kFloat16, DataType::kBFloat16,
                                  DataType::kFloat32, DataType::kFloat64};
constexpr ReduceOp kAllOps[] = {ReduceOp::kSum, ReduceOp::kMin, ReduceOp::kMax, ReduceOp::kProduct};

// Where a backend's checks run: this rank among `size`, buffers on `device`.
struct DevicePlace {
  int rank = 0;
  int size = 1;
  int device = 0;

  std::unique_ptr<cuda::DeviceBuffer> Alloc(int64_t bytes) const {
    std::unique_ptr<cuda::DeviceBuffer> buf;
    Status st = cuda::DeviceBuffer::Create(device, bytes, &buf);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return buf;
  }
};

// One allreduce of `n` elements in `buf` (at least n elements large).
inline void CheckAllreduce(Backend& backend, const DevicePlace& at, DataType dtype, ReduceOp op,
                           int64_t n, cuda::DeviceBuffer* buf) {
  SCOPED_TRACE(std::string(DataTypeName(dtype)) + " " + ReduceOpName(op) +
               " n=" + std::to_string(n));
  auto input = Image(dtype, n, [&](int64_t i) { return Input(dtype, op, at.rank, i); });
  ASSERT_TRUE(Upload(input, buf->data()));
  Status st = backend.Allreduce(View(buf->data(), n, dtype, at.device), op);
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto want = Image(dtype, n, [&](int64_t i) { return Reduced(dtype, op, at.size, i); });
  EXPECT_EQ(FirstMismatch(Download(buf->data(), want.size()), want, dtype), -1);
}

inline void CheckAllreduceEverywhere(Backend& backend, const DevicePlace& at,
                                     const std::vector<int64_t>& sizes) {
  int64_t largest = 0;
  for (int64_t n : sizes) largest = std::max(largest, n);
  auto buf = at.Alloc(largest * 8);
  for (DataType dtype : kAllTypes) {
    for (ReduceOp op : kAllOps) {
      for (int64_t n : sizes) CheckAllreduce(backend, at, dtype, op, n, buf.get());
    }
  }
  // An empty buffer may have no memory at all.
  EXPECT_TRUE(
      backend.Allreduce(View(nullptr, 0, DataType::kFloat32, at.device), ReduceOp::kSum).ok());
}

// A group of buffers reduced through `staging` (`spare` elements larger than the
// group): afterwards it holds the reduced concatenation and its spare elements are
// untouched, and every buffer holds its own part of it.
inline void CheckAllreduceMany(Backend& backend, const DevicePlace& at, DataType dtype, ReduceOp op,
                               int64_t spare) {
  const std::vector<int64_t> counts = {17, 0, (1 << 20) + 3, 1, 5};
  SCOPED_TRACE(std::string(DataTypeName(dtype)) + " " + ReduceOpName(op));
  const int64_t elem = static_cast<int64_t>(DataTypeSize(dtype));
  std::vector<std::unique_ptr<cuda::DeviceBuffer>> owned;
  std::vector<BufferView> views;
  int64_t total = 0;
  for (int64_t n : counts) {
    owned.push_back(at.Alloc(n * elem));
    auto in = Image(dtype, n, [&](int64_t i) { return Input(dtype, op, at.rank, total + i); });
    EXPECT_TRUE(Upload(in, owned.back()->data()));
    views.push_back(View(owned.back()->data(), n, dtype, at.device));
    total += n;
  }
  auto staging = at.Alloc((total + spare) * elem);
  EXPECT_EQ(cudaMemset(staging->data(), 0x7f, (total + spare) * elem), cudaSuccess);
  Status st =
      backend.AllreduceMany(views, op, View(staging->data(), total + spare, dtype, at.device));
  EXPECT_TRUE(st.ok()) << st.ToString();
  auto want = Image(dtype, total, [&](int64_t i) { return Reduced(dtype, op, at.size, i); });
  auto packed = Download(staging->data(), (total + spare) * elem);
  EXPECT_EQ(FirstMismatch({packed.begin(), packed.begin() + total * elem}, want, dtype), -1);
  EXPECT_EQ(std::vector<char>(packed.begin() + total * elem, packed.end()),
            std::vector<char>(spare * elem, 0x7f));
  int64_t offset = 0;
  for (size_t b = 0; b < views.size(); ++b) {
    const int64_t bytes = counts[b] * elem;
    std::vector<char> part(want.begin() + offset, want.begin() + offset + bytes);
    EXPECT_EQ(FirstMismatch(Download(views[b].data, bytes), part, dtype), -1) << "buffer " << b;
    offset += bytes;
  }
}

// Element i of a float32, float64 or int32 image.
inline double LoadScaledCheckValue(DataType dtype, const std::vector<char>& image, int64_t i) {
  if (dtype == DataType::kFloat64) return reinterpret_cast<const double*>(image.data())[i];
  if (dtype == DataType::kInt32) return reinterpret_cast<const int32_t*>(image.data())[i];
  return reinterpret_cast<const float*>(image.data())[i];
}

// The scaling a backend folds into its passes (AllreduceScaled), for one buffer and
// for a group: prescale and postscale on float32 (powers of two: exact), an integer
// average's division toward zero on int32, and a float64 average (NCCL: ncclAvg).
inline void CheckAllreduceScaled(Backend& backend, const DevicePlace& at) {
  struct Case {
    DataType dtype;
    ReduceScaling scaling;
    double rel_tol;
  };
  const Case cases[] = {{DataType::kFloat32, {0.5, 0.25, 1}, 0.0},
                        {DataType::kInt32, {1.0, 1.0, at.size}, 0.0},
                        {DataType::kFloat64, {1.0, 1.0 / at.size, 1}, 1e-12}};
  const int64_t n = 1003;
  for (const Case& c : cases) {
    for (int buffers : {1, 3}) {
      SCOPED_TRACE(std::string(DataTypeName(c.dtype)) + " in " + std::to_string(buffers));
      const int64_t elem = static_cast<int64_t>(DataTypeSize(c.dtype));
      std::vector<std::unique_ptr<cuda::DeviceBuffer>> owned;
      std::vector<BufferView> views;
      for (int b = 0; b < buffers; ++b) {
        owned.push_back(at.Alloc(n * elem));
        auto in = Image(c.dtype, n, [&](int64_t i) {
          return Input(c.dtype, ReduceOp::kSum, at.rank, b * n + i);
        });
        ASSERT_TRUE(Upload(in, owned.back()->data()));
        views.push_back(View(owned.back()->data(), n, c.dtype, at.device));
      }
      auto staging = at.Alloc(buffers * n * elem);
      Status st = backend.AllreduceScaled(
          views, ReduceOp::kSum, View(staging->data(), buffers * n, c.dtype, at.device), c.scaling);
      ASSERT_TRUE(st.ok()) << st.ToString();
      for (int b = 0; b < buffers; ++b) {
        auto got = Download(views[b].data, static_cast<size_t>(n * elem));
        for (int64_t i = 0; i < n; ++i) {
          const double sum =
              c.scaling.prescale * Reduced(c.dtype, ReduceOp::kSum, at.size, b * n + i);
          const double want =
              c.scaling.divisor > 1
                  ? static_cast<double>(static_cast<int64_t>(sum) / c.scaling.divisor)
                  : sum * c.scaling.postscale;
          const double value = LoadScaledCheckValue(c.dtype, got, i);
          ASSERT_LE(std::fabs(value - want), c.rel_tol * std::fabs(want))
              << "buffer " << b << " element " << i << ": got " << value << ", want " << want;
        }
      }
    }
  }
}

inline void CheckAllgatherv(Backend& backend, const DevicePlace& at,
                            std::initializer_list<DataType> dtypes) {
  for (const GatherCase& c : kGatherCases) {
    for (DataType dtype : dtypes) {
      for (bool in_place : {false, true}) {
        SCOPED_TRACE(std::string(c.name) + " " + DataTypeName(dtype) +
                     (in_place ? " in place" : " out of place"));
        std::vector<int64_t> counts(at.size);
        int64_t total = 0, mine = 0;
        for (int r = 0; r < at.size; ++r) {
          if (r == at.rank) mine = total;
          counts[r] = c.count(r);
          total += counts[r];
        }
        const int64_t elem = static_cast<int64_t>(DataTypeSize(dtype));
        auto recv = at.Alloc(total * elem);
        if (total > 0) ASSERT_EQ(cudaMemset(recv->data(), 0xff, total * elem), cudaSuccess);
        auto block =
            Image(dtype, counts[at.rank], [&](int64_t j) { return BlockValue(at.rank, j); });
        auto send = at.Alloc(in_place ? 0 : counts[at.rank] * elem);
        char* send_ptr = in_place ? static_cast<char*>(recv->data()) + mine * elem
                                  : static_cast<char*>(send->data());
        ASSERT_TRUE(Upload(block, send_ptr));
        Status st = backend.Allgatherv(View(send_ptr, counts[at.rank], dtype, at.device),
                                       View(recv->data(), total, dtype, at.device), counts);
        ASSERT_TRUE(st.ok()) << st.ToString();
        auto want = GatheredImage(dtype, counts);
        EXPECT_EQ(FirstMismatch(Download(recv->data(), total * elem), want, dtype), -1);
      }
    }
  }
}

inline void CheckBroadcastFromEveryRoot(Backend& backend, const DevicePlace& at) {
  for (DataType dtype : {DataType::kFloat64, DataType::kInt8, DataType::kFloat16}) {
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{17}, (int64_t{1} << 20) + 3}) {
      for (int root = 0; root < at.size; ++root) {
        SCOPED_TRACE(std::string(DataTypeName(dtype)) + " n=" + std::to_string(n) + " root " +
                     std::to_string(root));
        const int64_t bytes = n * static_cast<int64_t>(DataTypeSize(dtype));
        auto buf = at.Alloc(bytes);
        auto want = Image(dtype, n, [&](int64_t j) { return BlockValue(root, j); });
        if (at.rank == root) {
          ASSERT_TRUE(Upload(want, buf->data()));
        } else if (bytes > 0) {
          ASSERT_EQ(cudaMemset(buf->data(), 0xff, bytes), cudaSuccess);
        }
        Status st = backend.Broadcast(View(buf->data(), n, dtype, at.device), root);
        ASSERT_TRUE(st.ok()) << st.ToString();
        EXPECT_EQ(FirstMismatch(Download(buf->data(), bytes), want, dtype), -1);
      }
    }
  }
}

}  // namespace braid::nccl::testing
