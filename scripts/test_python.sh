#!/usr/bin/env bash
# The Python suites: the launcher's own tests and the whole-job fault tests in one
# process each, then every other test
# under `braidrun -np 2` and `braidrun -np 3`, and the restart algorithms' and
# decentralized SGD's suites also at -np 4 (their references simulate N = 2, 3 and 4
# workers). Prints one
# closing line with the totals (rank 0's results of each run). Expects scripts/python_env.sh to have run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${BRAID_VENV:-$root/.venv}"
export PATH="$venv/bin:$PATH" OMP_NUM_THREADS=1
# The TensorFlow suites (tests/python/test_tf_*.py) must run, not skip; quiet
# TensorFlow's C++ start-up messages.
export BRAID_TEST_REQUIRE_TENSORFLOW=1 TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
# A rank that diverges becomes an error on every rank instead of a hang.
export BRAID_STALL_TIMEOUT_SECONDS="${BRAID_STALL_TIMEOUT_SECONDS:-120}"
# No run may take the whole CI budget: each job below is ended after this long
# (a suite at -np 3 takes under a minute on two cores; four jobs at this limit
# still leave the CI run within its time).
run_limit="${BRAID_TEST_RUN_LIMIT_SECONDS:-600}"
results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT
cd "$root"
status=0
timeout -k 30 "$run_limit" python -m pytest -q -p no:cacheprovider tests/python/test_braidrun.py \
  --junitxml="$results/launcher.rank0.xml" || status=1
# Whole-job faults (a rank killed, raising, frozen, silent; bad settings): each
# test starts and checks its own job.
echo "== pytest tests/python/test_placement.py"
timeout -k 30 "$run_limit" python -m pytest -q -p no:cacheprovider tests/python/test_placement.py \
  --junitxml="$results/placement.rank0.xml" || status=1
echo "== pytest tests/faults"
timeout -k 30 "$run_limit" python -m pytest -q -p no:cacheprovider tests/faults \
  --junitxml="$results/faults.rank0.xml" || status=1
run_under() {  # NP TAG PYTEST-ARGS...: each rank writes its own report; rank 0's counts
  local np="$1" tag="$2"
  shift 2
  echo "== pytest under braidrun -np $np: $*"
  timeout -k 30 "$run_limit" braidrun -np "$np" sh -c 'exec python -m pytest -q -p no:cacheprovider "$@" \
      --junitxml="$0.rank${OMPI_COMM_WORLD_RANK}.xml"' "$results/$tag" "$@" || {
    local rc=$?
    [ "$rc" -eq 124 ] && echo "== the run under braidrun -np $np was ended after $run_limit s"
    status=1
  }
}
for np in 2 3; do
  run_under "$np" "np$np" tests/python --ignore=tests/python/test_braidrun.py \
    --ignore=tests/python/test_placement.py
done
run_under 4 restart.np4 tests/python/test_torch_restart.py tests/python/test_torch_restart_slowmo.py
# Decentralized SGD at a power of two above 2 (the one-peer graph's exact consensus).
run_under 4 gossip.np4 tests/python/test_gossip_ops.py
python "$root/scripts/junit_summary.py" "$results"/*.rank0.xml || status=1
exit $status
