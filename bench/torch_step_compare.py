"""One training step of the Fashion-MNIST CNN: braid's DistributedOptimizer against
torch.distributed DistributedDataParallel (gloo), in the same run.

    braidrun -np 2 python bench/torch_step_compare.py [--json out.json]

One launch starts both: braid.torch gives the ranks, rank 0 picks a free TCP port and
shares it with hvd.broadcast_object, and torch.distributed is initialised from the
environment (MASTER_ADDR, MASTER_PORT) with braid's rank and size. Both paths train
their own copy of the same model (same initial weights, optimizer, per-rank batches).

Timing: warm-up steps for each path, then rounds that alternate the two paths (N steps
each). Every step is timed on every rank; a step's time is the slowest rank's, and each
path reports the median (and 10th/90th percentiles) over all its timed steps.
"""

import argparse
import json
import os
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

import braid.torch as hvd

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import fashion_mnist_data as data  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=64, help="samples per rank per step (default 64)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps per path (default 10)")
    p.add_argument("--steps", type=int, default=40, help="timed steps per path per round (default 40)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate per rank (default 0.01)")
    p.add_argument("--fp16", action="store_true",
                   help="float16 gradients on both paths (hvd.Compression.fp16, DDP fp16_compress_hook)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per rank (default 1)")
    p.add_argument("--data-dir", default=data.DEFAULT_DATA_DIR, help="Fashion-MNIST IDX files")
    p.add_argument("--synthetic", action="store_true", help="random images instead of Fashion-MNIST")
    p.add_argument("--master-addr", default="127.0.0.1",
                   help="address of rank 0 for torch.distributed (default 127.0.0.1: one node)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return p.parse_args(argv)


def free_port(addr):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def init_torch_distributed(addr):
    port = hvd.broadcast_object(free_port(addr) if hvd.rank() == 0 else None, root_rank=0)
    os.environ["MASTER_ADDR"] = addr
    os.environ["MASTER_PORT"] = str(port)
    if addr.startswith("127.") and "GLOO_SOCKET_IFNAME" not in os.environ:
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group("gloo", init_method="env://", rank=hvd.rank(), world_size=hvd.size())
    return port


def load_batches(args, count):
    """`count` batches of this rank's shard, the same for both paths."""
    if args.synthetic:
        g = torch.Generator().manual_seed(args.seed + hvd.rank())
        return [(torch.randn(args.batch_size, 1, 28, 28, generator=g),
                 torch.randint(10, (args.batch_size,), generator=g)) for _ in range(count)]
    try:
        x, y = data.load(args.data_dir, "train")
    except data.DatasetMissing as e:
        print("error: %s (or pass --synthetic)" % e, file=sys.stderr)
        sys.exit(2)
    indices = data.ShardSampler(len(y), hvd.size(), hvd.rank(), seed=args.seed).indices()
    return list(data.batches(x, y, indices[:count * args.batch_size], args.batch_size))


class TrainingPath:
    """One training step of `self.model` with `self.opt`; the paths differ in how
    the gradients are averaged (DDP during backward, braid's optimizer in step())."""

    def step(self, xb, yb):
        self.opt.zero_grad()
        loss = F.cross_entropy(self.model(xb), yb)
        loss.backward()
        self.opt.step()
        return loss


class BraidPath(TrainingPath):
    name = "braid DistributedOptimizer"

    def __init__(self, args, initial, overlap=None):
        self.model = data.make_model()
        self.model.load_state_dict(initial)
        opt = torch.optim.SGD(self.model.parameters(), lr=args.lr * hvd.size(), momentum=0.9)
        hvd.broadcast_parameters(self.model.state_dict(), root_rank=0)
        hvd.broadcast_optimizer_state(opt, root_rank=0)
        compression = hvd.Compression.fp16 if args.fp16 else hvd.Compression.none
        self.opt = hvd.DistributedOptimizer(opt, named_parameters=self.model.named_parameters(),
                                            compression=compression, op=hvd.Average,
                                            overlap=overlap)


class BraidOverlapPath(BraidPath):
    """braid with overlap=True: every gradient's allreduce submitted from its hook
    during backward (Horovod's behaviour), whatever the cores."""

    name = "braid, overlap=True"

    def __init__(self, args, initial):
        super().__init__(args, initial, overlap=True)


class DDPPath(TrainingPath):
    name = "torch DDP (gloo)"

    def __init__(self, args, initial):
        model = data.make_model()
        model.load_state_dict(initial)
        self.model = DistributedDataParallel(model)  # broadcasts rank 0's parameters
        if args.fp16:
            from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
            self.model.register_comm_hook(None, default_hooks.fp16_compress_hook)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=args.lr * hvd.size(), momentum=0.9)
        # DDP averages the gradients during backward.


def run_steps(path, batches, start, count):
    """Times `count` steps of `path`; returns this rank's seconds per step and the last loss."""
    dist.barrier()
    times, loss = [], None
    for i in range(count):
        xb, yb = batches[(start + i) % len(batches)]
        t0 = time.perf_counter()
        loss = path.step(xb, yb)
        times.append(time.perf_counter() - t0)
    return times, loss.item()


def slowest_rank(times):
    """Per step, the largest time over all ranks (the step is done when every rank is)."""
    per_rank = hvd.allgather_object(times)
    return [max(step) for step in zip(*per_rank)]


def summary(step_s):
    ms = sorted(1e3 * t for t in step_s)
    q = statistics.quantiles(ms, n=10, method="inclusive") if len(ms) > 1 else ms * 9
    return {"median_ms": statistics.median(ms), "p10_ms": q[0], "p90_ms": q[-1], "steps": len(ms)}


class LocalPath(TrainingPath):
    """The same step without any communication (a reference: what the step costs
    in compute alone on this machine, with both ranks computing at once)."""

    name = "local (no communication)"

    def __init__(self, args, initial):
        self.model = data.make_model()
        self.model.load_state_dict(initial)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=args.lr * hvd.size(), momentum=0.9)


def compare(args, path_classes=(BraidPath, DDPPath)):
    """Trains every path of `path_classes` from the same initial weights on the same
    batches: warm-up steps, then `args.rounds` rounds that alternate the paths
    (`args.steps` steps each). Needs hvd.init() and torch.distributed. Returns
    ({path name: summary of the slowest rank's step times}, {path name: step seconds},
    {path name: last loss}, parameter count)."""
    torch.manual_seed(args.seed)
    initial = data.make_model().state_dict()
    nparams = sum(t.numel() for t in initial.values())
    paths = [cls(args, initial) for cls in path_classes]
    batches = load_batches(args, 50)

    results = {p.name: [] for p in paths}
    losses = {}
    position = 0
    for p in paths:
        run_steps(p, batches, position, args.warmup)
    position += args.warmup
    for _ in range(args.rounds):
        for p in paths:
            times, losses[p.name] = run_steps(p, batches, position, args.steps)
            results[p.name] += slowest_rank(times)
        position += args.steps
    stats = {name: summary(t) for name, t in results.items()}
    return stats, results, losses, nparams


def main():
    args = parse_args()
    hvd.init()
    torch.set_num_threads(args.threads)
    port = init_torch_distributed(args.master_addr)
    stats, results, losses, nparams = compare(args)
    braid_s, ddp_s = stats[BraidPath.name], stats[DDPPath.name]
    ratio = braid_s["median_ms"] / ddp_s["median_ms"]
    if hvd.rank() == 0:
        print("training step of the Fashion-MNIST CNN (%d parameters, %.2f MB of %s gradients), "
              "%d ranks, batch %d per rank, %d torch thread(s) per rank, %d rounds x %d steps"
              % (nparams, nparams * (2 if args.fp16 else 4) / 1e6, "fp16" if args.fp16 else "fp32",
                 hvd.size(), args.batch_size, args.threads, args.rounds, args.steps))
        print()
        print("%-28s %10s %10s %10s %6s %10s" % ("path", "median ms", "p10 ms", "p90 ms", "steps", "last loss"))
        for name, s in stats.items():
            print("%-28s %10.2f %10.2f %10.2f %6d %10.4f"
                  % (name, s["median_ms"], s["p10_ms"], s["p90_ms"], s["steps"], losses[name]))
        print()
        print("ratio braid/DDP (median step time): %.3f" % ratio)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"model": "fashion_mnist_cnn", "parameters": nparams, "ranks": hvd.size(),
                           "batch_size_per_rank": args.batch_size, "threads_per_rank": args.threads,
                           "fp16": args.fp16, "warmup": args.warmup, "steps": args.steps,
                           "rounds": args.rounds, "master_port": port, "results": stats,
                           "step_ms": {n: [1e3 * t for t in v] for n, v in results.items()},
                           "ratio_braid_over_ddp": ratio}, f, indent=2)
            print("wrote %s" % args.json)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
