// braid-kernel-bench: the batched pack/unpack kernels (collectives/cuda/batched_copy.h)
// against one cudaMemcpyAsync device-to-device of the same total bytes, on one GPU.
//
//   braid-kernel-bench [-n ITERS] [-t DTYPE] [-s COUNTxBYTES ...]
//
// For each batch shape (COUNT tensors of BYTES each; default 200x256K, 1000x4K,
// 20x16M, 1x64M, 5000x1K) it times: memcpy (the reference), pack (tensors ->
// consecutive offsets of a fusion buffer), pack x0.5 (prescale fused), unpack
// (fusion buffer -> tensors), unpack /3 (an average: factor 1/3 for floating types,
// integer division by 3 otherwise), and N x memcpy (one cudaMemcpyAsync per tensor,
// what the kernel replaces). Each time is the median over 5 rounds of ITERS calls
// between two cudaEvents on one stream; GB/s counts the bytes copied once (not
// read + write); ratio is the reference time over the op's time. Every op's output
// is checked once against the host path (cpu::ScaleCopy / cpu::DivideBy): #wrong
// counts differing elements and any makes the exit code 1.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "collectives/cpu/reduce.h"
#include "collectives/cuda/batched_copy.h"
#include "common/types.h"

namespace {

using braid::DataType;
using braid::cuda::BatchedCopier;
using braid::cuda::CopyEntry;
using braid::cuda::Scaling;

#define BENCH_CHECK(call)                                                                   \
  do {                                                                                      \
    cudaError_t rc_ = (call);                                                               \
    if (rc_ != cudaSuccess) {                                                               \
      std::fprintf(stderr, "braid-kernel-bench: %s: %s\n", #call, cudaGetErrorString(rc_)); \
      std::exit(2);                                                                         \
    }                                                                                       \
  } while (0)

struct Shape {
  int64_t count;  // tensors
  int64_t bytes;  // per tensor
};

struct Options {
  int iters = 20;
  DataType dtype = DataType::kFloat32;
  std::vector<Shape> shapes;
};

int64_t ParseBytes(const std::string& s) {
  char* end = nullptr;
  int64_t v = std::strtoll(s.c_str(), &end, 10);
  if (*end == 'K') v <<= 10;
  if (*end == 'M') v <<= 20;
  if (*end == 'G') v <<= 30;
  return v;
}

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return false;
    const std::string v = argv[++i];
    if (a == "-n") {
      o->iters = std::max(1, std::atoi(v.c_str()));
    } else if (a == "-t") {
      bool found = false;
      for (int t = 0; t < braid::kNumDataTypes; ++t) {
        if (v == braid::DataTypeName(static_cast<DataType>(t))) {
          o->dtype = static_cast<DataType>(t);
          found = true;
        }
      }
      if (!found) return false;
    } else if (a == "-s" && v.find('x') != std::string::npos) {
      o->shapes.push_back({std::atoll(v.c_str()), ParseBytes(v.substr(v.find('x') + 1))});
    } else {
      return false;
    }
  }
  if (o->shapes.empty())
    o->shapes = {{200, 256 << 10}, {1000, 4 << 10}, {20, 16 << 20}, {1, 64 << 20}, {5000, 1 << 10}};
  return true;
}

// Random finite values of the dtype (an all-ones float exponent loses its top bit).
void FillRandom(std::vector<uint8_t>* bytes, DataType dtype, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (auto& b : *bytes) b = static_cast<uint8_t>(rng());
  const size_t size = braid::DataTypeSize(dtype);
  uint64_t exp = dtype == DataType::kFloat16    ? 0x7c00u
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

// Tensors live at 256-byte aligned offsets of one allocation (as separate
// allocations would); the fusion buffer holds them back to back.
struct Setup {
  Shape shape{};
  DataType dtype = DataType::kFloat32;
  int64_t stride = 0;  // bytes between tensors
  char* tensors = nullptr;
  char* fusion = nullptr;
  std::vector<CopyEntry> pack, unpack;
  std::vector<uint8_t> host_tensors, host_fusion;  // initial contents
};

void Build(Setup* s) {
  const int64_t size = static_cast<int64_t>(braid::DataTypeSize(s->dtype));
  s->stride = (s->shape.bytes + 255) / 256 * 256;
  const int64_t total = s->shape.count * s->shape.bytes;
  void* tensors = nullptr;
  void* fusion = nullptr;
  BENCH_CHECK(cudaMalloc(&tensors, s->shape.count * s->stride));
  BENCH_CHECK(cudaMalloc(&fusion, total));
  s->tensors = static_cast<char*>(tensors);
  s->fusion = static_cast<char*>(fusion);
  for (int64_t i = 0; i < s->shape.count; ++i) {
    char* t = s->tensors + i * s->stride;
    char* f = s->fusion + i * s->shape.bytes;
    s->pack.push_back({t, f, s->shape.bytes / size});
    s->unpack.push_back({f, t, s->shape.bytes / size});
  }
  s->host_tensors.resize(s->shape.count * s->stride);
  s->host_fusion.resize(total);
  FillRandom(&s->host_tensors, s->dtype, 1);
  FillRandom(&s->host_fusion, s->dtype, 2);
}

void Reset(const Setup& s) {
  BENCH_CHECK(
      cudaMemcpy(s.tensors, s.host_tensors.data(), s.host_tensors.size(), cudaMemcpyHostToDevice));
  BENCH_CHECK(
      cudaMemcpy(s.fusion, s.host_fusion.data(), s.host_fusion.size(), cudaMemcpyHostToDevice));
}

// Elements of the op's destination that differ from the host path on the same input.
int64_t CountWrong(const Setup& s, bool pack, const Scaling& sc) {
  const size_t size = braid::DataTypeSize(s.dtype);
  std::vector<uint8_t> want = pack ? s.host_fusion : s.host_tensors;
  const std::vector<uint8_t>& in = pack ? s.host_tensors : s.host_fusion;
  const auto& entries = pack ? s.pack : s.unpack;
  const char* in_base = pack ? s.tensors : s.fusion;
  const char* out_base = pack ? s.fusion : s.tensors;
  for (const CopyEntry& e : entries) {
    uint8_t* out = want.data() + (static_cast<const char*>(e.dst) - out_base);
    const uint8_t* src = in.data() + (static_cast<const char*>(e.src) - in_base);
    braid::cpu::ScaleCopy(out, src, e.count, s.dtype, sc.factor);
    if (sc.divisor > 1) braid::cpu::DivideBy(out, e.count, s.dtype, sc.divisor);
  }
  std::vector<uint8_t> got(want.size());
  BENCH_CHECK(cudaMemcpy(got.data(), out_base, got.size(), cudaMemcpyDeviceToHost));
  int64_t wrong = 0;
  for (size_t at = 0; at < got.size(); at += size)
    wrong += std::memcmp(&got[at], &want[at], size) != 0;
  return wrong;
}

// Median over 5 rounds of the per-call time in microseconds.
double TimeUs(cudaStream_t stream, int iters, const std::function<void()>& op) {
  cudaEvent_t start, stop;
  BENCH_CHECK(cudaEventCreate(&start));
  BENCH_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < 3; ++i) op();
  std::vector<double> rounds;
  for (int r = 0; r < 5; ++r) {
    BENCH_CHECK(cudaEventRecord(start, stream));
    for (int i = 0; i < iters; ++i) op();
    BENCH_CHECK(cudaEventRecord(stop, stream));
    BENCH_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    BENCH_CHECK(cudaEventElapsedTime(&ms, start, stop));
    rounds.push_back(1000.0 * ms / iters);
  }
  BENCH_CHECK(cudaEventDestroy(start));
  BENCH_CHECK(cudaEventDestroy(stop));
  std::sort(rounds.begin(), rounds.end());
  return rounds[2];
}

void Copy(const BatchedCopier& c, const std::vector<CopyEntry>& e, DataType t, const Scaling& s,
          cudaStream_t stream) {
  braid::Status st = c.Copy(e, t, s, stream);
  if (!st.ok()) {
    std::fprintf(stderr, "braid-kernel-bench: %s\n", st.ToString().c_str());
    std::exit(2);
  }
}

// Prints the shape's rows; returns the number of wrong elements.
int64_t RunShape(const BatchedCopier& copier, const Options& o, Shape shape, cudaStream_t stream) {
  Setup s;
  s.shape = shape;
  s.dtype = o.dtype;
  Build(&s);
  const int64_t total = shape.count * shape.bytes;
  const bool integer = !braid::IsFloatingPoint(o.dtype);
  const Scaling average = integer ? Scaling{1.0, 3} : Scaling{1.0 / 3.0, 1};
  const double ref = TimeUs(stream, o.iters, [&] {
    BENCH_CHECK(cudaMemcpyAsync(s.fusion, s.tensors, total, cudaMemcpyDeviceToDevice, stream));
  });
  char label[64];
  std::snprintf(label, sizeof label, "%lldx%lldB", static_cast<long long>(shape.count),
                static_cast<long long>(shape.bytes));
  auto row = [&](const char* op, double us, int64_t wrong) {
    std::printf("%-16s %-12s %10.1f %9.1f %7.2f %7lld\n", label, op, us, total / us / 1e3, ref / us,
                static_cast<long long>(wrong));
  };
  row("memcpy", ref, 0);
  int64_t all_wrong = 0;
  const struct {
    const char* name;
    bool pack;
    Scaling scaling;
  } ops[] = {{"pack", true, {1.0, 1}},
             {"pack x0.5", true, {0.5, 1}},
             {"unpack", false, {1.0, 1}},
             {"unpack /3", false, average}};
  for (const auto& op : ops) {
    const auto& entries = op.pack ? s.pack : s.unpack;
    Reset(s);
    Copy(copier, entries, o.dtype, op.scaling, stream);
    BENCH_CHECK(cudaStreamSynchronize(stream));
    const int64_t wrong = CountWrong(s, op.pack, op.scaling);
    all_wrong += wrong;
    row(op.name,
        TimeUs(stream, o.iters, [&] { Copy(copier, entries, o.dtype, op.scaling, stream); }),
        wrong);
  }
  row("N x memcpy",
      TimeUs(stream, o.iters,
             [&] {
               for (const CopyEntry& e : s.pack) {
                 BENCH_CHECK(
                     cudaMemcpyAsync(e.dst, e.src, shape.bytes, cudaMemcpyDeviceToDevice, stream));
               }
             }),
      0);
  BENCH_CHECK(cudaFree(s.tensors));
  BENCH_CHECK(cudaFree(s.fusion));
  return all_wrong;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) {
    std::fprintf(stderr,
                 "usage: braid-kernel-bench [-n ITERS] [-t DTYPE] [-s COUNTxBYTES]...\n"
                 "  DTYPE: uint8 int8 int32 int64 float16 bfloat16 float32 float64\n"
                 "  BYTES: a number with an optional K, M or G suffix\n");
    return 2;
  }
  std::unique_ptr<BatchedCopier> copier;
  braid::Status st = BatchedCopier::Create(0, &copier);
  if (!st.ok()) {
    std::fprintf(stderr, "braid-kernel-bench: %s\n", st.ToString().c_str());
    return 2;
  }
  cudaDeviceProp prop{};
  BENCH_CHECK(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t stream;
  BENCH_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  std::printf("# %s, %s, %d iterations per round, median of 5 rounds\n", prop.name,
              braid::DataTypeName(o.dtype), o.iters);
  std::printf("%-16s %-12s %10s %9s %7s %7s\n", "# shape", "op", "time(us)", "GB/s", "ratio",
              "#wrong");
  int64_t wrong = 0;
  for (const Shape& shape : o.shapes) {
    const int64_t size = static_cast<int64_t>(braid::DataTypeSize(o.dtype));
    if (shape.count <= 0 || shape.bytes <= 0 || shape.bytes % size != 0) {
      std::fprintf(stderr, "braid-kernel-bench: bad shape (bytes must be whole elements)\n");
      return 2;
    }
    wrong += RunShape(*copier, o, shape, stream);
  }
  BENCH_CHECK(cudaStreamDestroy(stream));
  std::printf("# %s\n", wrong == 0 ? "all results match the host path" : "WRONG RESULTS");
  return wrong == 0 ? 0 : 1;
}
