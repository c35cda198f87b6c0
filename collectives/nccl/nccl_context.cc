#include "collectives/nccl/nccl_context.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "collectives/cuda/cuda_check.h"
#include "collectives/cuda/device_memory.h"
#include "collectives/nccl/nccl_check.h"

namespace braid {
namespace nccl {
namespace {

Status NewUniqueId(std::string* out) {
  ncclUniqueId id;
  BRAID_CHECK_NCCL(ncclGetUniqueId(&id));
  out->assign(id.internal, sizeof(id.internal));
  return Status::OK();
}

// Every rank learns whether every rank's `local` is OK. A failing rank returns its
// own error; the others say that a peer failed (its own error names the cause).
Status AgreeOnSetUp(ControlChannel* control, const Status& local) {
  std::vector<uint64_t> ok{local.ok() ? uint64_t{1} : uint64_t{0}};
  BRAID_RETURN_IF_ERROR(control->AllreduceBitAnd(&ok));
  if (!local.ok()) return local;
  if (ok[0] == 0) {
    return BackendError(
        "nccl: the set-up failed on another rank (its error names the cause); no "
        "communicator was created");
  }
  return Status::OK();
}

}  // namespace

Status NcclContext::Create(ControlChannel* control, const WorldInfo& world, int device,
                           std::unique_ptr<NcclContext>* out) {
  if (control == nullptr) return InvalidArgument("nccl: no control channel");
  std::unique_ptr<NcclContext> context(new NcclContext(control->rank(), control->size()));
  Status local = context->InitLocal(world, device);
  std::string id;
  if (context->rank_ == 0 && local.ok()) local = NewUniqueId(&id);
  // Every rank takes part in both rounds whatever its own outcome, so that no rank
  // is left waiting for one that gave up.
  BRAID_RETURN_IF_ERROR(control->BroadcastFromRoot(&id));
  if (local.ok() && id.size() != sizeof(ncclUniqueId)) {
    local = BackendError("nccl: rank 0 could not create the communicator's unique id");
  }
  BRAID_RETURN_IF_ERROR(AgreeOnSetUp(control, local));
  BRAID_RETURN_IF_ERROR(context->InitComm(id));
  *out = std::move(context);
  return Status::OK();
}

Status NcclContext::InitLocal(const WorldInfo& world, int device) {
  const int visible = cuda::VisibleDeviceCount();
  if (visible == 0) return BackendError("nccl: no CUDA device is visible to this process");
  if (device < 0) device = world.local_rank % visible;
  if (device >= visible) {
    return InvalidArgument("nccl: device " + std::to_string(device) + " requested, " +
                           std::to_string(visible) + " visible");
  }
  device_ = device;
  cuda::DeviceGuard guard(device_);
  BRAID_CHECK_CUDA(cudaSetDevice(device_));
  BRAID_CHECK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  return Status::OK();
}

Status NcclContext::InitComm(const std::string& id) {
  ncclUniqueId unique;
  std::memcpy(unique.internal, id.data(), sizeof(unique.internal));
  cuda::DeviceGuard guard(device_);
  BRAID_CHECK_CUDA(cudaSetDevice(device_));  // NCCL binds the communicator to it
  ncclComm_t comm = nullptr;
  BRAID_CHECK_NCCL(ncclCommInitRank(&comm, size_, unique, rank_));
  comm_ = comm;
  return Status::OK();
}

Status NcclContext::Abort() {
  if (comm_ == nullptr || aborted_.exchange(true)) return Status::OK();
  cuda::DeviceGuard guard(device_);
  BRAID_CHECK_NCCL(ncclCommAbort(comm_));
  return Status::OK();
}

NcclContext::~NcclContext() {
  if (device_ < 0) return;  // the local set-up failed before creating anything
  cuda::DeviceGuard guard(device_);
  if (comm_ != nullptr && !aborted_.load()) {
    // ncclCommDestroy flushes outstanding work, which a communicator with an
    // asynchronous error may never finish: abort that one instead.
    ncclResult_t async = ncclSuccess;
    if (ncclCommGetAsyncError(comm_, &async) == ncclSuccess && async == ncclSuccess) {
      (void)ncclCommDestroy(comm_);
    } else {
      (void)ncclCommAbort(comm_);
    }
  }
  if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
}

}  // namespace nccl
}  // namespace braid
