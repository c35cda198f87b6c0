// The staged raw path: what a user of MPI alone does with GPU buffers, and what
// braid's engine does when ranks share a GPU. Every call copies the device data
// into pinned host memory (cudaMemcpyAsync on the bench's stream, then
// cudaStreamSynchronize), runs the MPI collective of the mpi path on it, and copies
// the result back, one step after another. host_only() runs that MPI collective
// alone on the same pinned buffers, so both comparisons are visible.
//
// The pinned buffers grow to the largest call; a sweep's first call at each size is
// its correctness check, so no allocation lands in a timed loop.
#include <cstdio>
#include <string>

#include "cuda_check.h"
#include "staged_raw.h"

namespace bench {
namespace {

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { Release(); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  char* Reserve(size_t bytes) {
    if (bytes > bytes_) {
      Release();
      void* p = nullptr;
      BENCH_CUDA(cudaMallocHost(&p, bytes));
      data_ = static_cast<char*>(p);
      bytes_ = bytes;
    }
    return data_;
  }
  char* data() const { return data_; }

 private:
  void Release() {
    if (data_ == nullptr) return;
    const cudaError_t rc = cudaFreeHost(data_);
    if (rc != cudaSuccess) {
      std::fprintf(stderr, "braid-bench: warning: %s\n", CudaMessage("cudaFreeHost", rc).c_str());
    }
    data_ = nullptr;
    bytes_ = 0;
  }
  char* data_ = nullptr;
  size_t bytes_ = 0;
};

// The MPI collectives alone on StagedRaw's pinned buffers (the pointers passed are
// ignored: they are the device buffers of the staged call).
class HostOnly final : public RawPath {
 public:
  HostOnly(RawPath& mpi, PinnedBuffer& in, PinnedBuffer& out) : mpi_(mpi), in_(in), out_(out) {}
  const char* kind() const override { return "mpi"; }
  std::string Describe(Collective c) const override { return mpi_.Describe(c); }
  void Allreduce(void*, int64_t count) override { mpi_.Allreduce(in_.data(), count); }
  void Allgather(const void*, void*, int64_t count) override {
    mpi_.Allgather(in_.data(), out_.data(), count);
  }
  void Broadcast(void*, int64_t count, int root) override {
    mpi_.Broadcast(in_.data(), count, root);
  }

 private:
  RawPath& mpi_;
  PinnedBuffer& in_;
  PinnedBuffer& out_;
};

class StagedRaw final : public RawPath {
 public:
  StagedRaw(MPI_Comm comm, const DType& dtype, int op, CudaMemory& memory)
      : dtype_(dtype),
        memory_(memory),
        mpi_(MakeMpiRaw(comm, dtype, op)),
        host_only_(*mpi_, in_, out_) {
    MPI_Comm_rank(comm, &rank_);
    MPI_Comm_size(comm, &ranks_);
  }

  const char* kind() const override { return "staged"; }
  std::string Describe(Collective c) const override {
    return "cudaMemcpyAsync device to pinned host + " + mpi_->Describe(c) +
           " + cudaMemcpyAsync host to device, each followed by cudaStreamSynchronize";
  }

  void Allreduce(void* data, int64_t count) override {
    const size_t bytes = Bytes(count);
    ToHost(in_.Reserve(bytes), data, bytes);
    mpi_->Allreduce(in_.data(), count);
    ToDevice(data, in_.data(), bytes);
  }
  void Allgather(const void* input, void* output, int64_t count) override {
    const size_t bytes = Bytes(count);
    ToHost(in_.Reserve(bytes), input, bytes);
    out_.Reserve(bytes * ranks_);
    mpi_->Allgather(in_.data(), out_.data(), count);
    ToDevice(output, out_.data(), bytes * ranks_);
  }
  // The root copies its data out, the others copy the result in.
  void Broadcast(void* data, int64_t count, int root) override {
    const size_t bytes = Bytes(count);
    in_.Reserve(bytes);
    if (rank_ == root) ToHost(in_.data(), data, bytes);
    mpi_->Broadcast(in_.data(), count, root);
    if (rank_ != root) ToDevice(data, in_.data(), bytes);
  }

  RawPath* host_only() override { return &host_only_; }

 private:
  size_t Bytes(int64_t count) const { return static_cast<size_t>(count) * dtype_.size; }
  void ToHost(void* host, const void* device, size_t bytes) {
    if (bytes == 0) return;
    BENCH_CUDA(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, memory_.cuda_stream()));
    BENCH_CUDA(cudaStreamSynchronize(memory_.cuda_stream()));
  }
  void ToDevice(void* device, const void* host, size_t bytes) {
    if (bytes == 0) return;
    BENCH_CUDA(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, memory_.cuda_stream()));
    BENCH_CUDA(cudaStreamSynchronize(memory_.cuda_stream()));
  }

  const DType& dtype_;
  CudaMemory& memory_;
  int rank_ = 0;
  int ranks_ = 1;
  std::unique_ptr<RawPath> mpi_;
  PinnedBuffer in_;   // the data, or an allgather's input
  PinnedBuffer out_;  // an allgather's output
  HostOnly host_only_;
};

}  // namespace

std::unique_ptr<RawPath> MakeStagedRaw(MPI_Comm comm, const DType& dtype, int op,
                                       CudaMemory& memory) {
  return std::make_unique<StagedRaw>(comm, dtype, op, memory);
}

}  // namespace bench
