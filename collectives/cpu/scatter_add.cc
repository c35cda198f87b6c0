#include "collectives/cpu/scatter_add.h"

#include "common/half.h"

namespace braid {
namespace cpu {
namespace {

template <typename Index>
int64_t FirstOutOfRange(const Index* indices, int64_t count, int64_t length, int64_t* value) {
  for (int64_t p = 0; p < count; ++p) {
    const int64_t i = static_cast<int64_t>(indices[p]);
    if (i < 0 || i >= length) {
      *value = i;
      return p;
    }
  }
  return -1;
}

// T: float or double, added in its own precision.
template <typename T, typename Index>
void AddRows(T* dense, int64_t length, int64_t row, const Index* indices, const T* values,
             int64_t count, T factor) {
  for (int64_t p = 0; p < count; ++p) {
    const int64_t i = static_cast<int64_t>(indices[p]);
    if (i < 0 || i >= length) continue;
    T* out = dense + i * row;
    const T* in = values + p * row;
    if (factor == T(1)) {
      for (int64_t j = 0; j < row; ++j) out[j] += in[j];
    } else {
      for (int64_t j = 0; j < row; ++j) out[j] += factor * in[j];
    }
  }
}

template <typename Index>
void AddHalfRows(uint16_t* dense, int64_t length, int64_t row, const Index* indices,
                 const uint16_t* values, int64_t count, float factor, bool bf16) {
  auto widen = [bf16](uint16_t h) { return bf16 ? BFloat16ToFloat(h) : HalfToFloat(h); };
  auto narrow = [bf16](float f) { return bf16 ? FloatToBFloat16(f) : FloatToHalf(f); };
  for (int64_t p = 0; p < count; ++p) {
    const int64_t i = static_cast<int64_t>(indices[p]);
    if (i < 0 || i >= length) continue;
    uint16_t* out = dense + i * row;
    const uint16_t* in = values + p * row;
    for (int64_t j = 0; j < row; ++j) out[j] = narrow(widen(out[j]) + factor * widen(in[j]));
  }
}

template <typename Index>
void ScatterAddWith(void* dense, int64_t length, int64_t row, DataType dtype, const Index* indices,
                    const void* values, int64_t count, double factor) {
  switch (dtype) {
    case DataType::kFloat32:
      AddRows(static_cast<float*>(dense), length, row, indices, static_cast<const float*>(values),
              count, static_cast<float>(factor));
      return;
    case DataType::kFloat64:
      AddRows(static_cast<double*>(dense), length, row, indices, static_cast<const double*>(values),
              count, factor);
      return;
    case DataType::kFloat16:
    case DataType::kBFloat16:
      AddHalfRows(static_cast<uint16_t*>(dense), length, row, indices,
                  static_cast<const uint16_t*>(values), count, static_cast<float>(factor),
                  dtype == DataType::kBFloat16);
      return;
    default:
      return;  // refused before a request is queued (core/request.cc)
  }
}

}  // namespace

void ScatterAdd(void* dense, int64_t length, int64_t row, DataType dtype, const void* indices,
                DataType index_dtype, const void* values, int64_t count, double factor) {
  if (count <= 0 || row <= 0) return;
  if (index_dtype == DataType::kInt32) {
    ScatterAddWith(dense, length, row, dtype, static_cast<const int32_t*>(indices), values, count,
                   factor);
  } else {
    ScatterAddWith(dense, length, row, dtype, static_cast<const int64_t*>(indices), values, count,
                   factor);
  }
}

int64_t FindIndexOutOfRange(const void* indices, DataType index_dtype, int64_t count,
                            int64_t length, int64_t* value) {
  if (index_dtype == DataType::kInt32)
    return FirstOutOfRange(static_cast<const int32_t*>(indices), count, length, value);
  return FirstOutOfRange(static_cast<const int64_t*>(indices), count, length, value);
}

}  // namespace cpu
}  // namespace braid
