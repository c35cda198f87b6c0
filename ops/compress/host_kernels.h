// The host side of the selection kernels, one function per entry of the device
// table (device_kernels.h) so that selection.cc drives both the same way. Internal
// to ops/compress/: arguments are validated by selection.cc.
//
// Threading: reentrant; each call uses up to `threads` threads of its own.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "common/types.h"
#include "ops/compress/device_kernels.h"

namespace braid::compress::host {

// Exact top-k (k <= x.n): a sampled threshold estimate, one filter pass that
// collects the candidates above it in parallel chunks, nth_element on the
// candidates' keys; ties at the estimate, a bad estimate or too many candidates
// fall back to a radix select of the k-th key and an ordered write pass.
Status TopK(const DeviceValues& x, int64_t k, const DeviceSelectionOut& out, int threads);

// The keys at SamplePosition(seed, j, n) for j < m.
void SampleKeys(const DeviceValues& x, uint64_t seed, int64_t m, uint64_t* keys);

// How many elements have a key >= threshold.
int64_t CountAtLeast(const DeviceValues& x, uint64_t threshold, int threads);

// Of the `candidates` elements with a key >= threshold, the min(k, candidates)
// largest, as the device table's select_at_least.
Status SelectAtLeast(const DeviceValues& x, uint64_t threshold, int64_t candidates, int64_t k,
                     const DeviceSelectionOut& out, int threads);

// values[j] = x[indices[j]] for j < count.
void Gather(const DeviceValues& x, const void* indices, DataType index_dtype, int64_t count,
            void* values);

}  // namespace braid::compress::host
