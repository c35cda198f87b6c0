#include "engine_ops.h"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>

namespace bench {
namespace {

// A 1-D tensor; the shape array outlives the submit call, which copies it.
struct Tensor1D {
  Tensor1D(const void* data, int64_t count, int dtype, const Placement& where) : shape{count} {
    tensor.data = const_cast<void*>(data);
    tensor.dtype = dtype;
    tensor.ndim = 1;
    tensor.shape = shape;
    tensor.device = where.device;
    tensor.stream = where.stream;
  }
  int64_t shape[1];
  braid_tensor_t tensor;
};

}  // namespace

void EngineFailure(int rc, const char* what, const std::string& name, braid_handle_t handle) {
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const char* message = handle != nullptr ? braid_handle_error(handle) : braid_last_error();
  std::fprintf(stderr, "braid-bench: rank %d: %s of '%s' failed (code %d): %s\n", rank, what,
               name.c_str(), rc, message);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 3);
  std::abort();
}

braid_handle_t SubmitAllreduce(const std::string& name, void* data, int64_t count, int dtype,
                               int op, const Placement& where) {
  Tensor1D t(data, count, dtype, where);
  braid_handle_t handle = nullptr;
  const int rc = braid_allreduce_async(name.c_str(), &t.tensor, data, op, 1.0, 1.0, &handle);
  if (rc != BRAID_OK) EngineFailure(rc, "braid_allreduce_async", name, nullptr);
  return handle;
}

void WaitAndFree(braid_handle_t handle, const std::string& name) {
  const int rc = braid_wait(handle);
  if (rc != BRAID_OK) EngineFailure(rc, "braid_wait", name, handle);
  braid_handle_free(handle);
}

void EngineAllreduce(const std::string& name, void* data, int64_t count, int dtype, int op,
                     const Placement& where) {
  WaitAndFree(SubmitAllreduce(name, data, count, dtype, op, where), name);
}

void EngineBroadcast(const std::string& name, void* data, int64_t count, int dtype, int root,
                     const Placement& where) {
  Tensor1D t(data, count, dtype, where);
  braid_handle_t handle = nullptr;
  const int rc = braid_broadcast_async(name.c_str(), &t.tensor, root, &handle);
  if (rc != BRAID_OK) EngineFailure(rc, "braid_broadcast_async", name, nullptr);
  WaitAndFree(handle, name);
}

void EngineSparseAllreduce(const std::string& name, const void* indices, const void* values,
                           int64_t pairs, void* dense, int64_t length, int dtype, int op, int flags,
                           const Placement& where) {
  Tensor1D i(indices, pairs, BRAID_INT32, where), v(values, pairs, dtype, where);
  Tensor1D d(dense, length, dtype, where);
  braid_handle_t handle = nullptr;
  const int rc = braid_sparse_allreduce_async(name.c_str(), &i.tensor, &v.tensor, &d.tensor, op,
                                              flags, &handle);
  if (rc != BRAID_OK) EngineFailure(rc, "braid_sparse_allreduce_async", name, nullptr);
  WaitAndFree(handle, name);
}

void EngineAllgather(const std::string& name, const void* input, int64_t count, int dtype,
                     const Placement& where, const OutputCheck& check) {
  Tensor1D t(input, count, dtype, where);
  braid_handle_t handle = nullptr;
  int rc = braid_allgather_async(name.c_str(), &t.tensor, &handle);
  if (rc != BRAID_OK) EngineFailure(rc, "braid_allgather_async", name, nullptr);
  rc = braid_wait(handle);
  if (rc != BRAID_OK) EngineFailure(rc, "braid_wait", name, handle);
  if (check) {
    const void* data = nullptr;
    int ndim = 0;
    const int64_t* shape = nullptr;
    rc = braid_handle_output(handle, &data, &ndim, &shape);
    if (rc != BRAID_OK) EngineFailure(rc, "braid_handle_output", name, handle);
    int64_t elements = 1;
    for (int d = 0; d < ndim; ++d) elements *= shape[d];
    check(data, ndim == 1 ? elements : -1);
  }
  braid_handle_free(handle);
}

void PrintStages(const std::string& label) {
  static const char* const kNames[] = {"submit", "handoff", "negotiate", "execute", "wake"};
  std::printf("# stages %s (rank 0, us per call):", label.c_str());
  for (int s = 0; s <= BRAID_STAGE_WAKE; ++s) {
    int64_t count = 0;
    double total_us = 0;
    braid_stage_times(s, &count, &total_us);
    std::printf(" %s %.2f", kNames[s], count > 0 ? total_us / static_cast<double>(count) : 0.0);
    if (s == BRAID_STAGE_WAKE) std::printf(" (%lld blocked)", static_cast<long long>(count));
  }
  std::printf("\n");
  std::fflush(stdout);
}

}  // namespace bench
