"""Smoke test of bench/tf_path_bench.py: every measurement runs, with a few calls and
steps, and gives a result of the expected form. Timings are only printed by the
benchmark, never checked here."""

import os
import sys

import pytest

tf = pytest.importorskip("tensorflow")

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench")


def test_tf_path_bench_runs(tfhvd, tf_world):
    sys.path.insert(0, BENCH)
    try:
        import tf_path_bench as bench
    finally:
        sys.path.remove(BENCH)
    args = bench.parse_args(["--rounds", "1", "--small-calls", "3", "--many-iters", "1",
                             "--step-steps", "2", "--batch-size", "4"])
    results = bench.run(args)
    assert results["ranks"] == tf_world[1]
    for part, paths in (("small", ("engine", "eager", "tf.function",
                                   "tf.function, no collective")),
                        ("many", ("engine", "eager", "tf.function")),
                        ("step", ("DistributedGradientTape", "no communication"))):
        for path in paths:
            s = results[part][path]
            assert s["n"] > 0 and 0 < s["p10"] <= s["median"] <= s["p90"]
    assert results["step"]["parameters"] > 100000
