// The C API over one default engine (include/braid/braid.h).
#include "braid/braid.h"

#include <cstdlib>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "bindings/c/default_engine.h"
#include "core/engine.h"

namespace {

using braid::Status;
using braid::StatusCode;

std::shared_mutex g_engine_mutex;  // shared: enqueue and queries; exclusive: init/shutdown
std::unique_ptr<braid::Engine> g_engine;
thread_local std::string g_last_error;

int Report(const Status& status) {
  g_last_error = status.ok() ? std::string() : status.message();
  return static_cast<int>(status.code());
}

Status NotInitialized() {
  return Status(StatusCode::kNotInitialized,
                "braid is not initialized: call braid_init() first (or it was shut down)");
}

void ShutdownAtExit() {
  std::unique_lock<std::shared_mutex> lock(g_engine_mutex);
  g_engine.reset();
}

int Init(const void* mpi_comm) {
  std::unique_lock<std::shared_mutex> lock(g_engine_mutex);
  if (g_engine && g_engine->running()) return Report(Status::OK());
  g_engine.reset();
  braid::EngineOptions options;
  options.mpi_comm = mpi_comm;
  Status st = braid::Engine::Create(options, &g_engine);
  static std::once_flag exit_hook;
  if (st.ok()) {
    // The engine stops before MPI goes: at MPI_Finalize when the application
    // finalizes MPI itself, and at exit (registered after MPI_Init, so before the
    // MPI_Finalize braid registers when it initialised MPI) otherwise.
    braid::CallBeforeMpiFinalize(&ShutdownAtExit);
    std::call_once(exit_hook, [] { std::atexit(ShutdownAtExit); });
  }
  return Report(st);
}

template <typename F>
int Query(F f) {
  std::shared_lock<std::shared_mutex> lock(g_engine_mutex);
  return g_engine ? f(g_engine->world()) : -1;
}

Status DescribeTensor(const char* name, const braid_tensor_t* t, braid::RequestMeta* meta) {
  if (name == nullptr) return braid::InvalidArgument("the tensor name is NULL");
  if (t == nullptr) return braid::InvalidArgument(std::string("tensor '") + name + "' is NULL");
  if (!braid::IsValidDataType(t->dtype)) {
    return braid::InvalidArgument(std::string("tensor '") + name + "' has unknown dtype " +
                                  std::to_string(t->dtype));
  }
  if (t->ndim < 0 || (t->ndim > 0 && t->shape == nullptr)) {
    return braid::InvalidArgument(std::string("tensor '") + name + "' has a bad shape");
  }
  meta->name = name;
  meta->dtype = static_cast<braid::DataType>(t->dtype);
  meta->device = t->device;
  meta->shape.assign(t->shape, t->shape + t->ndim);
  return Status::OK();
}

int Submit(braid::Request request, braid_handle_t* out) {
  if (out == nullptr) return Report(braid::InvalidArgument("the handle pointer is NULL"));
  std::shared_lock<std::shared_mutex> lock(g_engine_mutex);
  if (!g_engine) return Report(NotInitialized());
  std::shared_ptr<braid::Handle> handle;
  Status st = g_engine->Enqueue(std::move(request), &handle);
  if (st.ok()) {
    *out = new braid_handle_s;
    (*out)->handle = std::move(handle);
  }
  return Report(st);
}

}  // namespace

namespace braid::capi {

Status EnqueueOnDefault(Request request, std::shared_ptr<Handle>* handle) {
  std::shared_lock<std::shared_mutex> lock(g_engine_mutex);
  if (!g_engine) return NotInitialized();
  return g_engine->Enqueue(std::move(request), handle);
}

int Report(const Status& status) {
  return ::Report(status);
}

int SubmitToDefault(Request request, braid_handle_t* handle) {
  return ::Submit(std::move(request), handle);
}

Status DescribeTensor(const char* name, const braid_tensor_t* tensor, RequestMeta* meta) {
  return ::DescribeTensor(name, tensor, meta);
}

Status TensorViews(const braid_tensor_t* tensors, int n, const char* what,
                   std::vector<BufferView>* out) {
  out->clear();
  if (n < 0 || (n > 0 && tensors == nullptr)) {
    return InvalidArgument(std::string("the ") + what + " array is NULL or its length is negative");
  }
  for (int i = 0; i < n; ++i) {
    RequestMeta meta;
    const std::string label = std::string(what) + "[" + std::to_string(i) + "]";
    BRAID_RETURN_IF_ERROR(::DescribeTensor(label.c_str(), &tensors[i], &meta));
    BufferView v;
    v.data = tensors[i].data;
    v.count = meta.NumElements();
    v.dtype = meta.dtype;
    v.device = meta.device;
    v.stream = tensors[i].stream;
    out->push_back(v);
  }
  return Status::OK();
}

}  // namespace braid::capi

extern "C" {

int braid_init(void) {
  return braid::capi::CallC("braid_init", [&]() -> int { return Init(nullptr); });
}
int braid_init_comm(const void* mpi_comm) {
  return braid::capi::CallC("braid_init_comm", [&]() -> int {
    if (mpi_comm == nullptr) return Report(braid::InvalidArgument("mpi_comm is NULL"));
    return Init(mpi_comm);
  });
}

int braid_shutdown(void) {
  return braid::capi::CallC("braid_shutdown", [&]() -> int {
    std::unique_lock<std::shared_mutex> lock(g_engine_mutex);
    g_engine.reset();
    return Report(Status::OK());
  });
}

int braid_is_initialized(void) {
  std::shared_lock<std::shared_mutex> lock(g_engine_mutex);
  return g_engine && g_engine->running() ? 1 : 0;
}

int braid_rank(void) {
  return Query([](const braid::WorldInfo& w) { return w.rank; });
}
int braid_size(void) {
  return Query([](const braid::WorldInfo& w) { return w.size; });
}
int braid_local_rank(void) {
  return Query([](const braid::WorldInfo& w) { return w.local_rank; });
}
int braid_local_size(void) {
  return Query([](const braid::WorldInfo& w) { return w.local_size; });
}
int braid_cross_rank(void) {
  return Query([](const braid::WorldInfo& w) { return w.cross_rank; });
}
int braid_cross_size(void) {
  return Query([](const braid::WorldInfo& w) { return w.cross_size; });
}

int braid_allreduce_async(const char* name, const braid_tensor_t* input, void* output, int op,
                          double prescale, double postscale, braid_handle_t* handle) {
  return braid::capi::CallC("braid_allreduce_async", [&]() -> int {
    braid::Request r;
    Status st = DescribeTensor(name, input, &r.meta);
    if (st.ok() && !braid::IsValidReduceOp(op))
      st = braid::InvalidArgument(std::string("allreduce of '") + name + "': unknown reduce op " +
                                  std::to_string(op));
    if (!st.ok()) return Report(st);
    r.meta.collective = braid::Collective::kAllreduce;
    r.meta.op = static_cast<braid::ReduceOp>(op);
    r.meta.prescale = prescale;
    r.meta.postscale = postscale;
    r.input = input->data;
    r.output = output;
    r.stream = input->stream;
    return Submit(std::move(r), handle);
  });
}

int braid_allgather_async(const char* name, const braid_tensor_t* input, braid_handle_t* handle) {
  return braid::capi::CallC("braid_allgather_async", [&]() -> int {
    braid::Request r;
    Status st = DescribeTensor(name, input, &r.meta);
    if (!st.ok()) return Report(st);
    r.meta.collective = braid::Collective::kAllgather;
    r.input = input->data;
    r.stream = input->stream;
    return Submit(std::move(r), handle);
  });
}

int braid_broadcast_async(const char* name, const braid_tensor_t* buffer, int root,
                          braid_handle_t* handle) {
  return braid::capi::CallC("braid_broadcast_async", [&]() -> int {
    braid::Request r;
    Status st = DescribeTensor(name, buffer, &r.meta);
    if (!st.ok()) return Report(st);
    r.meta.collective = braid::Collective::kBroadcast;
    r.meta.root = root;
    r.input = r.output = buffer->data;
    r.stream = buffer->stream;
    return Submit(std::move(r), handle);
  });
}

int braid_poll(braid_handle_t handle) {
  return handle && handle->handle->Poll() ? 1 : 0;
}

int braid_wait(braid_handle_t handle) {
  return braid::capi::CallC("braid_wait", [&]() -> int {
    if (handle == nullptr) return Report(braid::InvalidArgument("the handle is NULL"));
    return Report(handle->handle->Wait());
  });
}

const char* braid_handle_error(braid_handle_t handle) {
  if (handle == nullptr) return "the handle is NULL";
  try {
    return handle->handle->Poll() ? handle->Error() : "";
  } catch (const std::exception&) {
    return "out of memory while reading the error";
  }
}

int braid_handle_output(braid_handle_t handle, const void** data, int* ndim,
                        const int64_t** shape) {
  return braid::capi::CallC("braid_handle_output", [&]() -> int {
    if (handle == nullptr || data == nullptr || ndim == nullptr || shape == nullptr)
      return Report(braid::InvalidArgument("braid_handle_output: a NULL argument"));
    if (!handle->handle->Poll())
      return Report(braid::InvalidArgument("braid_handle_output: the operation has not finished"));
    Status st = handle->handle->status();
    if (!st.ok()) return Report(st);
    *data = handle->handle->output_data();
    *ndim = static_cast<int>(handle->handle->output_shape().size());
    *shape = handle->handle->output_shape().data();
    return Report(Status::OK());
  });
}

void braid_handle_free(braid_handle_t handle) {
  delete handle;
}

int braid_barrier(void) {
  return braid::capi::CallC("braid_barrier", [&]() -> int {
    // Barriers from several threads of one rank run one after another: they share
    // the name, which must be unique in flight.
    static std::mutex barrier_mutex;
    std::lock_guard<std::mutex> serial(barrier_mutex);
    braid::Request r;
    r.meta.name = "braid.barrier";
    r.meta.collective = braid::Collective::kBarrier;
    braid_handle_t h = nullptr;
    int rc = Submit(std::move(r), &h);
    if (rc != BRAID_OK) return rc;
    rc = braid_wait(h);
    braid_handle_free(h);
    return rc;
  });
}

int braid_join(int* last_joined_rank) {
  return braid::capi::CallC("braid_join", [&]() -> int {
    braid::Request r;
    r.meta.collective = braid::Collective::kJoin;  // the engine names it
    braid_handle_t h = nullptr;
    int rc = Submit(std::move(r), &h);
    if (rc != BRAID_OK) return rc;
    rc = braid_wait(h);
    if (rc == BRAID_OK && last_joined_rank != nullptr)
      *last_joined_rank = static_cast<int>(h->handle->int_result());
    braid_handle_free(h);
    return rc;
  });
}

const char* braid_last_error(void) {
  return g_last_error.c_str();
}

}  // extern "C"
