#!/usr/bin/env bash
# Installs what is missing, builds braid, and runs every test: the C++ unit tests and
# MPI tests at 1, 2, 3 and 4 ranks (ctest), the libFuzzer targets (scripts/fuzz.sh),
# then the Python suites under braidrun at 2 and 3 ranks (pytest).
#   scripts/test.sh              release build in build/, fuzzers in build-fuzz/, then
#                                the Python suites
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in
#                                build-asan/ (C++ suites only)
#   scripts/test.sh --tsan       ThreadSanitizer build in build-tsan/ (C++ suites only;
#                                see docs/testing.md)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mode="${1:-}"
extra=()
case "$mode" in
  "") ;;
  --sanitize)
    export BUILD_DIR="$root/build-asan" BUILD_TYPE=RelWithDebInfo
    extra=(-DBRAID_SANITIZE=ON -DBRAID_BUILD_BENCH=OFF)
    ;;
  --tsan)
    export BUILD_DIR="$root/build-tsan" BUILD_TYPE=RelWithDebInfo
    extra=(-DBRAID_TSAN=ON -DBRAID_WITH_CUDA=OFF -DBRAID_BUILD_BENCH=OFF)
    # TSan slows the suites down five to ten times. The arithmetic matrices (the
    # allreduce suite's every dtype x op x size and large tensors of every dtype, the
    # dtype suite's Horovod scaling per dtype) run the same threads as the other cases
    # with more bytes: they are left to the release and ASan runs, which keeps this
    # run near 15 minutes on two cores. Under TSan's memory layout a 1 TiB mmap fails
    # now and then (in about one run of five), so the test that reserves one is left
    # out too.
    export GTEST_FILTER='-AllDtypesAllOps/*:*LargeTensorsEveryDtype:Dtypes/HorovodScalingTest.*:PrefaultedBuffer.AHugeCapacityCostsNothingUntilUsed'
    ;;
  *)
    echo "usage: scripts/test.sh [--sanitize | --tsan]" >&2
    exit 2
    ;;
esac
bash "$root/scripts/build.sh" "${extra[@]}"
# MPI tests oversubscribe the cores, so they run one at a time.
(cd "${BUILD_DIR:-$root/build}" && ctest --output-on-failure --timeout 600 -j1)
[ -n "$mode" ] && exit 0
bash "$root/scripts/fuzz.sh"
bash "$root/scripts/python_env.sh"
bash "$root/scripts/test_python.sh"
