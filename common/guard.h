// Turns the exceptions that the standard library can throw into a Status, where
// braid's own code calls it (allocations, containers): no exception may leave the
// coordinator thread or cross the C ABI.
#pragma once

#include <exception>
#include <new>
#include <string>

#include "common/status.h"

namespace braid {

// Runs `f` (which returns a Status). std::bad_alloc becomes kOutOfMemory naming
// `what`; any other std::exception becomes kInternal with its message.
template <typename F>
Status Guarded(const std::string& what, F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return OutOfMemory("out of memory while allocating " + what);
  } catch (const std::exception& e) {
    return Internal("while handling " + what + ": " + e.what());
  }
}

}  // namespace braid
