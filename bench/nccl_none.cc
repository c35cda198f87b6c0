// A build with CUDA but without NCCL: the raw path on GPU buffers is always the
// staged one (cuda_setup.cc).
#include "staged_raw.h"

namespace bench {

bool NcclRawBuilt() {
  return false;
}

std::string MakeNcclRaw(MPI_Comm, const DType&, int, CudaMemory&, std::unique_ptr<RawPath>*) {
  return "this braid-bench was built without NCCL";
}

}  // namespace bench
