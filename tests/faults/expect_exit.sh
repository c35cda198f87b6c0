#!/usr/bin/env bash
# expect_exit.sh CODE PATTERN SECONDS COMMAND...: runs COMMAND, and passes when it
# exits with CODE within SECONDS and its output matches the extended regular
# expression PATTERN. Prints the output either way.
set -u
code="$1" pattern="$2" seconds="$3"
shift 3
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
start=$SECONDS
timeout --kill-after=10 "$seconds" "$@" >"$out" 2>&1
rc=$?
elapsed=$((SECONDS - start))
cat "$out"
echo "expect_exit: exit $rc after ${elapsed}s (want $code within ${seconds}s)"
[ "$rc" -eq "$code" ] || { echo "expect_exit: FAILED: exit code"; exit 1; }
grep -Eq "$pattern" "$out" || { echo "expect_exit: FAILED: no output matches '$pattern'"; exit 1; }
echo "expect_exit: passed"
