// BRAID_CHECK_NCCL: the error model for NCCL calls. A failing call becomes a
// Status(kBackendError) naming the file, line, call and ncclGetErrorString's text,
// followed by NCCL's own last error message (ncclGetLastError) when it has one:
// the code alone ("invalid argument") rarely says which argument.
#pragma once

#include <nccl.h>

#include <string>

#include "common/status.h"

namespace braid {
namespace nccl {

Status NcclError(ncclResult_t code, const char* call, const char* file, int line);

// ncclGetErrorString's text plus ncclGetLastError's message, for errors that no
// single call returned (ncclCommGetAsyncError's).
std::string NcclErrorText(ncclResult_t code);

}  // namespace nccl
}  // namespace braid

#define BRAID_CHECK_NCCL(call)                                                    \
  do {                                                                            \
    ncclResult_t _braid_nccl_rc = (call);                                         \
    if (_braid_nccl_rc != ncclSuccess)                                            \
      return ::braid::nccl::NcclError(_braid_nccl_rc, #call, __FILE__, __LINE__); \
  } while (0)
