#!/usr/bin/env bash
# The GPU checks, on a machine with a CUDA GPU, the CUDA toolkit, NCCL, Open MPI,
# pybind11 and torch (nothing is installed: such machines often have no registry).
# Builds braid with CUDA, NCCL and the Python extension into BUILD_DIR (default
# build-gpu), then runs, each step's summary on stdout:
#   tests    ctest -L gpu (NCCL at np 1, host-staged with 1-4 ranks on one GPU),
#            and the Python GPU suite at np 1 (NCCL) and np 2 (sharing the GPU)
#   bench    braid-bench --device cuda: the pack/unpack kernels, NCCL at np 1,
#            host-staged at np 2
#   example  the Fashion-MNIST example with --device cuda at np 1 and np 2
#   placement the live placement table (GPUs found through hwloc) and the host-staged
#            GPU allreduce at np 2 with BRAID_BIND=cores against none
# Usage: bash scripts/test_gpu.sh [tests] [bench] [example] [placement]   (default: all)
# FASHION_MNIST_DIR points at the dataset (default: Debian's location).
# Build with the system compiler the Python interpreter was built with: a compiler
# that links its own libstdc++ statically into libbraid (a toolchain under /opt, say)
# makes braid.init() crash inside Python. There: CXX=/usr/bin/g++ CC=/usr/bin/gcc
# CUDAHOSTCXX=/usr/bin/g++. As root, Open MPI also wants OMPI_ALLOW_RUN_AS_ROOT=1 and
# OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build-gpu}"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(tests bench example placement)
python="$(command -v python3)"
mpi=(mpirun --oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
status=0

build_braid() {
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DBRAID_WITH_CUDA=ON \
    -DBRAID_WITH_NCCL=ON -DBRAID_BUILD_PYTHON=ON -DPython_EXECUTABLE="$python" >/dev/null || return 1
  cmake --build "$build" -j "$(nproc)" >"$build/build.log" 2>&1 ||
    { tail -30 "$build/build.log"; return 1; }
  # The package as `pip install .` lays it out: the extension, libbraid and the
  # CUDA plugin next to the Python sources.
  pkg="$build/python-package"
  rm -rf "$pkg" && mkdir -p "$pkg/braid/bin"
  cp -r "$root/bindings/python/braid/." "$pkg/braid/"
  cp "$build"/bindings/python/_C*.so "$build"/libbraid.so* "$build"/libbraid_cuda.so "$pkg/braid/"
  cp "$build/bench/braid-bench" "$pkg/braid/bin/"
  export PYTHONPATH="$pkg${PYTHONPATH:+:$PYTHONPATH}"
}

run_tests() {
  (cd "$build" && ctest -L gpu --output-on-failure) || status=1
  for np in 1 2; do
    echo "== Python GPU suite, np $np"
    "${mpi[@]}" -np "$np" "$python" -m pytest -q -p no:cacheprovider -m gpu \
      "$root/tests/python/test_torch_gpu.py" "$root/tests/python/test_torch_restart.py" \
      "$root/tests/python/test_compress.py" "$root/tests/python/test_sparse_ops.py" \
      "$root/tests/python/test_gossip_ops.py" ||
      status=1
  done
}

run_bench() {
  local bench="$build/bench/braid-bench"
  "${mpi[@]}" -np 1 "$bench" --device cuda --kernels || status=1
  "${mpi[@]}" -np 1 "$bench" --device cuda -b 1M || status=1
  "${mpi[@]}" -np 1 "$bench" --device cuda --fusion || status=1
  "${mpi[@]}" -np 2 "$bench" --device cuda -b 1M || status=1
  "${mpi[@]}" -np 2 "$bench" --device cuda --fusion || status=1
  "${mpi[@]}" -np 1 "$bench" --device cuda -c neighbor -b 1M -e 64M -f 4 || status=1
  "${mpi[@]}" -np 2 "$bench" --device cuda -c neighbor -b 1M -e 64M -f 4 || status=1
}

run_example() {
  local data="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
  for np in 1 2; do
    echo "== examples/pytorch_fashion_mnist.py --device cuda, np $np"
    # The progress bars go to stderr: kept in a log, shown when the run fails.
    "${mpi[@]}" -np "$np" "$python" "$root/examples/pytorch_fashion_mnist.py" --device cuda \
      --data-dir "$data" 2>"$build/example.np$np.log" ||
      { status=1; tail -20 "$build/example.np$np.log"; }
  done
}

run_placement() {
  echo "== braidrun --print-placement -np 2 (this machine)"
  "$python" -m braid.runner --print-placement -np 2 || status=1
  local bench="$build/bench/braid-bench"
  for bind in cores none; do
    echo "== host-staged GPU allreduce, np 2, BRAID_BIND=$bind"
    BRAID_BIND=$bind BRAID_LOG_LEVEL=info "${mpi[@]}" -np 2 -x BRAID_BIND -x BRAID_LOG_LEVEL \
      "$bench" --device cuda -b 64K -e 64M -f 4 || status=1
  done
}

build_braid || exit 1
for step in "${steps[@]}"; do
  case "$step" in
    tests) run_tests ;;
    bench) run_bench ;;
    example) run_example ;;
    placement) run_placement ;;
    *) echo "test_gpu.sh: unknown step '$step' (tests, bench, example, placement)" >&2; exit 2 ;;
  esac
done
exit $status
