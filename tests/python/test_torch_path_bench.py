"""Smoke test of bench/torch_path_bench.py: every measurement runs, with a few calls
and steps, and gives a result of the expected form. Timings are only printed by the
benchmark, never checked here."""

import os
import sys

import pytest

torch = pytest.importorskip("torch")

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench")


def test_torch_path_bench_runs(hvd, world, capsys):
    sys.path.insert(0, BENCH)
    try:
        import torch_path_bench as bench
    finally:
        sys.path.remove(BENCH)
    args = bench.parse_args(["--rounds", "1", "--small-calls", "3", "--many-iters", "1",
                             "--step-steps", "2", "--step-rounds", "1", "--step-warmup", "1"])
    results = bench.run(args)
    for part, paths in (("small", ("engine", "braid.torch", "braid.torch submit")),
                        ("many", ("engine", "braid.torch"))):
        for path in paths:
            s = results[part][path]
            assert s["n"] > 0 and 0 < s["p10"] <= s["median"] <= s["p90"]
    step = results["step"]
    assert step["parameters"] > 0
    for name in ("braid DistributedOptimizer", "torch DDP (gloo)", "local (no communication)"):
        assert step[name]["median"] > 0
    if hvd.rank() == 0:
        bench.report(results, args)
        assert "braid.torch" in capsys.readouterr().out
