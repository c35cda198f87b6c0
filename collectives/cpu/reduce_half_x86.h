// Single-pass float16 / bfloat16 reductions for x86 CPUs with AVX2 and F16C:
// eight elements of each operand are widened to float32, reduced and narrowed
// back (round to nearest even) in registers, instead of through staging blocks.
#pragma once

#include <cstdint>

#include "common/types.h"

namespace braid {
namespace cpu {

// True when this build and this CPU can run ReduceHalfX86 (checked once).
bool HaveHalfX86();

// Reduces the longest prefix of whole 8-element groups and returns its length;
// the caller finishes the rest. `dtype` is kFloat16 or kBFloat16.
int64_t ReduceHalfX86(void* dst, const void* src, int64_t count, DataType dtype, ReduceOp op);

// The same for cpu::ReduceHalvesRounded: dst = round(scale * (dst op others[0] op
// ...)), every group of 8 combined in float32 registers and rounded once.
int64_t ReduceRoundedX86(void* dst, const void* const* others, int num_others, int64_t count,
                         DataType dtype, ReduceOp op, float scale);

}  // namespace cpu
}  // namespace braid
