// The C API's default engine, for the parts of the C API outside braid_c.cc, and
// the error reporting they share with it.
//
// Threading: both functions may be called from any thread.
#pragma once

#include <exception>
#include <memory>
#include <new>
#include <string>

#include "common/status.h"
#include "core/handle.h"
#include "core/request.h"

namespace braid::capi {

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
