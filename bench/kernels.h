// --device cuda --kernels: braid's batched pack/unpack kernels
// (collectives/cuda/batched_copy.h, the copies of the GPU data plane's fusion
// buffer) against one cudaMemcpyAsync device to device of the same total bytes,
// on rank 0's GPU (start it with one rank).
//
// Shapes (COUNT tensors of BYTES each): 200 x 256 KiB, 20 x 16 MiB, 1000 x 4 KiB,
// 5000 x 1 KiB, or the one --count x --bytes. The tensors sit at 256-byte aligned
// offsets of one allocation (as separate allocations would); the fusion buffer
// holds them back to back. Ops per shape:
//   memcpy      one cudaMemcpyAsync of all the bytes: the reference
//   pack        tensors -> fusion buffer;  pack x0.5: with a prescale of 0.5
//   unpack      fusion buffer -> tensors;  unpack /3: averaged over 3 (factor 1/3
//               for floating types, integer division otherwise)
//   N x memcpy  one cudaMemcpyAsync per tensor: what one kernel launch replaces
// Time: median over --rounds rounds of --iters calls (default 20) between two
// cudaEvents on the bench's stream, after --warmup calls. GB/s counts the bytes
// copied once (not read plus write); ratio is memcpy's time over the op's. Each
// kernel op's output is compared once, element by element, with the host path
// (cpu::ScaleCopy, cpu::DivideBy) on the same input: #wrong.
#ifndef BRAID_BENCH_KERNELS_H_
#define BRAID_BENCH_KERNELS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "memory.h"
#include "options.h"

namespace bench {

// Calls per round: --iters, or 20.
inline int KernelIters(const Options& o) {
  return o.iters > 0 ? o.iters : 20;
}

struct KernelRow {
  int64_t tensors = 0;
  int64_t tensor_bytes = 0;
  std::string op;
  double time_us = 0;
  double gbps = 0;   // total bytes / time, 1e9 bytes per second
  double ratio = 0;  // memcpy time / this op's time
  int64_t wrong = 0;
};

// Runs every shape on `memory`'s device and stream and prints the rows as they
// come. Returns false with *error set when the kernels cannot run there.
bool RunKernels(const Options& options, Memory& memory, std::vector<KernelRow>* rows,
                std::string* error);

// The table (kernels_report.cc).
void PrintKernelHeader(const std::string& device, const Options& options);
void PrintKernelRow(const KernelRow& row);
void PrintKernelSummary(const std::vector<KernelRow>& rows);
std::string KernelJson(const std::string& device, const Options& options,
                       const std::vector<KernelRow>& rows);

}  // namespace bench

#endif  // BRAID_BENCH_KERNELS_H_
