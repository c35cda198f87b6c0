// The C API's default engine, for the parts of the C API outside braid_c.cc, and
// the error reporting they share with it.
//
// Threading: both functions may be called from any thread.
#pragma once

#include <memory>

#include "common/status.h"
#include "core/handle.h"
#include "core/request.h"

namespace braid::capi {

// Enqueues on the default engine; kNotInitialized before init and after shutdown.
Status EnqueueOnDefault(Request request, std::shared_ptr<Handle>* handle);

// Records `status` as the calling thread's last error and returns its code.
int Report(const Status& status);

}  // namespace braid::capi
