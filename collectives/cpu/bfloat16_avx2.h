// The AVX2 float32 -> bfloat16 rounding shared by the conversion and reduction
// kernels (x86-64 with GCC or Clang only; callers check).
#pragma once

#include <immintrin.h>

namespace braid {
namespace cpu {

// Eight floats (as bits) to bfloat16 bits in the low half of each 32-bit lane:
// round to nearest even, NaN kept quiet (as FloatToBFloat16 in common/half.h).
__attribute__((target("avx2"))) inline __m256i RoundToBFloat16Avx2(__m256i bits) {
  const __m256i high = _mm256_srli_epi32(bits, 16);
  const __m256i bias =
      _mm256_add_epi32(_mm256_set1_epi32(0x7fff), _mm256_and_si256(high, _mm256_set1_epi32(1)));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(bits, bias), 16);
  const __m256i quiet_nan = _mm256_or_si256(high, _mm256_set1_epi32(0x40));
  const __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff)),
                                            _mm256_set1_epi32(0x7f800000));
  return _mm256_blendv_epi8(rounded, quiet_nan, is_nan);
}

}  // namespace cpu
}  // namespace braid
