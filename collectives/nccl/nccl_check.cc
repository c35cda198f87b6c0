#include "collectives/nccl/nccl_check.h"

#include <string>

namespace braid {
namespace nccl {

std::string NcclErrorText(ncclResult_t code) {
  std::string text = std::string(ncclGetErrorString(code)) + " (NCCL error " +
                     std::to_string(static_cast<int>(code)) + ")";
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 13, 0)
  // The calling thread's last NCCL message (the communicator argument is unused by
  // NCCL); it names the argument or the peer that failed.
  const char* last = ncclGetLastError(nullptr);
  if (last != nullptr && last[0] != '\0') text += ": " + std::string(last);
#endif
  return text;
}

Status NcclError(ncclResult_t code, const char* call, const char* file, int line) {
  return BackendError(std::string(file) + ":" + std::to_string(line) + ": " + call +
                      " failed: " + NcclErrorText(code));
}

}  // namespace nccl
}  // namespace braid
