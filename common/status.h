// Status: the one error type inside the C++ layers (exceptions appear only at the
// Python boundary). A code plus a message that names what was wrong.
#pragma once

#include <string>
#include <utility>

namespace braid {

// Values are part of the C API (BRAID_ERR_*): append only.
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,  // bad input from this caller
  kNotInitialized = 2,   // op before init or after shutdown
  kMismatch = 3,         // ranks disagree on a collective
  kTimeout = 4,          // stall timeout: some rank never submitted
  kAborted = 5,          // engine shut down with the op pending
  kBackendError = 6,     // MPI / NCCL / CUDA failure
  kInternal = 7,         // a bug in braid
  kDuplicateName = 8,    // the same name is already in flight
  kOutOfMemory = 9,      // an allocation failed (host or device)
};

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status Internal(std::string m) {
  return {StatusCode::kInternal, std::move(m)};
}
inline Status BackendError(std::string m) {
  return {StatusCode::kBackendError, std::move(m)};
}
inline Status OutOfMemory(std::string m) {
  return {StatusCode::kOutOfMemory, std::move(m)};
}

const char* StatusCodeName(StatusCode code);

}  // namespace braid

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define BRAID_RETURN_IF_ERROR(expr)        \
  do {                                     \
    ::braid::Status _braid_st = (expr);    \
    if (!_braid_st.ok()) return _braid_st; \
  } while (0)
