#!/usr/bin/env bash
# Installs what is missing, builds braid, and runs braid-bench on two
# ranks (engine against raw MPI_Allreduce over 4 B .. 256 MiB, then fusion mode).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/build.sh"
flags=(--oversubscribe)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
bench="${BUILD_DIR:-$root/build}/bench/braid-bench"
mpirun "${flags[@]}" -np "${NP:-2}" "$bench" "$@"
mpirun "${flags[@]}" -np "${NP:-2}" "$bench" --fusion
