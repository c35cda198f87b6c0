#!/usr/bin/env bash
# Installs what is missing, builds braid, and runs every test: unit tests and the
# MPI tests at 1, 2, 3 and 4 ranks.
#   scripts/test.sh              release build in build/
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
extra=()
if [ "${1:-}" = "--sanitize" ]; then
  export BUILD_DIR="$root/build-asan" BUILD_TYPE=RelWithDebInfo
  extra=(-DBRAID_SANITIZE=ON -DBRAID_BUILD_BENCH=OFF)
fi
bash "$root/scripts/build.sh" "${extra[@]}"
cd "${BUILD_DIR:-$root/build}"
# MPI tests oversubscribe the cores, so they run one at a time.
ctest --output-on-failure --timeout 600 -j1
