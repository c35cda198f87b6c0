#include "common/status.h"

namespace braid {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case StatusCode::kNotInitialized:
      return "NOT_INITIALIZED";
    case StatusCode::kMismatch:
      return "MISMATCH";
    case StatusCode::kTimeout:
      return "TIMEOUT";
    case StatusCode::kAborted:
      return "ABORTED";
    case StatusCode::kBackendError:
      return "BACKEND_ERROR";
    case StatusCode::kInternal:
      return "INTERNAL";
    case StatusCode::kDuplicateName:
      return "DUPLICATE_NAME";
    case StatusCode::kOutOfMemory:
      return "OUT_OF_MEMORY";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

}  // namespace braid
