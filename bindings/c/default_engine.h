// The C API's default engine, for the parts of the C API outside braid_c.cc, and
// the error reporting they share with it.
//
// Threading: both functions may be called from any thread.
#pragma once

#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "braid/braid.h"
#include "common/buffer.h"
#include "common/status.h"
#include "core/handle.h"
#include "core/request.h"

// A C API handle: the engine's handle and its error message, kept for
// braid_handle_error.
struct braid_handle_s {
  std::shared_ptr<braid::Handle> handle;
  std::once_flag error_once;
  std::string error;  // set once the operation is done

  const char* Error() {
    std::call_once(error_once, [this] { error = handle->status().message(); });
    return error.c_str();
  }
};

namespace braid::capi {

// Enqueues `request` on the default engine and, on success, returns a new C handle
// in *handle; returns the status code (Report).
int SubmitToDefault(Request request, braid_handle_t* handle);

// Checks a C tensor and fills the name, dtype, device and shape of *meta.
Status DescribeTensor(const char* name, const braid_tensor_t* tensor, RequestMeta* meta);

// `n` C tensors (an array; NULL only when n is 0) as flat buffer views, each
// checked by DescribeTensor; `what` names the array in errors ("params[2]").
Status TensorViews(const braid_tensor_t* tensors, int n, const char* what,
                   std::vector<BufferView>* out);

// Enqueues on the default engine; kNotInitialized before init and after shutdown.
Status EnqueueOnDefault(Request request, std::shared_ptr<Handle>* handle);

// Records `status` as the calling thread's last error and returns its code.
int Report(const Status& status);

// Runs the body of the C API function `function`. No C++ exception crosses the
// C ABI: std::bad_alloc becomes BRAID_ERR_OUT_OF_MEMORY, any other exception
// BRAID_ERR_INTERNAL, with braid_last_error() saying where.
template <typename F>
int CallC(const char* function, F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return Report(OutOfMemory(std::string("out of memory in ") + function));
  } catch (const std::exception& e) {
    return Report(Internal(std::string(function) + ": " + e.what()));
  } catch (...) {
    return Report(Internal(std::string(function) + ": an unknown exception"));
  }
}

}  // namespace braid::capi
