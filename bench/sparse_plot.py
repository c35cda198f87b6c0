"""Plots braid-bench's sparse sweep: time against density, sparse against dense.

    mpirun -np 2 braid-bench -c sparse -b 4M -e 256M -f 4 > sparse_np2.txt
    python bench/sparse_plot.py sparse_np2.txt [sparse_np4.txt ...] -o docs/sparse_bench.png

One panel per input file (its rank count from the header), one pair of lines per
dense size: the sparse allreduce's time (solid) and the dense allreduce's (dashed)
at each density.
"""

import argparse
import re
import sys


def parse(path):
    ranks, rows = None, []
    with open(path) as f:
        for line in f:
            m = re.search(r"both through the engine, (\d+) ranks", line)
            if m:
                ranks = int(m.group(1))
                continue
            fields = line.split()
            if len(fields) == 8 and fields[1].endswith("%") and fields[0].isdigit():
                rows.append({
                    "bytes": int(fields[0]),
                    "density": float(fields[1][:-1]) / 100.0,
                    "sparse_us": float(fields[4]),
                    "dense_us": float(fields[5]),
                    "wrong": int(fields[7]),
                })
    if not rows:
        sys.exit("%s: no sparse sweep rows (run braid-bench -c sparse)" % path)
    return ranks, rows


def size_label(n):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return "%g %s" % (n / scale, unit)
    return "%d B" % n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="braid-bench -c sparse outputs")
    parser.add_argument("-o", "--output", default="sparse_bench.png")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [parse(p) for p in args.inputs]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (ranks, rows) in zip(axes[0], panels):
        sizes = sorted({r["bytes"] for r in rows})
        for i, size in enumerate(sizes):
            mine = sorted((r for r in rows if r["bytes"] == size), key=lambda r: r["density"])
            x = [100 * r["density"] for r in mine]
            color = "C%d" % i
            ax.plot(x, [r["sparse_us"] / 1e3 for r in mine], "o-", color=color,
                    label="sparse, %s dense" % size_label(size))
            ax.plot(x, [r["dense_us"] / 1e3 for r in mine], "--", color=color,
                    label="dense allreduce, %s" % size_label(size))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("density (% of entries sent per rank)")
        ax.set_ylabel("time per call (ms)")
        ax.set_title("sparse vs dense allreduce, %s ranks (float32)" % ranks)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print("wrote", args.output)


if __name__ == "__main__":
    main()
