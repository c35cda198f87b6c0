// Element types of the benchmark: the braid code, the MPI type of the raw path and
// the conversions used to fill and check buffers.
//
// float16 and bfloat16 have no MPI type: the raw path sends them as 2-byte opaque
// elements and reduces with a user-defined MPI_Op that computes in float, as any
// MPI user would have to.
#ifndef BRAID_BENCH_DTYPE_H_
#define BRAID_BENCH_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "braid/braid.h"

namespace bench {

struct DType {
  const char* name;
  int braid;    // BRAID_UINT8 ... BRAID_FLOAT64
  size_t size;  // bytes per element
  bool floating;
  double tolerance;  // relative tolerance of the check (0: exact)
};

// nullptr when `name` is unknown; accepts nccl-tests and numpy spellings.
const DType* FindDType(const std::string& name);
// The names FindDType accepts, for the usage text.
const char* DTypeNames();

uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);
uint16_t FloatToBFloat16(float f);
float BFloat16ToFloat(uint16_t h);

// Storage codecs: Decode/Encode between an element and double.
template <class T>
struct PlainCodec {
  using Storage = T;
  static constexpr bool kFloating = std::is_floating_point<T>::value;
  static double Decode(T v) { return static_cast<double>(v); }
  static T Encode(double v) { return static_cast<T>(v); }
};
struct HalfCodec {
  using Storage = uint16_t;
  static constexpr bool kFloating = true;
  static double Decode(uint16_t v) { return HalfToFloat(v); }
  static uint16_t Encode(double v) { return FloatToHalf(static_cast<float>(v)); }
};
struct BFloat16Codec {
  using Storage = uint16_t;
  static constexpr bool kFloating = true;
  static double Decode(uint16_t v) { return BFloat16ToFloat(v); }
  static uint16_t Encode(double v) { return FloatToBFloat16(static_cast<float>(v)); }
};

// Calls f(Codec{}) with the codec of `dtype` (a BRAID_* code).
template <class F>
void WithCodec(int dtype, F&& f) {
  switch (dtype) {
    case BRAID_UINT8:
      return f(PlainCodec<uint8_t>{});
    case BRAID_INT8:
      return f(PlainCodec<int8_t>{});
    case BRAID_INT32:
      return f(PlainCodec<int32_t>{});
    case BRAID_INT64:
      return f(PlainCodec<int64_t>{});
    case BRAID_FLOAT16:
      return f(HalfCodec{});
    case BRAID_BFLOAT16:
      return f(BFloat16Codec{});
    case BRAID_FLOAT32:
      return f(PlainCodec<float>{});
    case BRAID_FLOAT64:
      return f(PlainCodec<double>{});
    default:
      return;
  }
}

}  // namespace bench

#endif  // BRAID_BENCH_DTYPE_H_
