#!/usr/bin/env bash
# Installs what is missing, builds braid, and runs every test: the C++ unit tests and
# MPI tests at 1, 2, 3 and 4 ranks (ctest), then the Python suites under braidrun
# at 2 and 3 ranks (pytest).
#   scripts/test.sh              release build in build/, then the Python suites
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in
#                                build-asan/ (C++ suites only)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
extra=()
sanitize=0
if [ "${1:-}" = "--sanitize" ]; then
  sanitize=1
  export BUILD_DIR="$root/build-asan" BUILD_TYPE=RelWithDebInfo
  extra=(-DBRAID_SANITIZE=ON -DBRAID_BUILD_BENCH=OFF)
fi
bash "$root/scripts/build.sh" "${extra[@]}"
# MPI tests oversubscribe the cores, so they run one at a time.
(cd "${BUILD_DIR:-$root/build}" && ctest --output-on-failure --timeout 600 -j1)
[ "$sanitize" -eq 1 ] && exit 0
bash "$root/scripts/python_env.sh"
bash "$root/scripts/test_python.sh"
