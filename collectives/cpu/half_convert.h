// Block conversions between the 16-bit float formats and float32, used by the
// host kernels to reduce and scale float16 / bfloat16 through float32.
#pragma once

#include <cstdint>

namespace braid {
namespace cpu {

struct HalfCodec {
  void (*to_float)(const uint16_t* in, float* out, int64_t n);
  // Rounds to nearest even.
  void (*from_float)(const float* in, uint16_t* out, int64_t n);
};

// IEEE binary16: the F16C instructions when the CPU has them (picked once, at
// first use), otherwise the portable conversion of common/half.h.
const HalfCodec& Float16Codec();
const HalfCodec& BFloat16Codec();

}  // namespace cpu
}  // namespace braid
