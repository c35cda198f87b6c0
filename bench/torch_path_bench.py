"""braid.torch's per-call cost beside the engine path's, and a training step beside
DDP (gloo), in one run.

    braidrun -np 2 python bench/torch_path_bench.py [--json out.json]

Three comparisons; within each, both paths run in the same processes, on the same
engine, tensors and operation names, alternating round by round:

1. one 4-byte allreduce, one after another: `hvd.allreduce_(t, name=...)` (submit,
   then synchronize) against the engine path, `braid._C._engine_allreduce_loop`,
   which enqueues the same request into the same engine and waits for it in C++
   without the GIL (no Python per call);
2. 200 tensors of 64 KiB: `hvd.allreduce_async_` on each, then `hvd.synchronize` on
   each, against `braid._C._engine_allreduce_batch` (the same in C++);
3. one training step of the Fashion-MNIST CNN on synthetic images: braid's
   DistributedOptimizer against DistributedDataParallel over gloo, with the same
   model, batch and threads (bench/torch_step_compare.py), and the step without
   communication as a reference.

Every rank times every call (round, step); a call's time is the slowest rank's.
Medians with 10th and 90th percentiles over all rounds; ratios are of medians.
"""

import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist

import braid
import braid.torch as hvd
import braid.torch.optimizer as _optimizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import call_times  # noqa: E402
import torch_step_compare as step_compare  # noqa: E402

SMALL = "bench.small"  # braid.torch names get the prefix "allreduce."
MANY = 200
MANY_ELEMENTS = 16384  # float32: 64 KiB


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    p.add_argument("--small-calls", type=int, default=1000,
                   help="4-byte allreduces per path per round (default 1000)")
    p.add_argument("--many-iters", type=int, default=10,
                   help="200 x 64 KiB batches per path per round (default 10)")
    p.add_argument("--step-steps", type=int, default=40,
                   help="timed training steps per path per round (default 40)")
    p.add_argument("--step-rounds", type=int, default=3, help="training rounds (default 3)")
    p.add_argument("--step-warmup", type=int, default=10,
                   help="untimed steps per path (default 10)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per rank (default 64)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per rank (default 1)")
    p.add_argument("--parts", default="small,many,step",
                   help="what to measure, comma-separated (default small,many,step)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return p.parse_args(argv)


def slowest(times):
    """Per call, the largest time over the ranks."""
    return call_times.slowest(times, "bench.times")


summary = call_times.summary


def torch_small(t, calls):
    """`calls` blocking in-place allreduces through braid.torch; (total, submit) seconds
    of each."""
    total, submit = [], []
    for _ in range(calls):
        t0 = time.perf_counter()
        h = hvd.allreduce_async_(t, name=SMALL)
        t1 = time.perf_counter()
        hvd.synchronize(h)
        t2 = time.perf_counter()
        total.append(t2 - t0)
        submit.append(t1 - t0)
    return total, submit


def engine_small(t, calls):
    return braid._C._engine_allreduce_loop(t, calls, "allreduce." + SMALL)


def torch_many(tensors, names, iters):
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        handles = [hvd.allreduce_async_(t, name=n) for t, n in zip(tensors, names)]
        for h in handles:
            hvd.synchronize(h)
        out.append(time.perf_counter() - t0)
    return out


def engine_many(tensors, names, iters):
    return braid._C._engine_allreduce_batch(tensors, ["allreduce." + n for n in names], iters)


def measure_small(args):
    """Per-call seconds (slowest rank) of the engine path and of braid.torch, and
    braid.torch's submit time alone."""
    t = torch.ones(1)
    engine_small(t, 100)  # warm: the response is cached from here on
    torch_small(t, 100)
    eng, tor, sub = [], [], []
    for _ in range(args.rounds):
        eng += engine_small(t, args.small_calls)
        total, submit = torch_small(t, args.small_calls)
        tor += total
        sub += submit
    return {"engine": summary(slowest(eng), "us"), "braid.torch": summary(slowest(tor), "us"),
            "braid.torch submit": summary(slowest(sub), "us")}


def measure_many(args):
    tensors = [torch.ones(MANY_ELEMENTS) for _ in range(MANY)]
    names = ["bench.many.%d" % i for i in range(MANY)]
    engine_many(tensors, names, 2)
    torch_many(tensors, names, 2)
    eng, tor = [], []
    for _ in range(args.rounds):
        eng += engine_many(tensors, names, args.many_iters)
        tor += torch_many(tensors, names, args.many_iters)
    return {"engine": summary(slowest(eng), "ms"), "braid.torch": summary(slowest(tor), "ms")}


def measure_step(args):
    """The training step (torch_step_compare.compare) with its defaults but ours."""
    step_args = step_compare.parse_args([
        "--synthetic", "--batch-size", str(args.batch_size), "--threads", str(args.threads),
        "--warmup", str(args.step_warmup), "--steps", str(args.step_steps),
        "--rounds", str(args.step_rounds)])
    created = not dist.is_initialized()
    if created:
        step_compare.init_torch_distributed(step_args.master_addr)
    try:
        stats, _, _, nparams = step_compare.compare(
            step_args, (step_compare.BraidPath, step_compare.DDPPath,
                        step_compare.BraidOverlapPath, step_compare.LocalPath))
    finally:
        if created:
            dist.destroy_process_group()
    out = {name: dict(s, median=s["median_ms"], p10=s["p10_ms"], p90=s["p90_ms"], n=s["steps"],
                      unit="ms") for name, s in stats.items()}
    out["parameters"] = nparams
    # What DistributedOptimizer(overlap=None) chooses for host parameters here.
    out["braid overlaps backward"] = _optimizer._overlap_default([])
    return out


def row(what, a, b, relation):
    unit = a["unit"]
    if relation == "diff":
        rel = "%+.1f %s" % (b["median"] - a["median"], unit)
    else:
        rel = "%.3f" % (b["median"] / a["median"])
    return "%-34s %8.1f (%5.1f-%5.1f) %8.1f (%5.1f-%5.1f)  %s" % (
        what + " [" + unit + "]", a["median"], a["p10"], a["p90"], b["median"], b["p10"],
        b["p90"], rel)


def report(results, args):
    print("braid.torch against the engine path, and a training step against DDP (gloo): "
          "%d ranks, %d torch thread(s) per rank; medians (p10-p90) of the slowest rank"
          % (hvd.size(), args.threads))
    print()
    small, many, step = results.get("small"), results.get("many"), results.get("step")
    if small or many:
        print("%-34s %24s %24s  %s" % ("", "engine path (C++)", "braid.torch",
                                       "braid.torch vs engine"))
    if small:
        print(row("4-byte allreduce, per call", small["engine"], small["braid.torch"], "diff"))
        sub = small["braid.torch submit"]
        print("%-34s %24s %8.1f (%5.1f-%5.1f)" % ("  of which braid.torch submit [us]", "",
                                                sub["median"], sub["p10"], sub["p90"]))
    if many:
        print(row("200 x 64 KiB, submit + wait all", many["engine"], many["braid.torch"],
                  "ratio"))
    if step:
        print()
        print("%-34s %24s %24s  %s" % ("", "DDP (gloo)", "braid.torch", "braid / DDP"))
        print(row("training step (%d parameters)" % step["parameters"],
                  step[step_compare.DDPPath.name], step[step_compare.BraidPath.name], "ratio"))
        ddp = step[step_compare.DDPPath.name]
        print(row("  braid.torch with overlap=True", ddp,
                  step[step_compare.BraidOverlapPath.name], "ratio"))
        local = step[step_compare.LocalPath.name]
        print("%-34s %8.1f (%5.1f-%5.1f)" % ("  the step without communication [ms]",
                                           local["median"], local["p10"], local["p90"]))
        overlap = step["braid overlaps backward"]
        print("  braid's DistributedOptimizer default here: overlap=%s" % overlap)


def run(args):
    """The measurements `args.parts` names; collective. Returns the results (the same
    keys on every rank)."""
    parts = set(args.parts.split(","))
    unknown = parts - {"small", "many", "step"}
    if unknown:
        raise SystemExit("--parts: unknown %s (small, many, step)" % ", ".join(sorted(unknown)))
    results = {"ranks": hvd.size(), "threads": args.threads}
    for part, measure in (("small", measure_small), ("many", measure_many),
                          ("step", measure_step)):
        if part in parts:
            results[part] = measure(args)
    return results


def main(argv=None):
    args = parse_args(argv)
    hvd.init()
    torch.set_num_threads(args.threads)
    results = run(args)
    if hvd.rank() == 0:
        report(results, args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
            print("wrote %s" % args.json)


if __name__ == "__main__":
    main()
