// GPU tensors through the whole engine (C API -> controller -> executor -> NCCL
// with one rank per GPU, or the host-staged MPI path where ranks share one):
// allreduce with every scaling path, a fused group, allgather,
// broadcast, mixing host and GPU tensors, and stream ordering against a producer
// on a non-default stream (after the work queued before the call, and not after
// the work queued later).
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "braid/braid.h"
#include "stream_gate.h"

namespace {

struct DeviceTensor {
  std::vector<int64_t> shape;
  void* data = nullptr;
  braid_tensor_t desc{};
  DeviceTensor(int dtype, int64_t n, size_t elem, void* stream) : shape{n} {
    EXPECT_EQ(cudaMalloc(&data, n * elem + 1), cudaSuccess);
    desc = braid_tensor_t{data, dtype, 1, shape.data(), 0, stream};
  }
  ~DeviceTensor() { cudaFree(data); }
};

template <typename T>
std::vector<T> Download(const void* device, int64_t n) {
  std::vector<T> out(n);
  EXPECT_EQ(cudaMemcpy(out.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return out;
}

template <typename T>
void Upload(void* device, const std::vector<T>& v) {
  ASSERT_EQ(cudaMemcpy(device, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice),
            cudaSuccess);
}

int Wait(braid_handle_t h) {
  int rc = braid_wait(h);
  if (rc != BRAID_OK) ADD_FAILURE() << braid_handle_error(h);
  braid_handle_free(h);
  return rc;
}

class EngineGpu : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_EQ(braid_init(), BRAID_OK) << braid_last_error(); }
  static void TearDownTestSuite() { braid_shutdown(); }
  int size() const { return braid_size(); }
  int rank() const { return braid_rank(); }
};

TEST_F(EngineGpu, AllreduceSumAverageAndScalesOutOfPlace) {
  const int64_t n = (1 << 20) + 3;
  std::vector<float> in(n);
  for (int64_t i = 0; i < n; ++i) in[i] = static_cast<float>((i % 7) + rank());
  DeviceTensor a(BRAID_FLOAT32, n, 4, nullptr), out(BRAID_FLOAT32, n, 4, nullptr);
  Upload(a.data, in);
  struct Case {
    int op;
    double pre, post;
  };
  for (Case c : {Case{BRAID_SUM, 1, 1}, Case{BRAID_AVERAGE, 1, 1}, Case{BRAID_SUM, 2, 0.5},
                 Case{BRAID_AVERAGE, 0.5, 3}}) {
    braid_handle_t h;
    std::string name = "gpu.ar." + std::to_string(c.op) + std::to_string(c.pre);
    ASSERT_EQ(braid_allreduce_async(name.c_str(), &a.desc, out.data, c.op, c.pre, c.post, &h),
              BRAID_OK);
    ASSERT_EQ(Wait(h), BRAID_OK);
    std::vector<float> got = Download<float>(out.data, n);
    EXPECT_EQ(Download<float>(a.data, n), in) << "the input changed";
    for (int64_t i = 0; i < n; i += 4099) {
      double sum = 0;
      for (int r = 0; r < size(); ++r) sum += (i % 7) + r;
      double expect = sum * c.pre * c.post / (c.op == BRAID_AVERAGE ? size() : 1);
      ASSERT_NEAR(got[i], expect, 1e-4 * (1 + expect)) << "op " << c.op << " at " << i;
    }
  }
}

TEST_F(EngineGpu, IntegerAverageTruncatesLikeTheHost) {
  const int64_t n = 1001;
  std::vector<int32_t> in(n);
  for (int64_t i = 0; i < n; ++i) in[i] = static_cast<int32_t>(i * 3 + rank() - 500);
  DeviceTensor a(BRAID_INT32, n, 4, nullptr);
  Upload(a.data, in);
  braid_handle_t h;
  ASSERT_EQ(braid_allreduce_async("gpu.int.avg", &a.desc, a.data, BRAID_AVERAGE, 1, 1, &h),
            BRAID_OK);
  ASSERT_EQ(Wait(h), BRAID_OK);
  std::vector<int32_t> got = Download<int32_t>(a.data, n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t sum = 0;
    for (int r = 0; r < size(); ++r) sum += i * 3 + r - 500;
    ASSERT_EQ(got[i], sum / size()) << i;
  }
}

TEST_F(EngineGpu, FusedGroupOfManySmallTensors) {
  const int k = 64;
  const int64_t n = 1000 + 3;
  std::vector<std::unique_ptr<DeviceTensor>> ts;
  std::vector<braid_handle_t> hs(k);
  for (int j = 0; j < k; ++j) {
    ts.push_back(std::make_unique<DeviceTensor>(BRAID_FLOAT64, n, 8, nullptr));
    Upload(ts[j]->data, std::vector<double>(n, j + rank()));
  }
  for (int j = 0; j < k; ++j) {
    std::string name = "gpu.fused." + std::to_string(j);
    ASSERT_EQ(
        braid_allreduce_async(name.c_str(), &ts[j]->desc, ts[j]->data, BRAID_SUM, 1, 1, &hs[j]),
        BRAID_OK);
  }
  for (int j = 0; j < k; ++j) {
    ASSERT_EQ(Wait(hs[j]), BRAID_OK);
    double expect = 0;
    for (int r = 0; r < size(); ++r) expect += j + r;
    EXPECT_EQ(Download<double>(ts[j]->data, n), std::vector<double>(n, expect)) << j;
  }
}

TEST_F(EngineGpu, AllgatherAndBroadcast) {
  const int64_t rows = rank() + 2, cols = 3;
  std::vector<int64_t> shape{rows, cols};
  void* data = nullptr;
  ASSERT_EQ(cudaMalloc(&data, rows * cols * 8), cudaSuccess);
  Upload(data, std::vector<int64_t>(rows * cols, rank() + 10));
  braid_tensor_t t{data, BRAID_INT64, 2, shape.data(), 0, nullptr};
  braid_handle_t h;
  ASSERT_EQ(braid_allgather_async("gpu.gather", &t, &h), BRAID_OK);
  ASSERT_EQ(braid_wait(h), BRAID_OK) << braid_handle_error(h);
  const void* out = nullptr;
  int ndim = 0;
  const int64_t* out_shape = nullptr;
  ASSERT_EQ(braid_handle_output(h, &out, &ndim, &out_shape), BRAID_OK);
  int64_t total = 0;
  for (int r = 0; r < size(); ++r) total += r + 2;
  ASSERT_EQ(ndim, 2);
  EXPECT_EQ(out_shape[0], total);
  std::vector<int64_t> got = Download<int64_t>(out, total * cols), expect;
  for (int r = 0; r < size(); ++r) expect.insert(expect.end(), (r + 2) * cols, r + 10);
  EXPECT_EQ(got, expect);
  braid_handle_free(h);

  Upload(data, std::vector<int64_t>(rows * cols, rank() == 0 ? 77 : -1));
  std::vector<int64_t> one{cols};
  braid_tensor_t b{data, BRAID_INT64, 1, one.data(), 0, nullptr};
  ASSERT_EQ(braid_broadcast_async("gpu.bcast", &b, 0, &h), BRAID_OK);
  ASSERT_EQ(Wait(h), BRAID_OK);
  EXPECT_EQ(Download<int64_t>(data, cols), std::vector<int64_t>(cols, 77));
  cudaFree(data);
}

// A producer on a non-blocking stream writes the tensor (a large asynchronous copy
// from pinned memory, still running when the allreduce is enqueued). Nobody
// synchronises: the engine must order its copy-out and collective after that
// stream, and a finished handle must mean the output is there for any stream; the
// output is read on the legacy default stream, which does not wait for the
// producer by itself.
TEST_F(EngineGpu, OrdersAfterTheProducersStream) {
  const int64_t n = 8 << 20;
  cudaStream_t producer;
  ASSERT_EQ(cudaStreamCreateWithFlags(&producer, cudaStreamNonBlocking), cudaSuccess);
  float* pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(reinterpret_cast<void**>(&pinned), n * 4), cudaSuccess);
  DeviceTensor a(BRAID_FLOAT32, n, 4, producer), out(BRAID_FLOAT32, n, 4, nullptr);
  int wrong = 0;
  for (int it = 0; it < 1000; ++it) {
    const float value = static_cast<float>(it % 97 + 1);
    for (int64_t i = 0; i < n; i += n / 8) pinned[i] = value;  // sparse: cheap to write
    pinned[n - 1] = value;
    ASSERT_EQ(cudaMemcpyAsync(a.data, pinned, n * 4, cudaMemcpyHostToDevice, producer),
              cudaSuccess);
    braid_handle_t h;
    ASSERT_EQ(braid_allreduce_async("gpu.order", &a.desc, out.data, BRAID_SUM, 1, 1, &h), BRAID_OK);
    ASSERT_EQ(Wait(h), BRAID_OK);
    float last = 0;
    ASSERT_EQ(cudaMemcpy(&last, static_cast<float*>(out.data) + n - 1, 4, cudaMemcpyDeviceToHost),
              cudaSuccess);
    if (last != value * size()) ++wrong;
    // The next iteration overwrites `pinned`: let the producer finish reading it.
    ASSERT_EQ(cudaStreamSynchronize(producer), cudaSuccess);
  }
  EXPECT_EQ(wrong, 0) << "of 1000 iterations read data the producer had not written yet";
  cudaFreeHost(pinned);
  cudaStreamDestroy(producer);
}

// Work queued on the producer stream after the call (a kernel holding the stream
// until the host opens a gate) is not waited for: the engine waits for the ready
// event recorded at the call, so the average finishes while the stream is held.
// Round 0 runs ungated, so that set-up (the device plane, NCCL's connections,
// buffers grown) is done before the gate holds a stream.
TEST_F(EngineGpu, DoesNotWaitForWorkQueuedAfterTheCall) {
  const int64_t n = (1 << 20) + 3;
  cudaStream_t producer;
  ASSERT_EQ(cudaStreamCreateWithFlags(&producer, cudaStreamNonBlocking), cudaSuccess);
  DeviceTensor a(BRAID_FLOAT32, n, 4, producer);
  Upload(a.data, std::vector<float>(n, static_cast<float>(rank() + 1)));
  braid::testing::StreamGate gate;
  for (int round = 0; round < 2; ++round) {
    braid_handle_t h;
    ASSERT_EQ(braid_allreduce_async("gpu.later", &a.desc, a.data, BRAID_AVERAGE, 1, 1, &h),
              BRAID_OK);
    if (round == 1) ASSERT_EQ(gate.Hold(producer), cudaSuccess);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!braid_poll(h) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const bool finished_while_held = braid_poll(h) != 0;
    gate.Open();
    EXPECT_TRUE(finished_while_held) << "round " << round << ": the allreduce waited for work "
                                     << "queued on the producer stream after the call";
    ASSERT_EQ(Wait(h), BRAID_OK);
    ASSERT_EQ(cudaStreamSynchronize(producer), cudaSuccess);
    const std::vector<float> got = Download<float>(a.data, n);
    const float want = (size() + 1) / 2.0f;
    EXPECT_NEAR(got[0], want, 1e-5) << "round " << round;
    EXPECT_NEAR(got[n - 1], want, 1e-5) << "round " << round;
  }
  cudaStreamDestroy(producer);
}

TEST_F(EngineGpu, HostOnOneRankAndGpuOnAnotherIsAMismatchEverywhere) {
  if (size() < 2) GTEST_SKIP() << "needs two ranks";
  const int64_t n = 4;
  std::vector<int64_t> shape{n};
  std::vector<float> host(n, 1);
  void* data = nullptr;
  ASSERT_EQ(cudaMalloc(&data, n * 4), cudaSuccess);
  braid_tensor_t t = rank() == 0 ? braid_tensor_t{host.data(),  BRAID_FLOAT32,    1,
                                                  shape.data(), BRAID_DEVICE_CPU, nullptr}
                                 : braid_tensor_t{data, BRAID_FLOAT32, 1, shape.data(), 0, nullptr};
  braid_handle_t h;
  ASSERT_EQ(braid_allreduce_async("gpu.mixed", &t, const_cast<void*>(t.data), BRAID_SUM, 1, 1, &h),
            BRAID_OK);
  EXPECT_NE(braid_wait(h), BRAID_OK);
  EXPECT_NE(std::string(braid_handle_error(h)).find("Mismatched devices"), std::string::npos)
      << braid_handle_error(h);
  braid_handle_free(h);
  cudaFree(data);
}

}  // namespace
