"""Sparse communication on Fashion-MNIST: GMC, M-DSGD and DGC against dense momentum
SGD (fp32 allreduce, and bf16-compressed allreduce), with the CNN of
examples/pytorch_fashion_mnist.py, the same steps, learning rate and schedule for all.

One run (under the launcher; rank 0 appends one JSON line to --out):

    braidrun -np 4 python bench/experiments/sparse.py --method gmc --density 0.01 \\
        --total-samples 120000 --out results.jsonl

The sweep (launches every configuration with braidrun, then writes a markdown table
and a PNG: training loss against steps, and test accuracy against bytes per step):

    python bench/experiments/sparse.py --sweep --np 4 --densities 0.01 0.001 \\
        --total-samples 120000 --out-dir sparse-results

(--methods chooses among sgd sgd-bf16 gmc mdsgd dgc; --report rewrites the table and
the plot from the out-dir's results.jsonl.)

Each line holds the final test accuracy (full test set), the bytes this rank sent
per step (braid.stats(): allreduce payload for the dense methods; values + indices of
the sparse allreduce, plus any dense allreduce, for the sparse ones), counted over
the training steps only, the training time per step (slowest rank) and the training
loss curve (mean over ranks).
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

CURVE_POINTS = 150
DENSE = ("sgd", "sgd-bf16")
SPARSE = ("gmc", "mdsgd", "dgc")
LABEL = {"sgd": "momentum SGD, fp32 allreduce", "sgd-bf16": "momentum SGD, bf16 allreduce",
         "gmc": "GMC", "mdsgd": "M-DSGD", "dgc": "DGC"}
SHORT = {"sgd": "SGD fp32", "sgd-bf16": "SGD bf16", "gmc": "GMC", "mdsgd": "M-DSGD",
         "dgc": "DGC"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", choices=DENSE + SPARSE, default="gmc")
    p.add_argument("--density", type=float, default=0.01,
                   help="sparse methods: the fraction of each tensor sent per step")
    p.add_argument("--total-samples", type=int, default=120000,
                   help="training samples over all ranks together (default 2 epochs)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per rank per step")
    p.add_argument("--lr", type=float, default=0.01,
                   help="learning rate for one rank, multiplied by N (default 0.01)")
    p.add_argument("--decay-at", type=float, default=0.75,
                   help="the lr is divided by 10 after this fraction of the steps")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--dgc-warmup", type=float, default=0.2,
                   help="DGC: the fraction of the steps spent in its 4 warm-up stages "
                        "(75%%, 93.75%%, 98.4%%, 99.6%% sparsity), 0 for none")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data-dir", default=data.DEFAULT_DATA_DIR)
    p.add_argument("--out", default="sparse_results.jsonl", help="JSON lines file (appended)")
    p.add_argument("--sweep", action="store_true", help="launch every configuration")
    p.add_argument("--np", type=int, default=4, help="sweep: ranks")
    p.add_argument("--methods", nargs="+", default=list(DENSE + SPARSE),
                   choices=DENSE + SPARSE)
    p.add_argument("--densities", type=float, nargs="+", default=[0.01, 0.001])
    p.add_argument("--out-dir", default="sparse-results",
                   help="sweep: where results.jsonl, results.md and sparse.png go")
    p.add_argument("--report", action="store_true",
                   help="only rewrite results.md and sparse.png from --out-dir/results.jsonl")
    return p.parse_args(argv)


# ---- one run, on every rank ----

def steps_of(args, n):
    return max(1, args.total_samples // (n * args.batch_size))


def build_optimizer(hvd, torch, model, args, steps):
    lr = args.lr * hvd.size()
    if args.method in DENSE:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=args.momentum)
        compression = hvd.Compression.bf16 if args.method == "sgd-bf16" else hvd.Compression.none
        return hvd.DistributedOptimizer(opt, named_parameters=model.named_parameters(),
                                        compression=compression, op=hvd.Average)
    common = dict(lr=lr, momentum=args.momentum, density=args.density, name="experiment")
    if args.method == "gmc":
        return hvd.GMC(model.parameters(), **common)
    if args.method == "mdsgd":
        return hvd.MDSGD(model.parameters(), **common)
    per_stage = int(steps * args.dgc_warmup / 4)
    warmup = dict(warmup_densities="exponential", warmup_steps_per_stage=per_stage) \
        if per_stage > 0 else {}
    return hvd.DGC(model.parameters(), **common, **warmup)


def train(hvd, torch, model, opt, sched, x, y, args, steps):
    """This rank's loss at every step."""
    return training.train_steps(hvd, model, opt, x, y, args.batch_size, steps, args.seed,
                                after_step=sched.step)


def curve(torch, hvd, losses):
    """The loss averaged over ranks, thinned to about CURVE_POINTS points."""
    mean = hvd.allreduce(torch.tensor(losses, dtype=torch.float64), name="curve").tolist()
    stride = max(1, len(mean) // CURVE_POINTS)
    points = []
    for start in range(0, len(mean), stride):
        chunk = mean[start:start + stride]
        points.append((start + len(chunk), sum(chunk) / len(chunk)))
    return {"step": [p[0] for p in points], "loss": [p[1] for p in points]}


def sent_bytes(stats):
    """(value bytes, index bytes, dense bytes) this rank sent, from braid.stats()."""
    sparse = stats.get("sparse_allreduce", {})
    return (sparse.get("bytes", 0), sparse.get("index_bytes", 0),
            stats.get("allreduce", {}).get("bytes", 0))


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
    steps = steps_of(args, hvd.size())
    opt = build_optimizer(hvd, torch, model, args, steps)
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=[max(1, int(steps * args.decay_at))], gamma=0.1)

    braid.reset_stats()
    start = time.perf_counter()
    losses = train(hvd, torch, model, opt, sched, x, y, args, steps)
    wall = time.perf_counter() - start
    values, indices, dense = sent_bytes(braid.stats())  # before the metrics' collectives

    wall = hvd.allreduce(torch.tensor(wall), name="wall", op=hvd.Max).item()
    accuracy, test_loss = training.evaluate(hvd, torch, model, xt, yt)
    loss_curve = curve(torch, hvd, losses)
    params = sum(p.numel() for p in model.parameters())
    if hvd.rank() == 0:
        record = {
            "np": hvd.size(), "method": args.method,
            "density": args.density if args.method in SPARSE else 1.0,
            "steps": steps, "batch_size": args.batch_size, "lr": args.lr * hvd.size(),
            "momentum": args.momentum, "decay_at": args.decay_at, "seed": args.seed,
            "dgc_warmup": args.dgc_warmup if args.method == "dgc" else None,
            "params": params, "test_accuracy": accuracy, "test_loss": test_loss,
            "value_bytes_per_step": values / steps, "index_bytes_per_step": indices / steps,
            "dense_bytes_per_step": dense / steps,
            "bytes_per_step": (values + indices + dense) / steps,
            "wall_s": wall, "s_per_step": wall / steps, "loss_curve": loss_curve,
        }
        with open(args.out, "a") as f:
            f.write(json.dumps(record) + "\n")
        print("N=%d %s density %g: test accuracy %.4f, %.1f kB per step per rank, %.1f ms "
              "per step" % (record["np"], args.method, record["density"], accuracy,
                            record["bytes_per_step"] / 1e3, 1e3 * record["s_per_step"]),
              flush=True)


# ---- the sweep, in one process ----

def sweep(args):
    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, "results.jsonl")
    configs = [(m, 1.0) for m in args.methods if m in DENSE]
    configs += [(m, d) for d in args.densities for m in args.methods if m in SPARSE]
    for method, density in configs:
        cmd = [sys.executable, "-m", "braid.runner", "-np", str(args.np), sys.executable,
               os.path.abspath(__file__), "--method", method, "--density", str(density),
               "--total-samples", str(args.total_samples),
               "--batch-size", str(args.batch_size), "--lr", str(args.lr),
               "--decay-at", str(args.decay_at), "--momentum", str(args.momentum),
               "--dgc-warmup", str(args.dgc_warmup), "--seed", str(args.seed),
               "--data-dir", args.data_dir, "--out", out]
        print("$ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    report(args)


def report(args):
    records = [json.loads(line)
               for line in open(os.path.join(args.out_dir, "results.jsonl")) if line.strip()]
    write_table(records, os.path.join(args.out_dir, "results.md"))
    write_plot(records, os.path.join(args.out_dir, "sparse.png"))


def _order(r):
    return (r["np"], -r["density"], (DENSE + SPARSE).index(r["method"]), r["seed"])


def _fp32_bytes(records, r):
    same = [q["bytes_per_step"] for q in records
            if q["method"] == "sgd" and q["np"] == r["np"] and q["steps"] == r["steps"]]
    return same[0] if same else None


def write_table(records, path):
    lines = ["| N | method | density | seed | steps | test accuracy | value B/step | index B/step "
             "| dense B/step | total B/step | fp32 allreduce / this | ms/step |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(records, key=_order):
        base = _fp32_bytes(records, r)
        ratio = "%.0fx" % (base / r["bytes_per_step"]) if base and r["bytes_per_step"] else "-"
        if base and r["bytes_per_step"] and base / r["bytes_per_step"] < 10:
            ratio = "%.2fx" % (base / r["bytes_per_step"])
        lines.append("| %d | %s | %s | %d | %d | %.2f%% | %.0f | %.0f | %.0f | %.0f | %s | %.1f |"
                     % (r["np"], LABEL[r["method"]],
                        "%g" % r["density"] if r["method"] in SPARSE else "-", r["seed"],
                        r["steps"], 100 * r["test_accuracy"], r["value_bytes_per_step"],
                        r["index_bytes_per_step"], r["dense_bytes_per_step"],
                        r["bytes_per_step"], ratio, 1e3 * r["s_per_step"]))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print("table: " + path)


def _smooth(values, width=5):
    """A centred moving average (the curves are per-step losses, thinned)."""
    out = []
    for i in range(len(values)):
        window = values[max(0, i - width // 2):i + width // 2 + 1]
        out.append(sum(window) / len(window))
    return out


def write_plot(records, path):
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    styles = {0.01: "--", 0.005: "-.", 0.001: ":"}
    colours = {"sgd": "black", "sgd-bf16": "grey", "gmc": "tab:blue", "mdsgd": "tab:green",
               "dgc": "tab:red"}
    top = 1.5 * max(r["loss_curve"]["loss"][0] for r in records)
    first_seed = min(r["seed"] for r in records)  # one curve per configuration
    for r in sorted(records, key=_order):
        c = r["loss_curve"]
        label = LABEL[r["method"]]
        if r["method"] in SPARSE:
            label += " %g%%" % (100 * r["density"])
        if not all(math.isfinite(v) for v in c["loss"]):
            label += " (diverged)"
        if r["seed"] == first_seed:
            left.plot(c["step"], _smooth(c["loss"]), label=label, color=colours[r["method"]],
                      linestyle=styles.get(r["density"], "-"), linewidth=1)
        else:
            label += " seed %d" % r["seed"]
        marker = "o" if r["method"] in SPARSE else "s"
        if r["seed"] != first_seed:  # other seeds: hollow markers, unlabelled
            right.scatter(r["bytes_per_step"], 100 * r["test_accuracy"], marker=marker,
                          facecolors="none", edgecolors=colours[r["method"]])
            continue
        right.scatter(r["bytes_per_step"], 100 * r["test_accuracy"], color=colours[r["method"]],
                      marker=marker)
        short = SHORT[r["method"]]
        if r["method"] in SPARSE:
            short += " %g%%" % (100 * r["density"])
        right.annotate(short, (r["bytes_per_step"], 100 * r["test_accuracy"]), fontsize=7,
                       xytext=(4, -8 if r["method"] == "sgd-bf16" else 2),
                       textcoords="offset points")
    left.set_ylim(0, top)
    left.set_xlabel("step")
    left.set_ylabel("training loss (mean over ranks, smoothed; seed %d)" % first_seed)
    left.grid(alpha=0.3)
    left.legend(fontsize=7)
    right.set_xscale("log")
    right.set_xlabel("bytes sent per step per rank (values + indices + dense)")
    seeds = sorted({r["seed"] for r in records})
    right.set_ylabel("test accuracy (%%)%s" % (
        "; hollow: seed %s" % ", ".join(str(v) for v in seeds[1:]) if len(seeds) > 1 else ""))
    right.grid(alpha=0.3, which="both")
    n = sorted({r["np"] for r in records})
    fig.suptitle("Fashion-MNIST CNN, N = %s" % ", ".join(str(v) for v in n))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print("plot: " + path)


def main():
    args = parse_args()
    if not 0.0 < args.density <= 1.0:
        sys.exit("--density must be in (0, 1]")
    if args.report:
        report(args)
    elif args.sweep:
        sweep(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
