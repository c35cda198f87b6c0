#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang with AddressSanitizer and
# UndefinedBehaviorSanitizer) in build-fuzz/ and runs each one for FUZZ_RUNS inputs
# (default 100000), starting from the committed seed corpus. Any crash, sanitizer
# report, leak or broken invariant fails the run and leaves the input that did it
# in build-fuzz/fuzz-artifacts/.
#   scripts/fuzz.sh                 every target
#   scripts/fuzz.sh fuzz_wire       one target
#   FUZZ_RUNS=1000000 scripts/fuzz.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
runs="${FUZZ_RUNS:-100000}"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_wire fuzz_config)

bash "$root/scripts/setup.sh"
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBRAID_FUZZ=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"

artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
for target in "${targets[@]}"; do
  seeds="$root/tests/fuzz/corpus/${target#fuzz_}"
  # New inputs go to a scratch directory (the first corpus argument), so the
  # committed corpus only changes by hand.
  work="$(mktemp -d)"
  log="$build/$target.log"
  start=$SECONDS
  if ! "$build/tests/fuzz/$target" -runs="$runs" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts/$target-" "$work" "$seeds" >"$log" 2>&1; then
    rm -rf "$work"
    tail -n 60 "$log"
    echo "fuzz: $target FAILED after $((SECONDS - start)) s; input in $artifacts, log in $log"
    exit 1
  fi
  rm -rf "$work"
  grep -E "^Done [0-9]+ runs" "$log" || true
  echo "fuzz: $target passed $runs runs in $((SECONDS - start)) s (coverage: $(grep -o 'cov: [0-9]*' "$log" | tail -1))"
done
