#!/usr/bin/env bash
# killed_rank.sh SECONDS COMMAND...: runs COMMAND (killed_rank under mpiexec, with
# BRAID_HOST_BACKEND=shm) and passes when it fails within SECONDS, the shared-memory
# backend was in use, a rank was killed, and /dev/shm holds no braid segment that
# was not there before.
set -u
seconds="$1"
shift
segments() { ls /dev/shm 2>/dev/null | grep '^braid-' | sort; }
before="$(mktemp)" after="$(mktemp)" out="$(mktemp)"
trap 'rm -f "$before" "$after" "$out"' EXIT
segments >"$before"
start=$SECONDS
BRAID_LOG_LEVEL=debug timeout --kill-after=10 "$seconds" "$@" >"$out" 2>&1
rc=$?
elapsed=$((SECONDS - start))
segments >"$after"
grep -v 'DEBUG' "$out"
grep -m1 'host backend:' "$out"
echo "killed_rank: exit $rc after ${elapsed}s (want a failure within ${seconds}s)"
fail() { echo "killed_rank: FAILED: $*"; exit 1; }
[ "$rc" -ne 0 ] || fail "the job succeeded"
# mpiexec passes on the killed rank's status (137); only the time tells a hang.
[ "$rc" -ne 124 ] && [ "$elapsed" -lt "$seconds" ] || fail "the job hung until the timeout"
grep -q 'host backend: shm' "$out" || fail "the shared-memory backend was not in use"
grep -q 'sending SIGKILL' "$out" || fail "no rank was killed"
left="$(comm -13 "$before" "$after")"
[ -z "$left" ] || fail "left in /dev/shm: $left"
echo "killed_rank: passed"
