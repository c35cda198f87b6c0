#include "collectives/cpu/reduce_half_x86.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "collectives/cpu/bfloat16_avx2.h"
#define BRAID_X86_HALF 1
#else
#define BRAID_X86_HALF 0
#endif

namespace braid {
namespace cpu {

#if BRAID_X86_HALF
namespace {

#define BRAID_TARGET __attribute__((target("avx2,f16c")))

// Operand order matches the scalar kernels: min/max return dst unless src is
// strictly smaller/larger (minps/maxps return their second operand when either
// is NaN).
struct VSum {
  BRAID_TARGET static __m256 Apply(__m256 d, __m256 s) { return _mm256_add_ps(d, s); }
};
struct VProduct {
  BRAID_TARGET static __m256 Apply(__m256 d, __m256 s) { return _mm256_mul_ps(d, s); }
};
struct VMin {
  BRAID_TARGET static __m256 Apply(__m256 d, __m256 s) { return _mm256_min_ps(s, d); }
};
struct VMax {
  BRAID_TARGET static __m256 Apply(__m256 d, __m256 s) { return _mm256_max_ps(s, d); }
};

struct Float16 {
  BRAID_TARGET static __m256 Load(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  BRAID_TARGET static void Store(uint16_t* p, __m256 v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
};

// bfloat16 is the top half of a float32. Narrowing rounds to nearest even and
// keeps NaN quiet, exactly as FloatToBFloat16 in common/half.h.
struct BFloat16 {
  BRAID_TARGET static __m256 Load(const uint16_t* p) {
    __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  BRAID_TARGET static void Store(uint16_t* p, __m256 v) {
    const __m256i narrow = RoundToBFloat16Avx2(_mm256_castps_si256(v));
    const __m128i packed =
        _mm_packus_epi32(_mm256_castsi256_si128(narrow), _mm256_extracti128_si256(narrow, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), packed);
  }
};

template <class Format, class Op>
BRAID_TARGET int64_t Fused(uint16_t* dst, const uint16_t* src, int64_t count) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    Format::Store(dst + i, Op::Apply(Format::Load(dst + i), Format::Load(src + i)));
  }
  return i;
}

template <class Format>
int64_t FusedFor(ReduceOp op, uint16_t* dst, const uint16_t* src, int64_t count) {
  switch (op) {
    case ReduceOp::kSum:
      return Fused<Format, VSum>(dst, src, count);
    case ReduceOp::kProduct:
      return Fused<Format, VProduct>(dst, src, count);
    case ReduceOp::kMin:
      return Fused<Format, VMin>(dst, src, count);
    case ReduceOp::kMax:
      return Fused<Format, VMax>(dst, src, count);
    case ReduceOp::kAverage:
      break;
  }
  return 0;
}

template <class Format, class Op>
BRAID_TARGET int64_t Rounded(uint16_t* dst, const void* const* others, int num_others,
                             int64_t count, float scale) {
  const __m256 factor = _mm256_set1_ps(scale);
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    __m256 acc = Format::Load(dst + i);
    for (int m = 0; m < num_others; ++m) {
      acc = Op::Apply(acc, Format::Load(static_cast<const uint16_t*>(others[m]) + i));
    }
    if (scale != 1.0f) acc = _mm256_mul_ps(acc, factor);
    Format::Store(dst + i, acc);
  }
  return i;
}

template <class Format>
int64_t RoundedFor(ReduceOp op, uint16_t* dst, const void* const* others, int num_others,
                   int64_t count, float scale) {
  switch (op) {
    case ReduceOp::kSum:
      return Rounded<Format, VSum>(dst, others, num_others, count, scale);
    case ReduceOp::kProduct:
      return Rounded<Format, VProduct>(dst, others, num_others, count, scale);
    case ReduceOp::kMin:
      return Rounded<Format, VMin>(dst, others, num_others, count, scale);
    case ReduceOp::kMax:
      return Rounded<Format, VMax>(dst, others, num_others, count, scale);
    case ReduceOp::kAverage:
      break;
  }
  return 0;
}

bool DetectHalfX86() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
}

}  // namespace

bool HaveHalfX86() {
  static const bool have = DetectHalfX86();
  return have;
}

int64_t ReduceHalfX86(void* dst, const void* src, int64_t count, DataType dtype, ReduceOp op) {
  if (!HaveHalfX86()) return 0;
  auto* d = static_cast<uint16_t*>(dst);
  const auto* s = static_cast<const uint16_t*>(src);
  if (dtype == DataType::kFloat16) return FusedFor<Float16>(op, d, s, count);
  if (dtype == DataType::kBFloat16) return FusedFor<BFloat16>(op, d, s, count);
  return 0;
}

int64_t ReduceRoundedX86(void* dst, const void* const* others, int num_others, int64_t count,
                         DataType dtype, ReduceOp op, float scale) {
  if (!HaveHalfX86()) return 0;
  auto* d = static_cast<uint16_t*>(dst);
  if (dtype == DataType::kFloat16)
    return RoundedFor<Float16>(op, d, others, num_others, count, scale);
  if (dtype == DataType::kBFloat16) {
    return RoundedFor<BFloat16>(op, d, others, num_others, count, scale);
  }
  return 0;
}

#else  // not x86: the portable block kernels do all the work

bool HaveHalfX86() {
  return false;
}
int64_t ReduceHalfX86(void*, const void*, int64_t, DataType, ReduceOp) {
  return 0;
}
int64_t ReduceRoundedX86(void*, const void* const*, int, int64_t, DataType, ReduceOp, float) {
  return 0;
}

#endif  // BRAID_X86_HALF

}  // namespace cpu
}  // namespace braid
