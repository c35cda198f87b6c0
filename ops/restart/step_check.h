// The agreement slots appended to every restart's packed buffer. They travel in the
// same allreduce (a sum) as the parameters, so checking that the ranks restart at
// the same local step costs no extra collective:
//
//   slot 0      holds 1 on every rank: its sum is the number of ranks taking part,
//               N, by which the sums are divided to give the averages;
//   slot 1 + b  holds bit b of this rank's step counter: its sum is 0 or N when the
//               ranks agree on that bit, and anything in between when they do not.
//
// Bits rather than the counter itself because a sum of bits in {0, 1} is exact in
// every floating-point type for any realistic N, while a sum of counters could hide
// a disagreement (3 + 5 = 4 + 4). Every rank sees the same sums, so a disagreement
// is the same error on every rank, never a hang.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "common/types.h"

namespace braid::restart {

// Bits of the step counter compared (its low 32 bits).
constexpr int kStepBits = 32;
constexpr int64_t kCheckSlots = 1 + kStepBits;

// Whether restart ops take buffers of this type (float32 and float64).
bool IsRestartDataType(DataType dtype);

// Writes this rank's kCheckSlots values for `step` to host memory `slots`.
void WriteCheckSlots(int64_t step, DataType dtype, void* slots);

// Reads the reduced slots: the number of ranks that took part (into *ranks), or a
// kMismatch error naming the op when the ranks' step counters differ.
Status ReadCheckSlots(const void* slots, DataType dtype, int64_t step, const std::string& name,
                      int64_t* ranks);

}  // namespace braid::restart
