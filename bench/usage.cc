#include "options.h"

namespace bench {

std::string Usage() {
  return "usage: mpirun -np N braid-bench [options]\n"
         "\n"
         "Times braid's engine path (braid_*_async + braid_wait) against the raw MPI\n"
         "collective on the same buffer, in the same run, and prints nccl-tests columns\n"
         "for both with the ratio engine busbw / raw busbw.\n"
         "\n"
         "modes:\n"
         "  (default)                 size sweep of --collective\n"
         "  --fusion                  K allreduces of S bytes submitted together, against\n"
         "                            K separate MPI_Allreduce calls and one of K*S bytes\n"
         "\n"
         "options (a value may follow as the next word or after '='):\n"
         "  -c, --collective NAME     allreduce (default), allgather, broadcast\n"
         "  -b, --min-bytes SIZE      smallest size, default 4 (suffixes K, M, G: x1024)\n"
         "  -e, --max-bytes SIZE      largest size, default 256M\n"
         "  -f, --step-factor N       size multiplier between rows, default 2\n"
         "  -d, --dtype TYPE          float32 (default), float64, float16, bfloat16, int32,\n"
         "                            int64, int8, uint8 (also float, double, half, bf16)\n"
         "  -o, --op OP               allreduce op: sum (default), avg, min, max, prod\n"
         "  -r, --root RANK           broadcast root, default 0\n"
         "  -w, --warmup N            warmup calls per size and path, default 5\n"
         "  -n, --iters N             timed calls per round; default adaptive: about\n"
         "                            --target-seconds per size and path in all rounds,\n"
         "                            5 to 1000 calls, split evenly over the rounds\n"
         "      --rounds N            interleaved measurement rounds per path, default 3\n"
         "      --target-seconds S    adaptive timing budget per size and path, default 0.3\n"
         "      --fusion-count K      tensors in --fusion mode, default 200\n"
         "      --fusion-bytes SIZE   bytes per tensor in --fusion mode, default 64K\n"
         "  -J, --json FILE           write every row as JSON (rank 0)\n"
         "  -h, --help                print this text\n"
         "\n"
         "Sizes are bytes per rank for allreduce and broadcast and total output bytes for\n"
         "allgather (as nccl-tests; count is then the elements each rank sends). #wrong\n"
         "counts elements, over all ranks, that differ from the expected result after one\n"
         "operation on freshly filled buffers; the exit status is 1 when any #wrong is\n"
         "not 0, and 2 for a bad option.\n";
}

}  // namespace bench
