// The error memory of the sparse methods (top-k with memory / M-DSGD, GMC, DGC):
// what a rank did not send stays in the memory e and is sent later (error
// feedback). Two kernels, in host memory or on one GPU:
//
// ErrorFeedback, one fused pass over the memory:
//     e = e + a * g + b * d          (d absent: e = e + a * g)
//   e.g. M-DSGD / top-k with memory: a = lr, d absent; DGC's momentum correction
//   with u the momentum: first u = m * u + g (a = 1 on u's buffer), then e = e + u.
//   Arithmetic: float32 for float16 / bfloat16 (rounded once, to nearest even, on
//   the store), the dtype's own otherwise; evaluated as (e + a*g) + b*d with no
//   fused multiply-add, so the host and a GPU write the same bits.
//   Bytes per element (b = value size): reads 3b (e, g, d) and writes b (e); 2b
//   read without d. A plain copy of e reads b and writes b.
//
// ExtractSent, the sent step after a selection: for each selected index,
//     values[j] = e[indices[j]];  e[indices[j]] = 0
//   so the memory keeps only what was not sent. Indices must be distinct and in
//   [0, n) (every selection in selection.h returns such); the host version checks
//   the range before touching e, a GPU skips indices out of range (their value
//   reads as 0). Bytes per selected entry: reads the index and b, writes 2b.
//
// Threading: reentrant, as selection.h; the host pass uses up to num_threads
// threads of its own (0: hardware_concurrency) on large buffers.
#pragma once

#include <cstdint>

#include "common/buffer.h"
#include "common/status.h"

namespace braid::compress {

// e, g and d (d.data may be null: absent) have the same count, dtype and device.
Status ErrorFeedback(const BufferView& e, const BufferView& g, const BufferView& d, double a,
                     double b, int num_threads = 0);

// `indices` (int32 or int64, indices.count entries) select from e; `values` has e's
// dtype and at least indices.count elements (null data: only zero the memory).
Status ExtractSent(const BufferView& e, const BufferView& indices, const BufferView& values);

}  // namespace braid::compress
