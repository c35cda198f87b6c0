// The nccl raw path: ncclAllReduce, ncclAllGather and ncclBroadcast, as nccl-tests
// calls them, on a communicator the bench creates (an ncclUniqueId from rank 0 sent
// with MPI_Bcast, then ncclCommInitRank) and on the bench's stream, each followed by
// cudaStreamSynchronize so that a call is as complete as the engine's
// (braid_wait + cudaStreamSynchronize). Average is ncclAvg.
#include <nccl.h>

#include <cstdio>
#include <string>

#include "cuda_check.h"
#include "staged_raw.h"

#define BENCH_NCCL(call)                                                                   \
  do {                                                                                     \
    const ncclResult_t bench_nccl_rc_ = (call);                                            \
    if (bench_nccl_rc_ != ncclSuccess) {                                                   \
      ::bench::DeviceFailure(std::string(#call) +                                          \
                                 " failed: " + ncclGetErrorString(bench_nccl_rc_) + " (" + \
                                 ncclGetLastError(nullptr) + ")",                          \
                             __FILE__, __LINE__);                                          \
    }                                                                                      \
  } while (0)

namespace bench {
namespace {

ncclDataType_t NcclType(int dtype) {
  switch (dtype) {
    case BRAID_UINT8:
      return ncclUint8;
    case BRAID_INT8:
      return ncclInt8;
    case BRAID_INT32:
      return ncclInt32;
    case BRAID_INT64:
      return ncclInt64;
    case BRAID_FLOAT16:
      return ncclFloat16;
    case BRAID_BFLOAT16:
      return ncclBfloat16;
    case BRAID_FLOAT64:
      return ncclFloat64;
    default:
      return ncclFloat32;
  }
}

ncclRedOp_t NcclOp(int op) {
  switch (op) {
    case BRAID_AVERAGE:
      return ncclAvg;
    case BRAID_MIN:
      return ncclMin;
    case BRAID_MAX:
      return ncclMax;
    case BRAID_PRODUCT:
      return ncclProd;
    default:
      return ncclSum;
  }
}

class NcclRaw final : public RawPath {
 public:
  NcclRaw(ncclComm_t comm, const DType& dtype, int op, cudaStream_t stream)
      : comm_(comm), type_(NcclType(dtype.braid)), op_(NcclOp(op)), stream_(stream) {}
  ~NcclRaw() override {
    const ncclResult_t rc = ncclCommDestroy(comm_);
    if (rc != ncclSuccess) {
      std::fprintf(stderr, "braid-bench: warning: ncclCommDestroy failed: %s\n",
                   ncclGetErrorString(rc));
    }
  }
  NcclRaw(const NcclRaw&) = delete;
  NcclRaw& operator=(const NcclRaw&) = delete;

  const char* kind() const override { return "nccl"; }
  std::string Describe(Collective c) const override {
    switch (c) {
      case Collective::kAllgather:
        return "ncclAllGather + cudaStreamSynchronize";
      case Collective::kBroadcast:
        return "ncclBroadcast (in place) + cudaStreamSynchronize";
      default:
        return "ncclAllReduce (in place) + cudaStreamSynchronize";
    }
  }

  void Allreduce(void* data, int64_t count) override {
    BENCH_NCCL(ncclAllReduce(data, data, static_cast<size_t>(count), type_, op_, comm_, stream_));
    BENCH_CUDA(cudaStreamSynchronize(stream_));
  }
  void Allgather(const void* input, void* output, int64_t count) override {
    BENCH_NCCL(ncclAllGather(input, output, static_cast<size_t>(count), type_, comm_, stream_));
    BENCH_CUDA(cudaStreamSynchronize(stream_));
  }
  void Broadcast(void* data, int64_t count, int root) override {
    BENCH_NCCL(ncclBroadcast(data, data, static_cast<size_t>(count), type_, root, comm_, stream_));
    BENCH_CUDA(cudaStreamSynchronize(stream_));
  }

 private:
  ncclComm_t comm_;
  ncclDataType_t type_;
  ncclRedOp_t op_;
  cudaStream_t stream_;
};

// What rank 0 broadcasts: whether it made the id, and the id.
struct IdMessage {
  int ok = 0;
  ncclResult_t rc = ncclSuccess;
  ncclUniqueId id{};
};

}  // namespace

bool NcclRawBuilt() {
  return true;
}

std::string MakeNcclRaw(MPI_Comm comm, const DType& dtype, int op, CudaMemory& memory,
                        std::unique_ptr<RawPath>* out) {
  int rank = 0, ranks = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &ranks);
  IdMessage message;
  if (rank == 0) {
    message.rc = ncclGetUniqueId(&message.id);
    message.ok = message.rc == ncclSuccess;
  }
  MPI_Bcast(&message, static_cast<int>(sizeof(message)), MPI_BYTE, 0, comm);
  if (!message.ok) {
    return std::string("ncclGetUniqueId failed on rank 0: ") + ncclGetErrorString(message.rc);
  }
  BENCH_CUDA(cudaSetDevice(memory.device()));
  ncclComm_t nccl = nullptr;
  BENCH_NCCL(ncclCommInitRank(&nccl, ranks, message.id, rank));
  out->reset(new NcclRaw(nccl, dtype, op, memory.cuda_stream()));
  return "";
}

}  // namespace bench
