// Random-k (selection.h): the indices depend on (n, k, seed) only, so every rank
// draws the same ones without communicating. Floyd's algorithm draws k distinct
// indices with k random integers; a bitmap of n bits records them, and reading the
// bitmap in order gives them ascending without a sort: O(k + n / 64) work and n / 8
// bytes. Integer arithmetic only, so every machine and compiler agrees.
#include <cstring>
#include <string>
#include <vector>

#include "ops/compress/host_kernels.h"
#include "ops/compress/magnitude.h"
#include "ops/compress/selection.h"
#include "ops/compress/validate.h"

namespace braid::compress {
namespace {

// A stream of its own, apart from the threshold estimate's sample positions.
constexpr uint64_t kRandomKStream = 0x72616e646f6d6bull;

// A uniform integer in [0, bound) (bound >= 1) from the stream: Lemire's
// multiply-and-shift with rejection, so no modulo bias.
uint64_t UniformBelow(uint64_t seed, uint64_t* counter, uint64_t bound) {
  for (;;) {
    const uint64_t draw = HashDraw(seed, (*counter)++);
    const auto product = static_cast<unsigned __int128>(draw) * bound;
    const auto low = static_cast<uint64_t>(product);
    if (low >= bound || low >= (0 - bound) % bound) return static_cast<uint64_t>(product >> 64);
  }
}

template <typename Index>
void ReadBitmap(const std::vector<uint64_t>& bits, Index* out) {
  int64_t pos = 0;
  for (size_t w = 0; w < bits.size(); ++w) {
    for (uint64_t word = bits[w]; word != 0; word &= word - 1) {
      out[pos++] = static_cast<Index>(w * 64 + __builtin_ctzll(word));
    }
  }
}

}  // namespace

Status RandomKIndices(int64_t n, int64_t k, uint64_t seed, DataType index_dtype, void* indices) {
  if (n < 0 || k < 0 || k > n) {
    return InvalidArgument("compress 'random k': k = " + std::to_string(k) + " outside [0, " +
                           std::to_string(n) + "]");
  }
  if (k == 0) return Status::OK();
  std::vector<uint64_t> bits(static_cast<size_t>((n + 63) / 64), 0);
  const uint64_t stream = Mix64(seed ^ kRandomKStream);
  uint64_t counter = 0;
  // Floyd: for j = n-k .. n-1 pick t in [0, j]; take t, or j when t is taken.
  for (int64_t j = n - k; j < n; ++j) {
    const auto t =
        static_cast<int64_t>(UniformBelow(stream, &counter, static_cast<uint64_t>(j) + 1));
    const int64_t pick = (bits[t >> 6] >> (t & 63)) & 1 ? j : t;
    bits[pick >> 6] |= uint64_t{1} << (pick & 63);
  }
  if (index_dtype == DataType::kInt64) {
    ReadBitmap(bits, static_cast<int64_t*>(indices));
  } else {
    ReadBitmap(bits, static_cast<int32_t*>(indices));
  }
  return Status::OK();
}

Status RandomK(const BufferView& x, int64_t k, uint64_t seed, const BufferView& indices,
               const BufferView& values) {
  const char* op = "random k";
  BRAID_RETURN_IF_ERROR(CheckValues(op, x));
  BRAID_RETURN_IF_ERROR(CheckK(op, x, k));
  BRAID_RETURN_IF_ERROR(CheckOutputs(op, x, indices, values, k));
  const CompressDeviceKernels* kernels = nullptr;
  BRAID_RETURN_IF_ERROR(KernelsFor(op, x, &kernels));
  if (k == 0) return Status::OK();
  if (kernels == nullptr) {
    BRAID_RETURN_IF_ERROR(RandomKIndices(x.count, k, seed, indices.dtype, indices.data));
    if (values.data != nullptr) {
      host::Gather(ValuesOf(x), indices.data, indices.dtype, k, values.data);
    }
    return Status::OK();
  }
  std::vector<char> host(static_cast<size_t>(k) * DataTypeSize(indices.dtype));
  BRAID_RETURN_IF_ERROR(RandomKIndices(x.count, k, seed, indices.dtype, host.data()));
  BRAID_RETURN_IF_ERROR(kernels->copy_from_host(x.device, indices.data, host.data(),
                                                static_cast<int64_t>(host.size()), x.stream));
  if (values.data == nullptr) return Status::OK();
  return kernels->gather(x.device, ValuesOf(x), indices.data, indices.dtype, k, values.data,
                         x.stream);
}

}  // namespace braid::compress
