// The engine path: braid's C API on host tensors, or on device tensors with the
// bench's stream (Placement). Each call returns when braid_wait has; on a device the
// caller then synchronises the stream (Memory::Synchronize). Any failure prints the
// rank, the call, the tensor name and braid's message, then aborts the job
// (MPI_Abort) so that no rank is left waiting.
#ifndef BRAID_BENCH_ENGINE_OPS_H_
#define BRAID_BENCH_ENGINE_OPS_H_

#include <cstdint>
#include <functional>
#include <string>

#include "braid/braid.h"

namespace bench {

// braid_tensor_t.device and .stream of every tensor the bench submits.
struct Placement {
  int device = BRAID_DEVICE_CPU;
  void* stream = nullptr;  // cudaStream_t on a device
};

// Prints "<what> of '<name>' failed" with braid's message and aborts.
[[noreturn]] void EngineFailure(int rc, const char* what, const std::string& name,
                                braid_handle_t handle);

braid_handle_t SubmitAllreduce(const std::string& name, void* data, int64_t count, int dtype,
                               int op, const Placement& where);
void WaitAndFree(braid_handle_t handle, const std::string& name);

// One complete in-place allreduce: submit, wait, free.
void EngineAllreduce(const std::string& name, void* data, int64_t count, int dtype, int op,
                     const Placement& where);

// One in-place broadcast from `root`.
void EngineBroadcast(const std::string& name, void* data, int64_t count, int dtype, int root,
                     const Placement& where);

// One sparse allreduce of `pairs` (int32 index, value) pairs into `dense`
// (`length` elements), with braid_sparse_allreduce_async's `flags`.
void EngineSparseAllreduce(const std::string& name, const void* indices, const void* values,
                           int64_t pairs, void* dense, int64_t length, int dtype, int op, int flags,
                           const Placement& where);

// One allgather of `count` elements per rank. When `check` is set, it is called
// with braid's output (valid until the handle is freed; in device memory for a
// device tensor) and its element count, -1 when the output is not 1-D.
using OutputCheck = std::function<void(const void* data, int64_t count)>;
void EngineAllgather(const std::string& name, const void* input, int64_t count, int dtype,
                     const Placement& where, const OutputCheck& check = nullptr);

// Prints "# stages <label> (rank 0, us per call): ..." with the engine's time per
// request by stage since the last braid_reset_stats (core/stage_times.h): the
// mean per request, and for the wake the mean per wait that blocked and how many
// did.
void PrintStages(const std::string& label);

}  // namespace bench

#endif  // BRAID_BENCH_ENGINE_OPS_H_
