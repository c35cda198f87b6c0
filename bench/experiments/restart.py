"""Restart every I steps on Fashion-MNIST: PR-SGD-Momentum (I = 1 is synchronous
momentum SGD), SlowMo (tau = I) and BMUF (block of I steps) with the CNN of
examples/pytorch_fashion_mnist.py, for a fixed number of training samples in total,
whatever the number of ranks N.

One run (under the launcher; rank 0 appends one JSON line to --out):

    braidrun -np 4 python bench/experiments/restart.py --period 16 --slowmo \\
        --total-samples 240000 --out results.jsonl

The sweep (launches every configuration with braidrun, then writes a markdown table
and a PNG of the training loss against the samples processed):

    python bench/experiments/restart.py --sweep --nps 1 2 4 8 --periods 1 4 16 \\
        --total-samples 240000 --out-dir restart-results

(--methods prsgd slowmo bmuf chooses the methods; --report rewrites the table and
the plot from the out-dir's results.jsonl, e.g. after merging two sweeps.)

Each line holds the final test accuracy of the averaged model, the allreduce rounds
and the payload bytes each rank sent (braid.stats(), counted from the first training
step to the model average at the end), the training wall time (slowest rank) and the
training loss curve (mean over ranks).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "examples"))

import fashion_mnist_data as data  # noqa: E402
import training  # noqa: E402

CURVE_POINTS = 200
LINESTYLES = {"prsgd": "-", "slowmo": "--", "bmuf": ":"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--period", type=int, default=4, help="I (SlowMo: tau), default 4")
    p.add_argument("--slowmo", action="store_true", help="SlowMo instead of PR-SGD-Momentum")
    p.add_argument("--slow-lr", type=float, default=1.0, help="SlowMo alpha (default 1.0)")
    p.add_argument("--slow-momentum", type=float, default=0.5,
                   help="SlowMo beta (default 0.5)")
    p.add_argument("--bmuf", action="store_true",
                   help="BMUF with Nesterov block momentum instead of PR-SGD-Momentum")
    p.add_argument("--block-momentum", type=float, default=None,
                   help="BMUF eta (default 1 - 1/N, the paper's)")
    p.add_argument("--block-lr", type=float, default=1.0, help="BMUF zeta (default 1.0)")
    p.add_argument("--total-samples", type=int, default=240000,
                   help="training samples over all ranks together (default 4 epochs)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per rank per step")
    p.add_argument("--lr", type=float, default=0.01,
                   help="learning rate for one rank, multiplied by N (default 0.01)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data-dir", default=data.DEFAULT_DATA_DIR)
    p.add_argument("--out", default="restart_results.jsonl", help="JSON lines file (appended)")
    p.add_argument("--sweep", action="store_true", help="launch every configuration")
    p.add_argument("--nps", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--periods", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--methods", nargs="+", default=["prsgd", "slowmo"],
                   choices=["prsgd", "slowmo", "bmuf"])
    p.add_argument("--out-dir", default="restart-results",
                   help="sweep: where results.jsonl, results.md and loss.png go")
    p.add_argument("--report", action="store_true",
                   help="only rewrite results.md and loss.png from --out-dir/results.jsonl")
    return p.parse_args(argv)


# ---- one run, on every rank ----

def method_of(args):
    return "bmuf" if args.bmuf else "slowmo" if args.slowmo else "prsgd"


def build_optimizer(hvd, torch, model, args):
    opt = torch.optim.SGD(model.parameters(), lr=args.lr * hvd.size(), momentum=args.momentum)
    if args.bmuf:
        return hvd.BMUF(opt, period=args.period, block_momentum=args.block_momentum,
                        block_lr=args.block_lr, name="experiment")
    if args.slowmo:
        return hvd.SlowMo(opt, period=args.period, slow_lr=args.slow_lr,
                          slow_momentum=args.slow_momentum, name="experiment")
    return hvd.PRSGDMomentum(opt, period=args.period, name="experiment")


def train(hvd, torch, model, opt, x, y, args):
    """Local losses of this rank, one per step, and the step count."""
    steps = max(1, args.total_samples // (hvd.size() * args.batch_size))
    return training.train_steps(hvd, model, opt, x, y, args.batch_size, steps, args.seed), steps


def curve(torch, hvd, losses, args):
    """The loss averaged over ranks, per step, thinned to about CURVE_POINTS points."""
    mean = hvd.allreduce(torch.tensor(losses, dtype=torch.float64), name="curve").tolist()
    per_step = hvd.size() * args.batch_size
    stride = max(1, len(mean) // CURVE_POINTS)
    points = []
    for start in range(0, len(mean), stride):
        chunk = mean[start:start + stride]
        points.append(((start + len(chunk)) * per_step, sum(chunk) / len(chunk)))
    return {"samples": [p[0] for p in points], "loss": [p[1] for p in points]}


def run(args):
    import torch

    import braid
    import braid.torch as hvd

    hvd.init()
    torch.manual_seed(args.seed)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // hvd.local_size()))
    (x, y), (xt, yt) = data.load(args.data_dir, "train"), data.load(args.data_dir, "test")
    model = data.make_model()
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    opt = build_optimizer(hvd, torch, model, args)

    braid.reset_stats()
    start = time.perf_counter()
    losses, steps = train(hvd, torch, model, opt, x, y, args)
    if steps % args.period != 0:
        opt.restart()  # evaluate the average model, as at the end of a period
    wall = time.perf_counter() - start
    sent = braid.stats()["allreduce"]  # before the metrics' own collectives

    wall = hvd.allreduce(torch.tensor(wall), name="wall", op=hvd.Max).item()
    accuracy, test_loss = training.evaluate(hvd, torch, model, xt, yt)
    loss_curve = curve(torch, hvd, losses, args)
    if hvd.rank() == 0:
        record = {
            "np": hvd.size(), "method": method_of(args),
            "period": args.period, "total_samples": steps * hvd.size() * args.batch_size,
            "steps": steps, "batch_size": args.batch_size, "lr": args.lr * hvd.size(),
            "slow_lr": args.slow_lr if args.slowmo else None,
            "slow_momentum": args.slow_momentum if args.slowmo else None,
            "block_momentum": (1.0 - 1.0 / hvd.size() if args.block_momentum is None
                               else args.block_momentum) if args.bmuf else None,
            "block_lr": args.block_lr if args.bmuf else None,
            "test_accuracy": accuracy, "test_loss": test_loss,
            "allreduce_rounds": sent["count"], "allreduce_bytes_per_rank": sent["bytes"],
            "wall_s": wall, "loss_curve": loss_curve,
        }
        with open(args.out, "a") as f:
            f.write(json.dumps(record) + "\n")
        print("N=%d %s I=%d: test accuracy %.4f, %d allreduces, %.1f MB per rank, %.1f s"
              % (record["np"], record["method"], args.period, accuracy, sent["count"],
                 sent["bytes"] / 1e6, wall), flush=True)


# ---- the sweep, in one process ----

def sweep(args):
    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, "results.jsonl")
    for np_ in args.nps:
        for period in args.periods:
            for method in args.methods:
                cmd = [sys.executable, "-m", "braid.runner", "-np", str(np_), sys.executable,
                       os.path.abspath(__file__), "--period", str(period),
                       "--total-samples", str(args.total_samples),
                       "--batch-size", str(args.batch_size), "--lr", str(args.lr),
                       "--momentum", str(args.momentum), "--seed", str(args.seed),
                       "--slow-lr", str(args.slow_lr),
                       "--slow-momentum", str(args.slow_momentum),
                       "--data-dir", args.data_dir, "--out", out]
                if method == "slowmo":
                    cmd.append("--slowmo")
                if method == "bmuf":
                    cmd += ["--bmuf", "--block-lr", str(args.block_lr)]
                    if args.block_momentum is not None:
                        cmd += ["--block-momentum", str(args.block_momentum)]
                print("$ " + " ".join(cmd), flush=True)
                subprocess.run(cmd, check=True)
    report(args)


def report(args):
    records = [json.loads(line)
               for line in open(os.path.join(args.out_dir, "results.jsonl")) if line.strip()]
    write_table(records, os.path.join(args.out_dir, "results.md"))
    write_plot(records, os.path.join(args.out_dir, "loss.png"))


def write_table(records, path):
    lines = ["| N | method | I | lr | steps | test accuracy | allreduce rounds "
             "| MB sent per rank | wall s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(records, key=lambda r: (r["np"], r["method"], r["period"], -r["lr"])):
        lines.append("| %d | %s | %d | %g | %d | %.4f | %d | %.2f | %.1f |"
                     % (r["np"], r["method"], r["period"], r["lr"], r["steps"],
                        r["test_accuracy"], r["allreduce_rounds"],
                        r["allreduce_bytes_per_rank"] / 1e6, r["wall_s"]))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print("table: " + path)


def write_plot(records, path):
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nps = sorted({r["np"] for r in records})
    fig, axes = plt.subplots(1, len(nps), figsize=(5 * len(nps), 4), squeeze=False,
                             sharey=True)
    # A diverged run would squash every other curve: the axis ends at 1.5 times the
    # largest starting loss, and such a run says so in the legend.
    top = 1.5 * max(r["loss_curve"]["loss"][0] for r in records)
    for ax, np_ in zip(axes[0], nps):
        mine = [r for r in records if r["np"] == np_]
        several_lrs = len({r["lr"] for r in mine}) > 1
        for r in sorted(mine, key=lambda r: (r["method"], r["period"], -r["lr"])):
            c = r["loss_curve"]
            label = "%s I=%d" % (r["method"], r["period"])
            if several_lrs:
                label += " lr=%g" % r["lr"]
            if not all(math.isfinite(v) for v in c["loss"]) or c["loss"][-1] > top:
                label += " (diverged)"
            ax.plot(c["samples"], c["loss"], label=label,
                    linestyle=LINESTYLES.get(r["method"], "-"))
        ax.set_ylim(0, top)
        ax.set_title("N = %d" % np_)
        ax.set_xlabel("training samples processed")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("training loss (mean over ranks)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print("plot: " + path)


def main():
    args = parse_args()
    if args.period < 1:
        sys.exit("--period must be at least 1")
    if args.slowmo and args.bmuf:
        sys.exit("--slowmo and --bmuf exclude each other")
    if args.report:
        report(args)
    elif args.sweep:
        sweep(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
