"""A rank program for test_placement.py: starts braid, runs one fused allreduce
(so the fusion buffer is touched), and prints one JSON line with what the kernel
says about its threads' CPUs next to what braid.placement() reports."""

import json
import os
import sys

import numpy as np

if os.environ.get("PROBE_PIN"):  # a narrower affinity set before braid starts
    os.sched_setaffinity(0, {int(os.environ["PROBE_PIN"])})
before = sorted(os.sched_getaffinity(0))

import braid  # noqa: E402


def thread_cpus():
    """{thread name: CPUs allowed} for this process's threads, from /proc."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                name = f.read().strip()
            out.setdefault(name, []).append(sorted(os.sched_getaffinity(int(tid))))
        except OSError:
            pass  # a thread that ended meanwhile
    return out


braid.init()
a, b = np.ones(1 << 16, np.float32), np.ones(1 << 16, np.float32)
handles = [braid.allreduce_async_(a, name="probe.a", op=braid.Sum),
           braid.allreduce_async_(b, name="probe.b", op=braid.Sum)]
for h in handles:
    braid.synchronize(h)
report = {
    "rank": braid.rank(),
    "local_rank": braid.local_rank(),
    "before": before,
    "after": sorted(os.sched_getaffinity(0)),
    "threads": thread_cpus(),
    "placement": braid.placement(),
    "sum_ok": bool(a[0] == braid.size()),
}
# One file a rank: mpirun may join lines that two ranks print at once.
with open(os.path.join(os.environ["PROBE_DIR"], f"rank{braid.rank()}.json"), "w") as f:
    json.dump(report, f)
braid.shutdown()
sys.exit(0)
