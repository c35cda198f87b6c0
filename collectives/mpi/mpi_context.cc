#include "collectives/mpi/mpi_context.h"

#include <cstdlib>
#include <mutex>

#include "collectives/mpi/mpi_check.h"
#include "common/logging.h"

namespace braid {
namespace mpi {
namespace {

void FinalizeAtExit() {
  if (!MpiIsFinalized()) MPI_Finalize();
}

// Initialises MPI when nobody has; the coordinator thread is not the thread that
// initialised MPI, hence the request for MPI_THREAD_MULTIPLE.
Status EnsureMpiInitialized() {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  if (MpiIsFinalized()) {
    return Status(StatusCode::kNotInitialized, "MPI was already finalized in this process");
  }
  int initialized = 0;
  BRAID_CHECK_MPI(MPI_Initialized(&initialized));
  int provided = 0;
  if (!initialized) {
    BRAID_CHECK_MPI(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided));
    std::atexit(&FinalizeAtExit);
  } else {
    BRAID_CHECK_MPI(MPI_Query_thread(&provided));
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    BRAID_LOG(Warning) << "MPI provides thread level " << provided
                       << "; braid calls MPI from its own thread and needs at least "
                          "MPI_THREAD_SERIALIZED";
  }
  return Status::OK();
}

Status DupWithErrorsReturn(MPI_Comm base, MPI_Comm* out) {
  BRAID_CHECK_MPI(MPI_Comm_dup(base, out));
  BRAID_CHECK_MPI(MPI_Comm_set_errhandler(*out, MPI_ERRORS_RETURN));
  return Status::OK();
}

// local_*: among the ranks sharing this host's memory; cross_*: among the ranks
// with the same local rank, i.e. one per host.
Status FillWorldInfo(MPI_Comm comm, WorldInfo* info) {
  BRAID_CHECK_MPI(MPI_Comm_rank(comm, &info->rank));
  BRAID_CHECK_MPI(MPI_Comm_size(comm, &info->size));
  int provided = 0;
  BRAID_CHECK_MPI(MPI_Query_thread(&provided));
  info->mpi_threads_multiple = provided == MPI_THREAD_MULTIPLE;
  MPI_Comm local = MPI_COMM_NULL;
  BRAID_CHECK_MPI(
      MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, info->rank, MPI_INFO_NULL, &local));
  int rc = MPI_Comm_rank(local, &info->local_rank);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_size(local, &info->local_size);
  MPI_Comm_free(&local);
  BRAID_CHECK_MPI(rc);
  MPI_Comm cross = MPI_COMM_NULL;
  BRAID_CHECK_MPI(MPI_Comm_split(comm, info->local_rank, info->rank, &cross));
  rc = MPI_Comm_rank(cross, &info->cross_rank);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_size(cross, &info->cross_size);
  MPI_Comm_free(&cross);
  BRAID_CHECK_MPI(rc);
  return Status::OK();
}

}  // namespace

Status MpiContext::Create(const void* comm, std::unique_ptr<MpiContext>* out) {
  BRAID_RETURN_IF_ERROR(EnsureMpiInitialized());
  MPI_Comm base = comm != nullptr ? *static_cast<const MPI_Comm*>(comm) : MPI_COMM_WORLD;
  if (base == MPI_COMM_NULL) return InvalidArgument("the MPI communicator is MPI_COMM_NULL");
  std::unique_ptr<MpiContext> context(new MpiContext());
  BRAID_RETURN_IF_ERROR(context->Init(base));
  *out = std::move(context);
  return Status::OK();
}

Status MpiContext::Init(MPI_Comm base) {
  BRAID_RETURN_IF_ERROR(DupWithErrorsReturn(base, &control_comm_));
  BRAID_RETURN_IF_ERROR(DupWithErrorsReturn(base, &data_comm_));
  return FillWorldInfo(control_comm_, &info_);
}

MpiContext::~MpiContext() {
  if (MpiIsFinalized()) return;
  if (data_comm_ != MPI_COMM_NULL) MPI_Comm_free(&data_comm_);
  if (control_comm_ != MPI_COMM_NULL) MPI_Comm_free(&control_comm_);
}

}  // namespace mpi
}  // namespace braid
