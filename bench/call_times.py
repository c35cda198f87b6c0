"""Per-call times over the ranks, summarised: what bench/torch_path_bench.py and
bench/tf_path_bench.py share."""

import statistics

import numpy as np

import braid


def slowest(times, name):
    """Per call, the largest time over the ranks (every rank timed as many calls)."""
    every = braid.allgather(np.asarray(times, np.float64), name=name)
    return every.reshape(braid.size(), -1).max(0).tolist()


def summary(seconds, unit):
    """Median, 10th and 90th percentiles of `seconds` in `unit` ("us" or "ms")."""
    scale = {"us": 1e6, "ms": 1e3}[unit]
    xs = sorted(scale * t for t in seconds)
    q = statistics.quantiles(xs, n=10, method="inclusive") if len(xs) > 1 else xs * 9
    return {"median": statistics.median(xs), "p10": q[0], "p90": q[-1], "n": len(xs),
            "unit": unit}
