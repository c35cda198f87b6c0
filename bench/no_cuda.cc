// A build without CUDA (BRAID_HAVE_CUDA 0): --device cuda says so and the bench
// exits with status 2 on every rank; --device cpu is unaffected.
#include "device.h"
#include "kernels.h"

namespace bench {
namespace {

const char kNotBuilt[] =
    "this braid-bench was built without CUDA (BRAID_HAVE_CUDA 0 in braid/config.h); "
    "rebuild with the CUDA toolkit for --device cuda";

}  // namespace

std::string SetUpCudaLocal(MPI_Comm, DeviceSetup*) {
  return kNotBuilt;
}

std::string SetUpCudaRaw(const Options&, MPI_Comm, DeviceSetup*) {
  return kNotBuilt;
}

bool RunKernels(const Options&, Memory&, std::vector<KernelRow>*, std::string* error) {
  *error = kNotBuilt;
  return false;
}

}  // namespace bench
