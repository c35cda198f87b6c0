// The neighbour collectives' mixing pass on one CUDA device (DeviceOps::Mix): the
// formula and the order of operations of collectives/cpu/mix.h, every product and
// sum rounded on its own (no fused multiply-adds), the 16-bit formats widened and
// rounded with the host's conversions (scale_element.cuh), so that the result is
// cpu::Mix's bit for bit. NaN payloads are the exception: the device's arithmetic
// returns the canonical NaN where the host's propagates an operand's.
//
// One launch reads every neighbour's pointer and weight from its parameters, so
// a pass takes at most kMaxMixNeighbours neighbours: splitting more over several
// launches would round the 16-bit formats' accumulator in between.
//
// Threading: plain functions; safe from any thread. Callers set the device.
#pragma once

#include <cuda_runtime_api.h>

#include "collectives/cpu/mix.h"
#include "common/status.h"

namespace braid {
namespace cuda {

constexpr int kMaxMixNeighbours = 64;

// Queues the pass on `stream`. Refuses what cpu::Mix refuses, and more than
// kMaxMixNeighbours neighbours. `args.stream` is not looked at.
Status Mix(const MixArgs& args, cudaStream_t stream);

}  // namespace cuda
}  // namespace braid
