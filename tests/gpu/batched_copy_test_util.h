// Test helpers for BatchedCopier: a fixture with a copier and a stream, a byte
// region with a host mirror, layouts of entries (in elements), and the host
// reference (cpu::ScaleCopy, cpu::DivideBy) applied to the same initial bytes.
#pragma once

#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "collectives/cpu/reduce.h"
#include "collectives/cuda/batched_copy.h"
#include "collectives/cuda/device_memory.h"
#include "common/types.h"

namespace braid::cuda::test {

// A copier on device 0 and a non-blocking stream for it; `Base` is
// ::testing::Test or ::testing::TestWithParam<...>.
template <class Base>
class CopierFixture : public Base {
 protected:
  void SetUp() override {
    Status st = BatchedCopier::Create(0, &copier_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), cudaSuccess);
  }
  void TearDown() override {
    if (stream_ != nullptr) {
      EXPECT_EQ(cudaStreamDestroy(stream_), cudaSuccess);
    }
  }

  std::unique_ptr<BatchedCopier> copier_;
  cudaStream_t stream_ = nullptr;
};

// Random bytes; for floating types every element is made finite (an all-ones
// exponent loses its top bit), since scaled NaN payloads differ by design.
inline void FillRandom(std::vector<uint8_t>* bytes, DataType dtype, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (auto& b : *bytes) b = static_cast<uint8_t>(rng());
  const size_t size = DataTypeSize(dtype);
  uint64_t exponent = 0;  // the exponent field of one element
  if (dtype == DataType::kFloat16) exponent = 0x7c00u;
  if (dtype == DataType::kBFloat16) exponent = 0x7f80u;
  if (dtype == DataType::kFloat32) exponent = 0x7f800000u;
  if (dtype == DataType::kFloat64) exponent = 0x7ff0000000000000ull;
  if (exponent == 0) return;
  const uint64_t top = uint64_t{1} << (63 - __builtin_clzll(exponent));
  for (size_t at = 0; at + size <= bytes->size(); at += size) {
    uint64_t v = 0;
    std::memcpy(&v, bytes->data() + at, size);
    if ((v & exponent) == exponent) v &= ~top;
    std::memcpy(bytes->data() + at, &v, size);
  }
}

// A device buffer with a host mirror of the same bytes.
class Region {
 public:
  static std::unique_ptr<Region> Create(int64_t bytes) {
    std::unique_ptr<DeviceBuffer> device;
    Status st = DeviceBuffer::Create(0, std::max<int64_t>(bytes, 1), &device);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) return nullptr;
    return std::unique_ptr<Region>(new Region(std::move(device), bytes));
  }
  std::vector<uint8_t>& host() { return host_; }
  uint8_t* device(int64_t byte_offset) const {
    return static_cast<uint8_t*>(device_->data()) + byte_offset;
  }
  bool Upload() const {
    return cudaMemcpy(device_->data(), host_.data(), host_.size(), cudaMemcpyHostToDevice) ==
           cudaSuccess;
  }
  bool Download(std::vector<uint8_t>* out) const {
    out->resize(host_.size());
    return cudaMemcpy(out->data(), device_->data(), host_.size(), cudaMemcpyDeviceToHost) ==
           cudaSuccess;
  }

 private:
  Region(std::unique_ptr<DeviceBuffer> device, int64_t bytes)
      : device_(std::move(device)), host_(static_cast<size_t>(bytes)) {}
  std::unique_ptr<DeviceBuffer> device_;
  std::vector<uint8_t> host_;
};

// Entries in elements; src and dst regions of src_elems / dst_elems elements.
struct Placement {
  int64_t src = 0;
  int64_t dst = 0;
  int64_t count = 0;
};

struct Layout {
  std::string name;
  std::vector<Placement> entries;
  int64_t src_elems = 0;
  int64_t dst_elems = 0;
};

// One entry of `count`, src and dst shifted by the given numbers of elements.
inline Layout Single(int64_t count, int64_t src_shift, int64_t dst_shift) {
  Layout l;
  l.name = "count " + std::to_string(count) + " shifted " + std::to_string(src_shift) + "/" +
           std::to_string(dst_shift);
  l.entries.push_back({src_shift, dst_shift, count});
  l.src_elems = count + src_shift + 16;
  l.dst_elems = count + dst_shift + 16;
  return l;
}

inline int64_t RoundUp(int64_t x, int64_t to) {
  return (x + to - 1) / to * to;
}

// Packing: each source starts a 256-byte aligned "allocation"; the destinations
// follow one another, each offset rounded up to pad_bytes (the element size: no
// padding, so most offsets are not 16-byte aligned).
inline Layout Pack(const std::vector<int64_t>& counts, size_t element_size, int64_t pad_bytes,
                   const std::string& name) {
  Layout l;
  l.name = name + " pad " + std::to_string(pad_bytes);
  const int64_t src_align = 256 / static_cast<int64_t>(element_size);
  const int64_t dst_align = std::max<int64_t>(1, pad_bytes / static_cast<int64_t>(element_size));
  for (int64_t count : counts) {
    l.entries.push_back({l.src_elems, l.dst_elems, count});
    l.src_elems = RoundUp(l.src_elems + count, src_align);
    l.dst_elems = RoundUp(l.dst_elems + count, dst_align);
  }
  l.src_elems += 16;
  l.dst_elems += 16;
  return l;
}

// Unpacking: Pack with the roles of src and dst swapped.
inline Layout Unpack(Layout l) {
  for (auto& e : l.entries) std::swap(e.src, e.dst);
  std::swap(l.src_elems, l.dst_elems);
  l.name = "unpack " + l.name;
  return l;
}

// Mixed sizes as a training step's gradients: some empty, mostly small, a few large.
inline std::vector<int64_t> MixedCounts(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> counts;
  for (int i = 0; i < n; ++i) {
    const int kind = static_cast<int>(rng() % 20);
    if (kind < 2)
      counts.push_back(0);
    else if (kind < 14)
      counts.push_back(1 + static_cast<int64_t>(rng() % 2000));
    else if (kind < 19)
      counts.push_back(2000 + static_cast<int64_t>(rng() % 70000));
    else
      counts.push_back(100000 + static_cast<int64_t>(rng() % 200000));
  }
  return counts;
}

// The host data plane on the same bytes: what the device must produce.
inline void Reference(const Layout& l, DataType dtype, const Scaling& s, bool in_place,
                      const std::vector<uint8_t>& src, std::vector<uint8_t>* dst) {
  const int64_t size = static_cast<int64_t>(DataTypeSize(dtype));
  for (const Placement& e : l.entries) {
    uint8_t* out = dst->data() + (in_place ? e.src : e.dst) * size;
    const uint8_t* in = in_place ? out : src.data() + e.src * size;
    cpu::ScaleCopy(out, in, e.count, dtype, s.factor);
    if (s.divisor > 1) cpu::DivideBy(out, e.count, dtype, s.divisor);
  }
}

// The first element where the buffers differ, as a message; empty when equal.
inline std::string FirstDifference(const std::vector<uint8_t>& want,
                                   const std::vector<uint8_t>& got, size_t element_size) {
  if (want.size() != got.size()) return "sizes differ";
  for (size_t at = 0; at < want.size(); at += element_size) {
    const size_t n = std::min(element_size, want.size() - at);
    if (std::memcmp(want.data() + at, got.data() + at, n) == 0) continue;
    uint64_t w = 0, g = 0;
    std::memcpy(&w, want.data() + at, n);
    std::memcpy(&g, got.data() + at, n);
    size_t wrong = 0;
    for (size_t k = 0; k < want.size(); ++k) wrong += want[k] != got[k];
    char bits[64];
    std::snprintf(bits, sizeof bits, "want 0x%llx got 0x%llx", static_cast<unsigned long long>(w),
                  static_cast<unsigned long long>(g));
    return "element " + std::to_string(at / element_size) + ": " + bits + " (" +
           std::to_string(wrong) + " bytes differ in all)";
  }
  return "";
}

}  // namespace braid::cuda::test
