#include "collectives/cpu/half_convert.h"

#include <cstring>

#include "common/half.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "collectives/cpu/bfloat16_avx2.h"
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
__attribute__((always_inline)) inline void BFloat16ToFloatLoop(const uint16_t* in, float* out,
                                                               int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits = static_cast<uint32_t>(in[i]) << 16;
    std::memcpy(out + i, &bits, sizeof bits);
  }
}

__attribute__((always_inline)) inline void FloatToBFloat16Loop(const float* in, uint16_t* out,
                                                               int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, in + i, sizeof bits);
    const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
    const uint32_t quiet_nan = (bits >> 16) | 0x40u;
    const bool is_nan = (bits & 0x7fffffffu) > 0x7f800000u;
    out[i] = static_cast<uint16_t>(is_nan ? quiet_nan : rounded);
  }
}

void BFloat16ToFloatBlock(const uint16_t* in, float* out, int64_t n) {
  BFloat16ToFloatLoop(in, out, n);
}

void FloatToBFloat16Block(const float* in, uint16_t* out, int64_t n) {
  FloatToBFloat16Loop(in, out, n);
}

#if BRAID_HAVE_F16C_PATH
// AVX2 versions: with SSE2 alone the compiler has no unsigned 32-to-16-bit pack,
// which makes the narrowing loop several times slower than the widening one.
__attribute__((target("avx2"))) void BFloat16ToFloatAvx2(const uint16_t* in, float* out,
                                                         int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_slli_epi32(wide, 16));
  }
  BFloat16ToFloatLoop(in + i, out + i, n - i);
}

__attribute__((target("avx2"))) void FloatToBFloat16Avx2(const float* in, uint16_t* out,
                                                         int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i lo =
        RoundToBFloat16Avx2(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i)));
    const __m256i hi =
        RoundToBFloat16Avx2(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i + 8)));
    // The pack interleaves 128-bit lanes; the permute restores element order.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xd8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), packed);
  }
  FloatToBFloat16Loop(in + i, out + i, n - i);
}
#endif

HalfCodec PickBFloat16Codec() {
#if BRAID_HAVE_F16C_PATH
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) return HalfCodec{&BFloat16ToFloatAvx2, &FloatToBFloat16Avx2};
#endif
  return HalfCodec{&BFloat16ToFloatBlock, &FloatToBFloat16Block};
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
  static const HalfCodec codec = PickBFloat16Codec();
  return codec;
}

}  // namespace cpu
}  // namespace braid
