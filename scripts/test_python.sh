#!/usr/bin/env bash
# The Python suites: the launcher's own tests in one process, then every other test
# under `braidrun -np 2` and `braidrun -np 3`. Prints one closing line with the
# totals (rank 0's results of each run). Expects scripts/python_env.sh to have run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${BRAID_VENV:-$root/.venv}"
export PATH="$venv/bin:$PATH" OMP_NUM_THREADS=1
# A rank that diverges becomes an error on every rank instead of a hang.
export BRAID_STALL_TIMEOUT_SECONDS="${BRAID_STALL_TIMEOUT_SECONDS:-120}"
results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT
cd "$root"
status=0
python -m pytest -q -p no:cacheprovider tests/python/test_braidrun.py \
  --junitxml="$results/launcher.rank0.xml" || status=1
for np in 2 3; do
  echo "== pytest under braidrun -np $np"
  # Each rank writes its own report; rank 0's is counted.
  braidrun -np "$np" sh -c 'exec python -m pytest -q -p no:cacheprovider tests/python \
      --ignore=tests/python/test_braidrun.py \
      --junitxml="$0/np$1.rank${OMPI_COMM_WORLD_RANK}.xml"' "$results" "$np" || status=1
done
python "$root/scripts/junit_summary.py" "$results"/*.rank0.xml || status=1
exit $status
