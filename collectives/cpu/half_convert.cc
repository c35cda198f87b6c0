#include "collectives/cpu/half_convert.h"

#include <cstring>

#include "common/half.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BRAID_HAVE_F16C_PATH 1
#else
#define BRAID_HAVE_F16C_PATH 0
#endif

namespace braid {
namespace cpu {
namespace {

void HalfToFloatScalar(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = HalfToFloat(in[i]);
}

void FloatToHalfScalar(const float* in, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = FloatToHalf(in[i]);
}

#if BRAID_HAVE_F16C_PATH
// Compiled for F16C regardless of the build's -march; only called after the
// run-time check below.
__attribute__((target("avx,f16c"))) void HalfToFloatF16c(const uint16_t* in, float* out,
                                                         int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) out[i] = HalfToFloat(in[i]);
}

__attribute__((target("avx,f16c"))) void FloatToHalfF16c(const float* in, uint16_t* out,
                                                         int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
  for (; i < n; ++i) out[i] = FloatToHalf(in[i]);
}

bool CpuHasF16c() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
}
#endif

// bfloat16 is the top half of a float32, so both directions are plain integer
// arithmetic; written without branches so the loops vectorise. Same results as
// BFloat16ToFloat / FloatToBFloat16 in common/half.h.
void BFloat16ToFloatBlock(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits = static_cast<uint32_t>(in[i]) << 16;
    std::memcpy(out + i, &bits, sizeof bits);
  }
}

void FloatToBFloat16Block(const float* in, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, in + i, sizeof bits);
    const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
    const uint32_t quiet_nan = (bits >> 16) | 0x40u;
    const bool is_nan = (bits & 0x7fffffffu) > 0x7f800000u;
    out[i] = static_cast<uint16_t>(is_nan ? quiet_nan : rounded);
  }
}

HalfCodec PickFloat16Codec() {
#if BRAID_HAVE_F16C_PATH
  if (CpuHasF16c()) return HalfCodec{&HalfToFloatF16c, &FloatToHalfF16c};
#endif
  return HalfCodec{&HalfToFloatScalar, &FloatToHalfScalar};
}

}  // namespace

const HalfCodec& Float16Codec() {
  static const HalfCodec codec = PickFloat16Codec();
  return codec;
}

const HalfCodec& BFloat16Codec() {
  static const HalfCodec codec{&BFloat16ToFloatBlock, &FloatToBFloat16Block};
  return codec;
}

}  // namespace cpu
}  // namespace braid
