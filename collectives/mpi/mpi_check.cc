#include "collectives/mpi/mpi_check.h"

#include <string>

namespace braid {
namespace mpi {

Status MpiError(int code, const char* call, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
  std::string message = std::string(file) + ":" + std::to_string(line) + ": " + call +
                        " failed: " + std::string(text, static_cast<size_t>(length)) +
                        " (MPI error " + std::to_string(code) + ")";
  return BackendError(std::move(message));
}

bool MpiIsFinalized() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  return finalized != 0;
}

}  // namespace mpi
}  // namespace braid
