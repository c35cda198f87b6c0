// Status -> Python exception. The exception classes live in braid/_errors.py
// (BraidError and one subclass per status code); this only raises them.
//
// Threading: call with the GIL held.
#pragma once

#include "common/status.h"

namespace braid::python {

// Raises the braid exception for `status` (which must not be OK) carrying its message.
[[noreturn]] void ThrowStatus(const Status& status);

inline void ThrowIfError(const Status& status) {
  if (!status.ok()) ThrowStatus(status);
}

}  // namespace braid::python
