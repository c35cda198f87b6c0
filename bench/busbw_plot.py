"""Plots braid-bench's bus bandwidth against size: the engine path and the raw path.

    mpirun -np 2 braid-bench -b 4 -e 256M -f 4 -J np2.json
    mpirun -np 4 braid-bench -b 4 -e 256M -f 4 -J np4.json    # or another backend's run
    python bench/busbw_plot.py np2.json np4.json --label "2 ranks" --label "4 ranks" -o busbw.png
    mpirun -np 2 braid-bench ... --plot busbw.png     # the same, from braid-bench itself

One colour per input file (a run: its backend, rank count, machine). Solid: the
engine path; dashed: the raw path of that run (MPI_Allreduce, ncclAllReduce, or
the staged copies around MPI, as the run's header says). A dotted line in the same
colour marks the run's single-core memcpy bandwidth (rank 0, bytes copied once per
second), where the JSON has it, so that a bus bandwidth can be read as a fraction of
it. Labels come from --label, in the order of the files, else from the file names.
Exit status 3 when matplotlib cannot be imported (braid-bench --plot then says so
and still succeeds), 2 for an unusable input.
"""

import argparse
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("busbw_plot.py: %s: %s" % (path, e))
    rows = [r for r in data.get("rows", [])
            if r.get("mode") == "sweep" and r.get("engine") is not None]
    if not rows:
        print("busbw_plot.py: %s: no sweep rows (run braid-bench -J FILE without --fusion)"
              % path, file=sys.stderr)
        sys.exit(2)
    return data, sorted(rows, key=lambda r: r["bytes"])


def size_label(n):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return "%g %s" % (n / scale, unit)
    return "%d B" % n


def raw_name(settings):
    kind = settings.get("raw_path", "mpi")
    detail = settings.get("raw_detail", "")
    if kind == "mpi" and detail:
        return "raw " + detail.split("(")[0]
    return "raw " + kind


def draw_run(ax, color, label, data, rows):
    settings = data.get("settings", {})
    sizes = [r["bytes"] for r in rows]
    prefix = label + ": " if label else ""
    ax.plot(sizes, [r["engine"]["busbw_gbps"] for r in rows], "o-", color=color,
            label="%sengine (braid_%s_async)" % (prefix, settings.get("collective", "?")))
    with_raw = [r for r in rows if r.get("raw") is not None]
    if with_raw:
        ax.plot([r["bytes"] for r in with_raw], [r["raw"]["busbw_gbps"] for r in with_raw],
                "s--", color=color, markersize=4, label=prefix + raw_name(settings))
    memcpy = settings.get("memcpy_gbps")
    if memcpy:
        ax.axhline(memcpy, linestyle=":", color=color, linewidth=1,
                   label="%smemcpy, one core (%.1f GB/s)" % (prefix, memcpy))
    return sizes


def title(runs):
    first = runs[0][0]
    s = first.get("settings", {})
    ranks = sorted({d.get("ranks") for d, _ in runs})
    return "%s bus bandwidth, %s ranks, %s %s" % (
        s.get("collective", "?"), "/".join(str(r) for r in ranks), s.get("dtype", ""),
        s.get("op", ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="braid-bench -J outputs (sweeps)")
    parser.add_argument("-l", "--label", action="append", default=[],
                        help="label of the next input file (repeat, in order)")
    parser.add_argument("-t", "--title", help="plot title (default: from the first file)")
    parser.add_argument("-o", "--output", default="busbw.png")
    args = parser.parse_args()
    runs = [load(p) for p in args.inputs]
    try:
        import matplotlib
    except ImportError:
        print("busbw_plot.py: matplotlib cannot be imported by %s; install it "
              "(pip install matplotlib) or run this script with a Python that has it"
              % sys.executable, file=sys.stderr)
        sys.exit(3)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(args.label)
    for path in args.inputs[len(labels):]:
        labels.append(os.path.splitext(os.path.basename(path))[0] if len(runs) > 1 else "")
    fig, ax = plt.subplots(figsize=(8, 5))
    sizes = set()
    for i, ((data, rows), label) in enumerate(zip(runs, labels)):
        sizes.update(draw_run(ax, "C%d" % i, label, data, rows))
    sizes = sorted(sizes)
    ax.set_xscale("log", base=2)
    ticks = sizes[:: max(1, len(sizes) // 8)]
    ax.set_xticks(ticks)
    ax.set_xticklabels([size_label(s) for s in ticks], fontsize=8)
    ax.set_xlabel("size per rank")
    ax.set_ylabel("bus bandwidth (GB/s)")
    ax.set_ylim(bottom=0)
    ax.set_title(args.title or title(runs))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print("wrote", args.output)


if __name__ == "__main__":
    main()
