// CallBeforeMpiFinalize: an attribute on MPI_COMM_SELF whose delete callback runs
// at the very start of MPI_Finalize, while MPI can still communicate. This lets the
// engine stop its coordinator cleanly when the application finalizes MPI without
// shutting braid down first.
#include <mpi.h>

#include <mutex>

#include "collectives/transport.h"

namespace braid {
namespace {

void (*g_hook)() = nullptr;

int OnCommSelfDelete(MPI_Comm, int, void*, void*) {
  if (g_hook) g_hook();
  return MPI_SUCCESS;
}

}  // namespace

void CallBeforeMpiFinalize(void (*hook)()) {
  static std::once_flag once;
  std::call_once(once, [hook] {
    g_hook = hook;
    int keyval = MPI_KEYVAL_INVALID;
    MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, &OnCommSelfDelete, &keyval, nullptr);
    MPI_Comm_set_attr(MPI_COMM_SELF, keyval, nullptr);
  });
}

}  // namespace braid
