// DGC's threshold selection (selection.h, ThresholdTopK). The rounds are driven
// from the host for both memories: the threshold is a magnitude key (magnitude.h),
// scaled here in double precision and rounded up to a key of the value dtype, so
// that the host and a GPU count against the same threshold in every round.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "common/half.h"
#include "ops/compress/dtype_dispatch.h"
#include "ops/compress/host_kernels.h"
#include "ops/compress/selection.h"
#include "ops/compress/validate.h"

namespace braid::compress {
namespace {

constexpr double kRaise = 1.3;  // DGC: more than 1.3 k selected -> t * 1.3
constexpr double kLower = 0.8;  // fewer than k selected -> t * 0.8

// The magnitude of a number's key (an inf or NaN key is not asked for).
template <typename K>
double Magnitude(typename K::Bits key) {
  if constexpr (sizeof(typename K::Bits) == 8) {
    double d;
    std::memcpy(&d, &key, sizeof d);
    return d;
  } else if constexpr (sizeof(typename K::Bits) == 4) {
    float f;
    std::memcpy(&f, &key, sizeof f);
    return f;
  } else if constexpr (K::kInf == HalfKey::kInf) {
    return HalfToFloat(key);
  } else {
    return BFloat16ToFloat(key);
  }
}

// The smallest key whose magnitude is >= v (v >= 0; above the largest finite
// magnitude: inf's key). Keys are ordered like magnitudes, so a key near v is
// moved by one key at a time until it is the smallest one that reaches v.
template <typename K>
typename K::Bits CeilKey(double v) {
  using Bits = typename K::Bits;
  if (!(v < std::numeric_limits<double>::infinity())) return K::kInf;
  Bits key = 0;
  if constexpr (sizeof(Bits) == 8) {
    std::memcpy(&key, &v, sizeof key);
    return key;
  } else if constexpr (sizeof(Bits) == 4) {
    const float f = static_cast<float>(v);
    std::memcpy(&key, &f, sizeof key);
  } else if constexpr (K::kInf == HalfKey::kInf) {
    key = FloatToHalf(static_cast<float>(v));
  } else {
    key = FloatToBFloat16(static_cast<float>(v));
  }
  key = static_cast<Bits>(std::min<Bits>(key & K::kAbsMask, K::kInf));
  while (key < K::kInf && Magnitude<K>(key) < v) ++key;
  while (key > 0 && Magnitude<K>(static_cast<Bits>(key - 1)) >= v) --key;
  return key;
}

// The next threshold key: raised (x1.3) or lowered (x0.8). Past the numbers, a
// raise goes from inf to NaN and a lowering from NaN to inf to the largest finite
// magnitude; 0 stays 0.
template <typename K>
uint64_t Scale(uint64_t key64, bool raise) {
  using Bits = typename K::Bits;
  const auto key = static_cast<Bits>(key64);
  if (key >= K::kInf) {
    if (raise) return NanKey<K>();
    return static_cast<Bits>(key - 1);
  }
  const Bits next = CeilKey<K>(Magnitude<K>(key) * (raise ? kRaise : kLower));
  return raise ? std::max(next, key) : std::min(next, key);
}

double ReportedThreshold(uint64_t key, DataType dtype) {
  return WithKeyTraits(dtype, [&](auto traits) {
    using K = decltype(traits);
    if (key > K::kInf) return std::numeric_limits<double>::quiet_NaN();
    if (key == K::kInf) return std::numeric_limits<double>::infinity();
    return Magnitude<K>(static_cast<typename K::Bits>(key));
  });
}

// The sample's top-ks threshold: ks = ceil(k m / n) of m sampled keys.
uint64_t SampleThreshold(std::vector<uint64_t> keys, int64_t k, int64_t n) {
  const auto m = static_cast<int64_t>(keys.size());
  const auto ks = static_cast<int64_t>((static_cast<__int128>(k) * m + n - 1) / n);
  const int64_t rank = std::clamp<int64_t>(ks, 1, m);
  std::nth_element(keys.begin(), keys.begin() + (rank - 1), keys.end(), std::greater<uint64_t>());
  return keys[rank - 1];
}

// DGC's adaptation: raise while more than 1.3 k pass, lower while fewer than k do,
// at most max_rounds counts. An overshoot right after an undershoot is kept: the
// trim makes it exact, while raising again would undershoot again.
Status AdaptThreshold(const std::function<Status(uint64_t, int64_t*)>& count, DataType dtype,
                      int64_t k, int max_rounds, uint64_t* threshold, int64_t* passing,
                      int* rounds) {
  const auto scale = [dtype](uint64_t key, bool raise) {
    return WithKeyTraits(dtype, [&](auto traits) { return Scale<decltype(traits)>(key, raise); });
  };
  bool undershot = false;
  for (int round = 1; round <= max_rounds; ++round) {
    BRAID_RETURN_IF_ERROR(count(*threshold, passing));
    *rounds = round;
    const bool over = static_cast<double>(*passing) > kRaise * static_cast<double>(k);
    if (*passing >= k && (!over || undershot)) break;
    if (round == max_rounds) break;
    undershot = *passing < k;
    const uint64_t next = scale(*threshold, /*raise=*/!undershot);
    if (next == *threshold) break;  // 0 or NaN: nothing left to move
    *threshold = next;
  }
  return Status::OK();
}

Status CheckThresholdOptions(const ThresholdOptions& o) {
  if (!(o.sample_fraction > 0.0 && o.sample_fraction <= 1.0)) {
    return InvalidArgument(
        "compress 'threshold topk': the sample fraction must be in (0, 1], not " +
        std::to_string(o.sample_fraction));
  }
  if (o.max_rounds < 1) {
    return InvalidArgument("compress 'threshold topk': max_rounds must be at least 1");
  }
  return Status::OK();
}

}  // namespace

Status ThresholdTopK(const BufferView& x, int64_t k, const BufferView& indices,
                     const BufferView& values, const ThresholdOptions& options,
                     ThresholdResult* result) {
  const char* op = "threshold topk";
  BRAID_RETURN_IF_ERROR(CheckValues(op, x));
  BRAID_RETURN_IF_ERROR(CheckK(op, x, k));
  BRAID_RETURN_IF_ERROR(CheckOutputs(op, x, indices, values, k));
  BRAID_RETURN_IF_ERROR(CheckThresholdOptions(options));
  const CompressDeviceKernels* kernels = nullptr;
  BRAID_RETURN_IF_ERROR(KernelsFor(op, x, &kernels));
  *result = ThresholdResult{};
  if (k == 0) return Status::OK();
  const DeviceValues xv = ValuesOf(x);
  const DeviceSelectionOut out = OutputOf(indices, values);
  const int threads = options.num_threads;
  if (k == x.count) {
    result->selected = result->candidates = k;
    result->threshold = 0.0;
    if (kernels == nullptr) return host::TopK(xv, k, out, threads);
    return kernels->topk(x.device, xv, k, out, x.stream);
  }
  const double wanted = std::ceil(options.sample_fraction * static_cast<double>(x.count));
  const auto m = static_cast<int64_t>(std::clamp(wanted, 1.0, static_cast<double>(x.count)));
  std::vector<uint64_t> sample(static_cast<size_t>(m));
  if (kernels == nullptr) {
    host::SampleKeys(xv, options.seed, m, sample.data());
  } else {
    BRAID_RETURN_IF_ERROR(
        kernels->sample_keys(x.device, xv, options.seed, m, sample.data(), x.stream));
  }
  uint64_t threshold = SampleThreshold(std::move(sample), k, x.count);
  auto count = [&](uint64_t t, int64_t* c) {
    if (kernels != nullptr) return kernels->count_at_least(x.device, xv, t, c, x.stream);
    *c = host::CountAtLeast(xv, t, threads);
    return Status::OK();
  };
  int64_t passing = 0;
  BRAID_RETURN_IF_ERROR(
      AdaptThreshold(count, x.dtype, k, options.max_rounds, &threshold, &passing, &result->rounds));
  result->candidates = passing;
  result->selected = std::min(k, passing);
  result->threshold = ReportedThreshold(threshold, x.dtype);
  if (passing == 0) return Status::OK();
  if (kernels == nullptr) return host::SelectAtLeast(xv, threshold, passing, k, out, threads);
  return kernels->select_at_least(x.device, xv, threshold, passing, k, out, x.stream);
}

}  // namespace braid::compress
