"""Plots braid-bench's neighbour sweep: time against size, neighbour allreduce per graph
against the averaging allreduce of the same tensor.

    mpirun -np 4 braid-bench -c neighbor --graph ring -b 4K -e 64M -f 4 -J nbr_np4_ring.json
    mpirun -np 4 braid-bench -c neighbor --graph exponential ... -J nbr_np4_exp.json
    python bench/neighbor_plot.py nbr_*.json [run2/nbr_*.json ...] -o neighbor_bench.png

One panel per rank count (two per row). Solid lines: the engine's neighbour
allreduce, one per graph; dotted, in the same colour: the raw MPI neighbour step,
where it was measured; black dashes: the engine's allreduce. Repeated runs (several
files of one rank count and graph) are combined by taking the lowest time at each
size, since a loaded machine only adds time; the allreduce line is the lowest over
every file of the rank count.
"""

import argparse
import json
import sys
from collections import defaultdict


def load(path):
    with open(path) as f:
        data = json.load(f)
    rows = [r for r in data["rows"] if r.get("mode") == "neighbor"]
    if not rows:
        sys.exit("%s: no neighbour rows (run braid-bench -c neighbor -J FILE)" % path)
    return data["ranks"], data["settings"].get("graph", rows[0]["graph"]), rows


def size_label(n):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return "%g %s" % (n / scale, unit)
    return "%d B" % n


def lowest(runs, path):
    """{bytes: lowest time in ms} of one path over several runs' rows."""
    best = {}
    for rows in runs:
        for r in rows:
            if r[path] is not None:
                ms = r[path]["time_us"] / 1e3
                best[r["bytes"]] = min(ms, best.get(r["bytes"], ms))
    return best


LINES = (("engine", "o-", "neighbour"), ("raw", ":", "raw MPI neighbour"))


def draw(ax, ranks, graphs):
    for i, graph in enumerate(sorted(graphs)):
        for path, style, label in LINES:
            best = lowest(graphs[graph], path)
            if best:
                x = sorted(best)
                ax.plot(x, [best[s] for s in x], style, color="C%d" % i,
                        label="%s, %s" % (label, graph))
    best = lowest([rows for runs in graphs.values() for rows in runs], "allreduce")
    sizes = sorted(best)
    ax.plot(sizes, [best[s] for s in sizes], "k--", label="allreduce (average)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ticks = sizes[:: max(1, len(sizes) // 6)]
    ax.set_xticks(ticks)
    ax.set_xticklabels([size_label(s) for s in ticks], fontsize=7)
    ax.set_xlabel("tensor size per rank")
    ax.set_ylabel("time per call (ms)")
    ax.set_title("%d ranks" % ranks)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="braid-bench -c neighbor -J outputs")
    parser.add_argument("-o", "--output", default="neighbor_bench.png")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = defaultdict(lambda: defaultdict(list))  # ranks -> graph -> runs
    for path in args.inputs:
        ranks, graph, rows = load(path)
        panels[ranks][graph].append(rows)
    cols = min(2, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.5 * rows), squeeze=False)
    for ax, ranks in zip(axes.flat, sorted(panels)):
        draw(ax, ranks, panels[ranks])
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print("wrote", args.output)


if __name__ == "__main__":
    main()
