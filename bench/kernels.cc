// --kernels (kernels.h): braid's batched copy kernels against cudaMemcpyAsync.
#include "kernels.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <random>

#include "buffer.h"
#include "collectives/cpu/reduce.h"
#include "collectives/cuda/batched_copy.h"
#include "common/types.h"
#include "cuda_check.h"

namespace bench {
namespace {

using braid::DataType;
using braid::cuda::BatchedCopier;
using braid::cuda::CopyEntry;
using braid::cuda::Scaling;

struct Shape {
  int64_t tensors;
  int64_t bytes;  // per tensor
};

std::vector<Shape> Shapes(const Options& o) {
  if (o.kernel_count > 0 || o.kernel_bytes > 0) {
    return {{o.kernel_count > 0 ? o.kernel_count : 200,
             o.kernel_bytes > 0 ? o.kernel_bytes : int64_t{256} << 10}};
  }
  return {{200, int64_t{256} << 10}, {20, int64_t{16} << 20}, {1000, 4 << 10}, {5000, 1 << 10}};
}

// Random finite values of the dtype (an all-ones float exponent loses its top bit).
void FillRandom(std::vector<uint8_t>* bytes, DataType dtype, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (auto& b : *bytes) b = static_cast<uint8_t>(rng());
  const size_t size = braid::DataTypeSize(dtype);
  const uint64_t exp = dtype == DataType::kFloat16    ? 0x7c00u
                       : dtype == DataType::kBFloat16 ? 0x7f80u
                       : dtype == DataType::kFloat32  ? 0x7f800000u
                       : dtype == DataType::kFloat64  ? 0x7ff0000000000000ull
                                                      : 0;
  if (exp == 0) return;
  for (size_t at = 0; at + size <= bytes->size(); at += size) {
    uint64_t v = 0;
    std::memcpy(&v, bytes->data() + at, size);
    if ((v & exp) == exp) v &= ~(uint64_t{1} << (63 - __builtin_clzll(exp)));
    std::memcpy(bytes->data() + at, &v, size);
  }
}

// One shape's buffers: the tensors at 256-byte aligned offsets of one allocation,
// the fusion buffer back to back, the copy entries each way and the initial contents.
struct Batch {
  Batch(Memory& memory, Shape shape, DataType dtype)
      : memory(memory),
        shape(shape),
        dtype(dtype),
        stride((shape.bytes + 255) / 256 * 256),
        tensors(memory, static_cast<size_t>(shape.tensors * stride)),
        fusion(memory, static_cast<size_t>(shape.tensors * shape.bytes)),
        host_tensors(tensors.bytes()),
        host_fusion(fusion.bytes()) {
    const int64_t count = shape.bytes / static_cast<int64_t>(braid::DataTypeSize(dtype));
    for (int64_t i = 0; i < shape.tensors; ++i) {
      char* t = tensors.data() + i * stride;
      char* f = fusion.data() + i * shape.bytes;
      pack.push_back({t, f, count});
      unpack.push_back({f, t, count});
    }
    FillRandom(&host_tensors, dtype, 1);
    FillRandom(&host_fusion, dtype, 2);
  }
  void Reset() const {
    memory.Upload(tensors.data(), host_tensors.data(), host_tensors.size());
    memory.Upload(fusion.data(), host_fusion.data(), host_fusion.size());
  }
  int64_t total() const { return shape.tensors * shape.bytes; }

  Memory& memory;
  Shape shape;
  DataType dtype;
  int64_t stride;  // bytes between tensors
  Buffer tensors;
  Buffer fusion;
  std::vector<uint8_t> host_tensors, host_fusion;
  std::vector<CopyEntry> pack, unpack;
};

// Elements of the op's destination that differ from the host path on the same input.
int64_t CountWrong(const Batch& b, bool pack, const Scaling& sc) {
  const size_t size = braid::DataTypeSize(b.dtype);
  std::vector<uint8_t> want = pack ? b.host_fusion : b.host_tensors;
  const std::vector<uint8_t>& in = pack ? b.host_tensors : b.host_fusion;
  const char* in_base = pack ? b.tensors.data() : b.fusion.data();
  const char* out_base = pack ? b.fusion.data() : b.tensors.data();
  for (const CopyEntry& e : pack ? b.pack : b.unpack) {
    uint8_t* out = want.data() + (static_cast<const char*>(e.dst) - out_base);
    const uint8_t* src = in.data() + (static_cast<const char*>(e.src) - in_base);
    braid::cpu::ScaleCopy(out, src, e.count, b.dtype, sc.factor, sc.divisor);
  }
  std::vector<uint8_t> got(want.size());
  b.memory.Download(got.data(), out_base, got.size());
  int64_t wrong = 0;
  for (size_t at = 0; at < got.size(); at += size) {
    wrong += std::memcmp(&got[at], &want[at], size) != 0;
  }
  return wrong;
}

class Timer {
 public:
  Timer(const Options& o, cudaStream_t stream)
      : stream_(stream), warmup_(o.warmup), iters_(KernelIters(o)), rounds_(o.rounds) {
    BENCH_CUDA(cudaEventCreate(&start_));
    BENCH_CUDA(cudaEventCreate(&stop_));
  }
  ~Timer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Microseconds per call of `op` (which enqueues on the stream): the median round.
  double Us(const std::function<void()>& op) const {
    for (int i = 0; i < warmup_; ++i) op();
    std::vector<double> rounds;
    for (int r = 0; r < rounds_; ++r) {
      BENCH_CUDA(cudaEventRecord(start_, stream_));
      for (int i = 0; i < iters_; ++i) op();
      BENCH_CUDA(cudaEventRecord(stop_, stream_));
      BENCH_CUDA(cudaEventSynchronize(stop_));
      float ms = 0;
      BENCH_CUDA(cudaEventElapsedTime(&ms, start_, stop_));
      rounds.push_back(1000.0 * ms / iters_);
    }
    std::sort(rounds.begin(), rounds.end());
    const size_t n = rounds.size();
    return n % 2 == 1 ? rounds[n / 2] : 0.5 * (rounds[n / 2 - 1] + rounds[n / 2]);
  }
  int iters() const { return iters_; }

 private:
  cudaStream_t stream_;
  int warmup_, iters_, rounds_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

void Copy(const BatchedCopier& copier, const std::vector<CopyEntry>& entries, DataType dtype,
          const Scaling& scaling, cudaStream_t stream) {
  const braid::Status st = copier.Copy(entries, dtype, scaling, stream);
  if (!st.ok()) DeviceFailure("BatchedCopier::Copy failed: " + st.ToString(), __FILE__, __LINE__);
}

void RunShape(const BatchedCopier& copier, const Timer& timer, Batch& b, cudaStream_t stream,
              std::vector<KernelRow>* rows) {
  auto add = [&](const char* op, double us, int64_t wrong, double reference_us) {
    KernelRow row{b.shape.tensors,      b.shape.bytes,     op,   us,
                  b.total() / us / 1e3, reference_us / us, wrong};
    rows->push_back(row);
    PrintKernelRow(row);
  };
  const double ref = timer.Us([&] {
    BENCH_CUDA(cudaMemcpyAsync(b.fusion.data(), b.tensors.data(), b.total(),
                               cudaMemcpyDeviceToDevice, stream));
  });
  add("memcpy", ref, 0, ref);
  const bool integer = !braid::IsFloatingPoint(b.dtype);
  const struct {
    const char* name;
    bool pack;
    Scaling scaling;
  } ops[] = {{"pack", true, {1.0, 1}},
             {"pack x0.5", true, {0.5, 1}},
             {"unpack", false, {1.0, 1}},
             {"unpack /3", false, integer ? Scaling{1.0, 3} : Scaling{1.0 / 3.0, 1}}};
  for (const auto& op : ops) {
    const std::vector<CopyEntry>& entries = op.pack ? b.pack : b.unpack;
    b.Reset();
    Copy(copier, entries, b.dtype, op.scaling, stream);
    BENCH_CUDA(cudaStreamSynchronize(stream));
    const int64_t wrong = CountWrong(b, op.pack, op.scaling);
    add(op.name, timer.Us([&] { Copy(copier, entries, b.dtype, op.scaling, stream); }), wrong, ref);
  }
  const double separate = timer.Us([&] {
    for (const CopyEntry& e : b.pack) {
      BENCH_CUDA(cudaMemcpyAsync(e.dst, e.src, b.shape.bytes, cudaMemcpyDeviceToDevice, stream));
    }
  });
  add("N x memcpy", separate, 0, ref);
}

}  // namespace

bool RunKernels(const Options& options, Memory& memory, std::vector<KernelRow>* rows,
                std::string* error) {
  std::unique_ptr<BatchedCopier> copier;
  const braid::Status st = BatchedCopier::Create(memory.device(), &copier);
  if (!st.ok()) {
    *error = "the batched copy kernels cannot run on GPU " + std::to_string(memory.device()) +
             ": " + st.ToString();
    return false;
  }
  const auto stream = static_cast<cudaStream_t>(memory.stream());
  const DataType dtype = static_cast<DataType>(options.dtype->braid);
  const Timer timer(options, stream);
  for (const Shape& shape : Shapes(options)) {
    Batch batch(memory, shape, dtype);
    RunShape(*copier, timer, batch, stream, rows);
  }
  BENCH_CUDA(cudaStreamSynchronize(stream));
  return true;
}

}  // namespace bench
