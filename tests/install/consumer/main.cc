// Uses the installed C API: before init the queries report -1 and ops are refused.
#include <braid/braid.h>
#include <braid/config.h>

#include <cstdio>

int main() {
  braid_handle_t h = nullptr;
  int64_t shape[1] = {1};
  float x = 1;
  braid_tensor_t t = {&x, BRAID_FLOAT32, 1, shape, BRAID_DEVICE_CPU, nullptr};
  int rc = braid_allreduce_async("x", &t, &x, BRAID_SUM, 1, 1, &h);
  std::printf("braid %s: rank %d, allreduce before init -> %d (%s)\n", BRAID_VERSION, braid_rank(),
              rc, braid_last_error());
  return (braid_rank() == -1 && rc == BRAID_ERR_NOT_INITIALIZED) ? 0 : 1;
}
