// Shared between the engine and collective bindings.
//
// Threading: EnqueueOnDefault may be called from any thread.
#pragma once

#include <memory>

#include "core/request.h"
#include "handle.h"

namespace braid::python {

// Enqueues on the default engine; kNotInitialized before init and after shutdown.
Status EnqueueOnDefault(Request request, std::shared_ptr<Handle>* handle);

}  // namespace braid::python
