// BRAID_CHECK_MPI: the error model for MPI calls. braid's communicators use
// MPI_ERRORS_RETURN, so a failing call returns its code and this turns it into a
// Status(kBackendError) naming the file, line, call and MPI's own explanation.
#pragma once

#include <mpi.h>

#include "common/status.h"

namespace braid {
namespace mpi {

Status MpiError(int code, const char* call, const char* file, int line);

// MPI_Finalized, for destructors that must not touch MPI after it is gone.
bool MpiIsFinalized();

}  // namespace mpi
}  // namespace braid

#define BRAID_CHECK_MPI(call)                                                  \
  do {                                                                         \
    int _braid_mpi_rc = (call);                                                \
    if (_braid_mpi_rc != MPI_SUCCESS)                                          \
      return ::braid::mpi::MpiError(_braid_mpi_rc, #call, __FILE__, __LINE__); \
  } while (0)
