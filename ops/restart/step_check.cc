#include "ops/restart/step_check.h"

#include <cmath>

namespace braid::restart {
namespace {

double Load(const void* p, DataType dtype, int64_t i) {
  return dtype == DataType::kFloat64 ? static_cast<const double*>(p)[i]
                                     : static_cast<const float*>(p)[i];
}

void Store(void* p, DataType dtype, int64_t i, double v) {
  if (dtype == DataType::kFloat64) {
    static_cast<double*>(p)[i] = v;
  } else {
    static_cast<float*>(p)[i] = static_cast<float>(v);
  }
}

}  // namespace

bool IsRestartDataType(DataType dtype) {
  return dtype == DataType::kFloat32 || dtype == DataType::kFloat64;
}

void WriteCheckSlots(int64_t step, DataType dtype, void* slots) {
  Store(slots, dtype, 0, 1.0);
  for (int b = 0; b < kStepBits; ++b)
    Store(slots, dtype, 1 + b, static_cast<double>((step >> b) & 1));
}

Status ReadCheckSlots(const void* slots, DataType dtype, int64_t step, const std::string& name,
                      int64_t* ranks) {
  const double n = Load(slots, dtype, 0);
  if (!(n >= 1.0) || n != std::nearbyint(n)) {
    return Internal("restart '" + name + "': the rank count slot reads " + std::to_string(n));
  }
  const int64_t count = static_cast<int64_t>(n);
  for (int b = 0; b < kStepBits; ++b) {
    const double got = Load(slots, dtype, 1 + b);
    const double want = ((step >> b) & 1) ? n : 0.0;
    if (got == want) continue;
    return Status(StatusCode::kMismatch,
                  "restart '" + name +
                      "': the ranks are not at the same step (this rank is at step " +
                      std::to_string(step) + "; bit " + std::to_string(b) +
                      " of the step counter is set on " + std::to_string(std::llround(got)) +
                      " of " + std::to_string(count) +
                      " ranks). Every rank must count the same steps (and restore the same "
                      "state); the buffers were left as they were");
  }
  *ranks = count;
  return Status::OK();
}

}  // namespace braid::restart
