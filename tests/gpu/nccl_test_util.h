// Helpers for the NCCL backend suite: host images of device buffers, the values
// each rank contributes and what a reduction or an allgatherv over all ranks must
// give, and a gate that holds a stream until the test lets it go.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "collectives/cuda/device_memory.h"
#include "common/buffer.h"
#include "common/half.h"
#include "common/status.h"
#include "common/types.h"

namespace braid::nccl::testing {

inline void Store(DataType dtype, double v, char* dst) {
  auto put = [dst](auto x) { std::memcpy(dst, &x, sizeof x); };
  switch (dtype) {
    case DataType::kUInt8:
      return put(static_cast<uint8_t>(v));
    case DataType::kInt8:
      return put(static_cast<int8_t>(v));
    case DataType::kInt32:
      return put(static_cast<int32_t>(v));
    case DataType::kInt64:
      return put(static_cast<int64_t>(v));
    case DataType::kFloat16:
      return put(FloatToHalf(static_cast<float>(v)));
    case DataType::kBFloat16:
      return put(FloatToBFloat16(static_cast<float>(v)));
    case DataType::kFloat32:
      return put(static_cast<float>(v));
    case DataType::kFloat64:
      return put(v);
  }
}

// The host image of `count` elements, element i being value(i).
template <typename Fn>
std::vector<char> Image(DataType dtype, int64_t count, Fn value) {
  const size_t elem = DataTypeSize(dtype);
  std::vector<char> out(static_cast<size_t>(count) * elem);
  for (int64_t i = 0; i < count; ++i) Store(dtype, value(i), out.data() + i * elem);
  return out;
}

// Element i of `rank`'s allreduce input for `op`: small integers, exact in every
// dtype, whose reductions over up to 6 ranks stay exact and within int8 / uint8
// (|sum| <= 60; products are +-2^k with k <= 6).
inline double Input(DataType dtype, ReduceOp op, int rank, int64_t i) {
  const bool is_signed = dtype != DataType::kUInt8;
  if (op == ReduceOp::kProduct) {
    const double magnitude = (i + rank) % 3 == 0 ? 2.0 : 1.0;
    return is_signed && (i + 2 * rank) % 5 == 0 ? -magnitude : magnitude;
  }
  const int64_t v = (i * 7 + rank * 3) % 11;
  return static_cast<double>(is_signed ? v - 5 : v);
}

// What the allreduce of every rank's Input gives at element i.
inline double Reduced(DataType dtype, ReduceOp op, int size, int64_t i) {
  double acc = Input(dtype, op, 0, i);
  for (int r = 1; r < size; ++r) {
    const double x = Input(dtype, op, r, i);
    if (op == ReduceOp::kSum) acc += x;
    if (op == ReduceOp::kMin) acc = std::min(acc, x);
    if (op == ReduceOp::kMax) acc = std::max(acc, x);
    if (op == ReduceOp::kProduct) acc *= x;
  }
  return acc;
}

// Element j of rank r's allgatherv block (exact in every dtype: at most 250).
inline double BlockValue(int r, int64_t j) {
  return static_cast<double>((r * 131 + j) % 251);
}

// The first element at which `got` differs from `want`, or -1.
inline int64_t FirstMismatch(const std::vector<char>& got, const std::vector<char>& want,
                             DataType dtype) {
  if (got.size() == want.size() &&
      (got.empty() || std::memcmp(got.data(), want.data(), got.size()) == 0)) {
    return -1;
  }
  const size_t elem = DataTypeSize(dtype);
  for (size_t i = 0; i < std::min(got.size(), want.size()); i += elem) {
    if (std::memcmp(&got[i], &want[i], elem) != 0) return static_cast<int64_t>(i / elem);
  }
  return static_cast<int64_t>(std::min(got.size(), want.size()) / elem);
}

// Rank r contributes counts[r] elements; every rank's recv ends up with every block.
struct GatherCase {
  const char* name;
  int64_t (*count)(int rank);
};
inline const GatherCase kGatherCases[] = {
    {"all empty", [](int) -> int64_t { return 0; }},
    {"one each", [](int) -> int64_t { return 1; }},
    {"odd ranks empty", [](int r) -> int64_t { return r % 2 == 1 ? 0 : 1000 + r; }},
    {"large", [](int r) -> int64_t { return (int64_t{1} << 20) + 3 + r; }},
};

inline std::vector<char> GatheredImage(DataType dtype, const std::vector<int64_t>& counts) {
  std::vector<char> out;
  for (size_t r = 0; r < counts.size(); ++r) {
    auto block =
        Image(dtype, counts[r], [&](int64_t j) { return BlockValue(static_cast<int>(r), j); });
    out.insert(out.end(), block.begin(), block.end());
  }
  return out;
}

inline void ExpectInvalid(const Status& st, const std::string& words) {
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find(words), std::string::npos) << st.ToString();
}

inline bool Upload(const std::vector<char>& image, void* device_ptr) {
  if (image.empty()) return true;
  return cudaMemcpy(device_ptr, image.data(), image.size(), cudaMemcpyHostToDevice) == cudaSuccess;
}

inline std::vector<char> Download(const void* device_ptr, size_t bytes) {
  std::vector<char> out(bytes);
  if (bytes > 0 &&
      cudaMemcpy(out.data(), device_ptr, bytes, cudaMemcpyDeviceToHost) != cudaSuccess) {
    out.clear();
  }
  return out;
}

inline BufferView View(void* data, int64_t count, DataType dtype, int device,
                       void* stream = nullptr) {
  BufferView v;
  v.data = data;
  v.count = count;
  v.dtype = dtype;
  v.device = device;
  v.stream = stream;
  return v;
}

// Holds a stream at a host function until Open() (or 60 s), so that a test decides
// when the stream's later work may run.
class StreamGate {
 public:
  explicit StreamGate(cudaStream_t stream) : stream_(stream) {}
  ~StreamGate() {
    Open();
    if (opener_.joinable()) opener_.join();
    (void)cudaStreamSynchronize(stream_);  // Hold has returned: *this may go
  }

  bool Close() { return cudaLaunchHostFunc(stream_, &StreamGate::Hold, this) == cudaSuccess; }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void OpenAfter(std::chrono::milliseconds delay) {
    opener_ = std::thread([this, delay] {
      std::this_thread::sleep_for(delay);
      Open();
    });
  }

 private:
  static void CUDART_CB Hold(void* arg) {
    auto* self = static_cast<StreamGate*>(arg);
    std::unique_lock<std::mutex> lock(self->mu_);
    self->cv_.wait_for(lock, std::chrono::seconds(60), [self] { return self->open_; });
  }

  cudaStream_t stream_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  std::thread opener_;
};

}  // namespace braid::nccl::testing
