"""Decentralized (gossip) momentum SGD on Fashion-MNIST: braid.torch.DecentralizedOptimizer
over the ring, torus, exponential and one-peer exponential graphs, with and without
momentum mixing, against synchronous momentum SGD through an allreduce of the
gradients, with the CNN of examples/pytorch_fashion_mnist.py, the same number of
training samples in total, learning rate, schedule and seed for all.

One run (under the launcher; rank 0 appends one JSON line to --out):

    braidrun -np 8 python bench/experiments/gossip.py --config ring \\
        --total-samples 60000 --out results.jsonl

The sweep (launches every configuration for every N with braidrun, then writes a
markdown table and a PNG: training loss against steps, consensus distance against
steps, test accuracy against bytes per step):

    python bench/experiments/gossip.py --sweep --nps 4 8 --total-samples 60000 \\
        --out-dir gossip-results

(--configs chooses among allreduce and the graphs, "-nomix" for the variants that
mix the parameters only; --report rewrites the table and the plot from the out-dir's
results.jsonl, e.g. after merging two sweeps.)

Each line holds the test accuracy of the consensus model (consensus() is called
before evaluating), the mean, min and max test accuracy of the N local models before
it (each rank evaluates its own model on the first --local-eval-samples test images,
as is the consensus model for comparison), the bytes this rank
sent per step (braid.stats(), training steps only: for gossip the neighbour bytes
sent to the peers; for the allreduce its payload, and 2 (N-1)/N times that as the
wire estimate of a ring allreduce), the training time per step (slowest rank), the
training loss curve (mean over ranks) and the consensus distance
sqrt((1/N) sum_i ||x_i - xbar||^2) every --distance-every steps.
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
GRAPHS = ("ring", "torus", "exponential", "one_peer_exponential")
CONFIGS = ("allreduce",) + tuple(g + suffix for g in GRAPHS for suffix in ("", "-nomix"))
SHORT = {"allreduce": "allreduce", "ring": "ring", "torus": "torus",
         "exponential": "exp", "one_peer_exponential": "1-peer exp"}
COLOURS = {"allreduce": "black", "ring": "tab:blue", "torus": "tab:green",
           "exponential": "tab:red", "one_peer_exponential": "tab:purple"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=CONFIGS, default="ring",
                   help="allreduce, or a graph (momentum mixed), or graph-nomix "
                        "(parameters mixed only)")
    p.add_argument("--total-samples", type=int, default=60000,
                   help="training samples over all ranks together (default 1 epoch)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per rank per step")
    p.add_argument("--lr", type=float, default=0.01,
                   help="learning rate for one rank, multiplied by N (default 0.01)")
    p.add_argument("--decay-at", type=float, default=0.75,
                   help="the lr is divided by 10 after this fraction of the steps")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--distance-every", type=int, default=10,
                   help="gossip: measure the consensus distance every that many steps")
    p.add_argument("--local-eval-samples", type=int, default=2000,
                   help="every rank evaluates its own model before consensus() on the first "
                        "that many test images (the consensus model too, for comparison); "
                        "0: skip")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data-dir", default=data.DEFAULT_DATA_DIR)
    p.add_argument("--out", default="gossip_results.jsonl", help="JSON lines file (appended)")
    p.add_argument("--sweep", action="store_true", help="launch every configuration")
    p.add_argument("--nps", type=int, nargs="+", default=[4, 8], help="sweep: ranks")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS,
                   help="sweep: the configurations, run for every N of --nps")
    p.add_argument("--out-dir", default="gossip-results",
                   help="sweep: where results.jsonl, results.md and gossip.png go")
    p.add_argument("--report", action="store_true",
                   help="only rewrite results.md and gossip.png from --out-dir/results.jsonl")
    return p.parse_args(argv)


def split_config(config):
    """(graph or "allreduce", mix_momentum)."""
    if config.endswith("-nomix"):
        return config[:-len("-nomix")], False
    return config, True


# ---- one run, on every rank ----

def steps_of(args, n):
    return max(1, args.total_samples // (n * args.batch_size))


def build_optimizer(hvd, torch, model, args):
    sgd = torch.optim.SGD(model.parameters(), lr=args.lr * hvd.size(), momentum=args.momentum)
    graph, mix = split_config(args.config)
    if graph == "allreduce":
        return hvd.DistributedOptimizer(sgd, named_parameters=model.named_parameters(),
                                        op=hvd.Average)
    return hvd.DecentralizedOptimizer(sgd, topology=graph, mix_momentum=mix,
                                      name="experiment")


def _counts(stats):
    """(allreduce payload bytes, neighbour allreduce payload bytes, bytes sent to peers)."""
    return (stats["allreduce"]["bytes"], stats["neighbor_allreduce"]["bytes"],
            sum(stats.get("neighbor_sent_bytes", [])))


class Probe:
    """The consensus distance every `every` steps (gossip only), with the traffic and
    the time the measurement itself costs, so that both can be left out."""

    def __init__(self, braid, opt, every):
        self.braid, self.opt, self.every = braid, opt, every
        self.step, self.points = 0, []
        self.bytes = [0, 0, 0]
        self.seconds = 0.0

    def measure(self):
        start = time.perf_counter()
        before = _counts(self.braid.stats())
        distance = self.opt.consensus_distance()
        after = _counts(self.braid.stats())
        self.bytes = [b + a1 - a0 for b, a0, a1 in zip(self.bytes, before, after)]
        self.seconds += time.perf_counter() - start
        self.points.append((self.step, distance))
        return distance

    def after_step(self):
        self.step += 1
        if self.every > 0 and self.step % self.every == 0:
            self.measure()


def curve(torch, hvd, losses):
    """The loss averaged over ranks, thinned to about CURVE_POINTS points."""
    mean = hvd.allreduce(torch.tensor(losses, dtype=torch.float64), name="curve").tolist()
    stride = max(1, len(mean) // CURVE_POINTS)
    points = []
    for start in range(0, len(mean), stride):
        chunk = mean[start:start + stride]
        points.append((start + len(chunk), sum(chunk) / len(chunk)))
    return {"step": [p[0] for p in points], "loss": [p[1] for p in points]}


def local_accuracy(torch, model, x, y):
    """This rank's own model on the whole test set (no communication)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(y), 1000):
            xb = torch.from_numpy(x[start:start + 1000])
            yb = torch.from_numpy(y[start:start + 1000])
            correct += (model(xb).argmax(1) == yb).sum().item()
    return correct / len(y)


def flat_distance(torch, hvd, model):
    """sqrt((1/N) sum_i ||x_i - xbar||^2) through allreduce (the allreduce baseline,
    where it must be 0)."""
    x = torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])
    mean = hvd.allreduce(x, name="distance.mean", op=hvd.Average)
    sq = hvd.allreduce(((x - mean) ** 2).sum(), name="distance", op=hvd.Average)
    return math.sqrt(max(0.0, sq.item()))


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
    n, steps = hvd.size(), steps_of(args, hvd.size())
    graph, mix = split_config(args.config)
    gossip = graph != "allreduce"
    opt = build_optimizer(hvd, torch, model, args)
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=[max(1, int(steps * args.decay_at))], gamma=0.1)
    probe = Probe(braid, opt, args.distance_every if gossip else 0)

    def after_step():
        sched.step()
        probe.after_step()

    braid.reset_stats()
    start = time.perf_counter()
    losses = training.train_steps(hvd, model, opt, x, y, args.batch_size, steps, args.seed,
                                  after_step=after_step)
    wall = time.perf_counter() - start - probe.seconds
    stats = braid.stats()
    allreduce, nb_payload, nb_sent = [c - p for c, p in zip(_counts(stats), probe.bytes)]
    nb_count = stats["neighbor_allreduce"]["count"]
    per_peer = stats.get("neighbor_sent_bytes", [])
    peers = sum(1 for b in per_peer if b > 0)
    if gossip and (not probe.points or probe.points[-1][0] != steps):
        probe.measure()  # the distance at the last step, before consensus()

    wall = hvd.allreduce(torch.tensor(wall), name="wall", op=hvd.Max).item()
    local, k = {}, min(args.local_eval_samples, len(yt))
    if k > 0:
        mine = torch.tensor(local_accuracy(torch, model, xt[:k], yt[:k]), dtype=torch.float64)
        local = {"mean": hvd.allreduce(mine, name="local.mean", op=hvd.Average).item(),
                 "min": hvd.allreduce(mine, name="local.min", op=hvd.Min).item(),
                 "max": hvd.allreduce(mine, name="local.max", op=hvd.Max).item()}
    if gossip:
        opt.consensus()
        after_consensus = opt.consensus_distance()
    else:
        after_consensus = flat_distance(torch, hvd, model)
    accuracy, test_loss = training.evaluate(hvd, torch, model, xt, yt)
    if k > 0:  # the consensus model on the same images as the local ones
        local["consensus"] = training.evaluate(hvd, torch, model, xt[:k], yt[:k])[0]
        local["samples"] = k
    loss_curve = curve(torch, hvd, losses)
    params = sum(p.numel() for p in model.parameters())
    if hvd.rank() == 0:
        payload = (nb_payload if gossip else allreduce) / steps
        wire = nb_sent / steps if gossip else allreduce / steps * 2 * (n - 1) / n
        record = {
            "np": n, "config": args.config, "graph": graph, "mix_momentum": mix,
            "steps": steps, "batch_size": args.batch_size, "lr": args.lr * n,
            "momentum": args.momentum, "decay_at": args.decay_at, "seed": args.seed,
            "total_samples": steps * n * args.batch_size, "params": params,
            "test_accuracy": accuracy, "test_loss": test_loss,
            "local_accuracy": local or None,
            "payload_bytes_per_step": payload,
            "wire_bytes_per_step": wire,
            "wire_is_estimate": not gossip,
            "allreduce_bytes_per_step": allreduce / steps,
            "neighbor_allreduce_per_step": nb_count / steps,
            "neighbor_peers": peers,
            "wall_s": wall, "s_per_step": wall / steps,
            "distance_curve": {"step": [p[0] for p in probe.points],
                               "distance": [p[1] for p in probe.points]},
            "final_distance": probe.points[-1][1] if probe.points else after_consensus,
            "distance_after_consensus": after_consensus,
            "loss_curve": loss_curve,
        }
        with open(args.out, "a") as f:
            f.write(json.dumps(record) + "\n")
        print("N=%d %s: consensus model %.4f, local models %s, %.0f kB sent per step per "
              "rank (%s), distance at the end %.3g, %.1f ms per step"
              % (n, args.config, accuracy,
                 "%.4f" % local["mean"] if local else "-", wire / 1e3,
                 "ring-allreduce estimate" if not gossip else "to %d peers" % peers,
                 record["final_distance"], 1e3 * record["s_per_step"]), flush=True)


# ---- the sweep, in one process ----

def sweep(args):
    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, "results.jsonl")
    for n in args.nps:
        for config in args.configs:
            cmd = [sys.executable, "-m", "braid.runner", "-np", str(n), sys.executable,
                   os.path.abspath(__file__), "--config", config,
                   "--total-samples", str(args.total_samples),
                   "--batch-size", str(args.batch_size), "--lr", str(args.lr),
                   "--decay-at", str(args.decay_at), "--momentum", str(args.momentum),
                   "--distance-every", str(args.distance_every),
                   "--local-eval-samples", str(args.local_eval_samples),
                   "--seed", str(args.seed),
                   "--data-dir", args.data_dir, "--out", out]
            print("$ " + " ".join(cmd), flush=True)
            start = time.time()
            subprocess.run(cmd, check=True)
            print("(%.0f s)" % (time.time() - start), flush=True)
    report(args)


def report(args):
    records = [json.loads(line)
               for line in open(os.path.join(args.out_dir, "results.jsonl")) if line.strip()]
    write_table(records, os.path.join(args.out_dir, "results.md"))
    write_plot(records, os.path.join(args.out_dir, "gossip.png"))


def _order(r):
    return (r["np"], CONFIGS.index(r["config"]), r["seed"])


def _label(r):
    if r["graph"] == "allreduce":
        return "allreduce"
    return "%s, %s" % (r["graph"], "x and u mixed" if r["mix_momentum"] else "x mixed only")


def _baseline(records, r):
    same = [q for q in records if q["config"] == "allreduce" and q["np"] == r["np"]
            and q["steps"] == r["steps"] and q["seed"] == r["seed"]]
    return same[0] if same else None


def write_table(records, path):
    k = {r["local_accuracy"]["samples"] for r in records if r.get("local_accuracy")}
    lines = ["| N | config | seed | steps | consensus model acc. | vs allreduce | local models "
             "acc. mean (min-max) / consensus model, first %s test images | payload B/step "
             "| sent B/step | peers | distance at end | ms/step |"
             % ("/".join(str(v) for v in sorted(k)) or "-"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(records, key=_order):
        base = _baseline(records, r)
        delta = "-" if base is None or base is r else "%+.2f" % (
            100 * (r["test_accuracy"] - base["test_accuracy"]))
        local = r.get("local_accuracy")
        local = "-" if not local else "%.2f%% (%.2f-%.2f) / %.2f%%" % (
            100 * local["mean"], 100 * local["min"], 100 * local["max"],
            100 * local["consensus"])
        sent = "%.0f%s" % (r["wire_bytes_per_step"], " (est.)" if r["wire_is_estimate"] else "")
        peers = "-" if r["graph"] == "allreduce" else str(r["neighbor_peers"])
        lines.append("| %d | %s | %d | %d | %.2f%% | %s | %s | %.0f | %s | %s | %.3g | %.1f |"
                     % (r["np"], _label(r), r["seed"], r["steps"], 100 * r["test_accuracy"],
                        delta, local, r["payload_bytes_per_step"], sent, peers,
                        r["final_distance"], 1e3 * r["s_per_step"]))
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


DISTANCE_FLOOR = 1e-8


def write_plot(records, path):
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nps = sorted({r["np"] for r in records})
    first_seed = min(r["seed"] for r in records)  # one curve per configuration
    fig = plt.figure(figsize=(17, 4.6 * len(nps)))
    grid = fig.add_gridspec(len(nps), 3)
    axes = [(fig.add_subplot(grid[i, 0]), fig.add_subplot(grid[i, 1])) for i in range(len(nps))]
    acc_ax = fig.add_subplot(grid[:, 2])  # every N in one panel
    markers = {n: m for n, m in zip(nps, "osD^v")}
    top = 1.2 * max(r["loss_curve"]["loss"][0] for r in records)
    for row, n in zip(axes, nps):
        loss_ax, dist_ax = row
        for r in sorted((r for r in records if r["np"] == n and r["seed"] == first_seed),
                        key=_order):
            style = dict(color=COLOURS[r["graph"]], linestyle="-" if r["mix_momentum"] else "--",
                         linewidth=1.6 if r["graph"] == "allreduce" else 1)
            c = r["loss_curve"]
            label = _label(r)
            if not all(math.isfinite(v) for v in c["loss"]):
                label += " (diverged)"
            loss_ax.plot(c["step"], _smooth(c["loss"]), label=label, **style)
            d = r["distance_curve"]
            if d["step"]:
                dist_ax.plot(d["step"], [max(v, DISTANCE_FLOOR) for v in d["distance"]],
                             marker=".", label=label, **style)
        loss_ax.set_ylim(0, top)
        loss_ax.set_xlabel("step")
        loss_ax.set_ylabel("training loss (mean over ranks, smoothed)")
        loss_ax.set_title("N = %d: training loss" % n)
        loss_ax.grid(alpha=0.3)
        loss_ax.legend(fontsize=7)
        dist_ax.set_yscale("log")
        dist_ax.set_xlabel("step")
        dist_ax.set_ylabel("consensus distance (values below %g drawn at %g)"
                           % (DISTANCE_FLOOR, DISTANCE_FLOOR))
        dist_ax.set_title("N = %d: consensus distance sqrt((1/N) sum ||x_i - xbar||^2) after "
                          "the step's mixing" % n, fontsize=9)
        dist_ax.grid(alpha=0.3, which="both")
        dist_ax.legend(fontsize=7)
    groups = {}
    for r in sorted(records, key=_order):
        groups.setdefault((r["np"], r["config"]), []).append(r)
    for (n, config), rs in groups.items():
        r = rs[0]
        colour = COLOURS[r["graph"]]
        # configurations that send the same bytes are nudged sideways to stay apart
        x = r["wire_bytes_per_step"] * (1 + 0.035 * (GRAPHS.index(r["graph"]) - 1.5)
                                        if r["graph"] in GRAPHS else 1)
        acc = [100 * q["test_accuracy"] for q in rs]
        mean = sum(acc) / len(acc)
        if len(acc) > 1:
            acc_ax.vlines(x, min(acc), max(acc), color=colour, linewidth=0.8)
        acc_ax.scatter(x, mean, marker=markers[n], edgecolors=colour,
                       facecolors=colour if r["mix_momentum"] else "none")
        acc_ax.annotate("%s%s N=%d" % (SHORT[r["graph"]], "" if r["mix_momentum"] else " nm", n),
                        (x, mean), fontsize=6, xytext=(4, 2), textcoords="offset points")
    acc_ax.set_xscale("log")
    acc_ax.set_xlabel("bytes sent per step per rank (gossip: to the peers; allreduce: "
                      "2(N-1)/N x payload)", fontsize=8)
    acc_ax.set_ylabel("test accuracy of the consensus model (%), mean over seeds")
    seeds = sorted({r["seed"] for r in records})
    acc_ax.set_title("accuracy vs bytes (%s; filled: x and u mixed, hollow / nm: x only)\n"
                     "mean over seeds %s; bars: min to max"
                     % (", ".join("%s N=%d" % (markers[n], n) for n in nps),
                        ", ".join(str(v) for v in seeds)), fontsize=8)
    acc_ax.grid(alpha=0.3, which="both")
    fig.suptitle("Fashion-MNIST CNN, decentralized momentum SGD against allreduce, "
                 "%d samples in total, curves: seed %d" % (records[0]["total_samples"], first_seed))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print("plot: " + path)


def main():
    args = parse_args()
    if args.report:
        report(args)
    elif args.sweep:
        sweep(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
