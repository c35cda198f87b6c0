"""Soak: a long run of mixed collectives on every rank, printing the resident set
size (RSS) as it goes, to show that braid's memory stays flat.

    braidrun -np 2 python bench/soak.py [--ops 100000] [--report-every 10000]

Each step is one of: an allreduce (float16/32/64, int32/64; sum, average, min, max,
product), an allgather whose first dimension differs by rank and by step, or a
broadcast from a changing root. Sizes change from step to step (0 up to 64 Ki
elements). About half the names come from a small fixed set (the response cache
answers them), a quarter are new every time (negotiated through rank 0, then age out
of the cache) and the rest repeat from a pool larger than the cache. Steps are
submitted one at a time (synchronous) or in bursts of async handles. Every result is
checked. All ranks draw the same sequence from the same seed.

RSS is read from /proc/self/status (VmRSS) after a warm-up that exercises every
kind of step, then every --report-every steps and at the end. The run fails (exit 1)
when RSS grew by more than --max-growth-mib between the first report and the last.
"""

import argparse
import random
import sys
import time

import numpy as np

import braid

DTYPES = [np.float16, np.float32, np.float64, np.int32, np.int64]
OPS = [braid.Sum, braid.Average, braid.Min, braid.Max, braid.Product]
SIZES = [0, 1, 7, 31, 257, 1024, 4099, 16384, 65536]
FIXED_NAMES = 24
# Larger than the default response cache (BRAID_CACHE_CAPACITY=1024), so that these
# names are evicted and negotiated again.
POOL_NAMES = 3000


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def expected_reduce(op, dtype, size):
    # Rank r contributes r + 1 everywhere.
    contributions = [r + 1 for r in range(size)]
    if op == braid.Sum:
        return sum(contributions)
    if op == braid.Average:
        total = sum(contributions)
        return total // size if np.issubdtype(dtype, np.integer) else total / size
    if op == braid.Min:
        return min(contributions)
    if op == braid.Max:
        return max(contributions)
    product = 1
    for c in contributions:
        product *= c
    return product


class Soak:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.rank = braid.rank()
        self.size = braid.size()
        self.step = 0
        self.in_flight = set()

    def name(self, kind, signature):
        # The signature (dtype, op, size ...) is part of a repeated name: a name in
        # the cache must keep its shape and type, as it would in training.
        u = self.rng.random()
        if u < 0.5:
            name = "soak.%s.fixed%d.%s" % (kind, self.rng.randrange(FIXED_NAMES), signature)
        elif u < 0.75:
            name = None
        else:
            name = "soak.%s.pool%d.%s" % (kind, self.rng.randrange(POOL_NAMES), signature)
        # A name may be in flight only once at a time.
        if name is None or name in self.in_flight:
            name = "soak.%s.new%d" % (kind, self.step)
        self.in_flight.add(name)
        return name

    def allreduce(self):
        dtype = self.rng.choice(DTYPES)
        op = self.rng.choice(OPS)
        n = self.rng.choice(SIZES)
        if dtype == np.float16 and op == braid.Product:
            op = braid.Sum  # keep the product of many ranks representable
        name = self.name("allreduce", "%s.%d.%d" % (np.dtype(dtype).name, op, n))
        x = np.full(n, self.rank + 1, dtype)
        want = expected_reduce(op, dtype, self.size)
        h = braid.allreduce_async(x, name=name, op=op)
        return h, lambda out: np.array_equal(out, np.full(n, want, dtype))

    def allgather(self):
        cols = self.rng.choice([1, 3, 17])
        base = self.rng.randrange(0, 64)
        rows = [(base + 5 * r) % 64 for r in range(self.size)]
        # A name's shape may differ by rank but is part of what the cache keys on
        # (its first dimension comes with the response), so no signature is needed
        # beyond the column count.
        name = self.name("allgather", "c%d.b%d" % (cols, base))
        x = np.full((rows[self.rank], cols), self.rank, np.int32)
        want = np.concatenate([np.full((rows[r], cols), r, np.int32) for r in range(self.size)])
        h = braid.allgather_async(x, name=name)
        return h, lambda out: np.array_equal(out, want)

    def broadcast(self):
        root = self.rng.randrange(self.size)
        n = self.rng.choice(SIZES)
        name = self.name("broadcast", "r%d.%d" % (root, n))
        x = np.full(n, self.rank + 1, np.float32)
        h = braid.broadcast_async_(x, root, name=name)
        return h, lambda out: np.all(x == root + 1)

    def submit_one(self):
        u = self.rng.random()
        self.step += 1
        if u < 0.6:
            return self.allreduce()
        if u < 0.8:
            return self.allgather()
        return self.broadcast()

    def run(self, count):
        """Runs `count` steps: single synchronous ones and async bursts of up to 8."""
        done = 0
        while done < count:
            burst = 1 if self.rng.random() < 0.5 else self.rng.randint(2, 8)
            burst = min(burst, count - done)
            self.in_flight.clear()
            pending = [self.submit_one() for _ in range(burst)]
            for h, check in pending:
                out = braid.synchronize(h)
                if not check(out):
                    raise SystemExit("rank %d: wrong result at step %d" % (self.rank, self.step))
            done += burst


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=100000)
    parser.add_argument("--warmup", type=int, default=10000)
    parser.add_argument("--report-every", type=int, default=10000)
    parser.add_argument("--max-growth-mib", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    braid.init()
    soak = Soak(args.seed)
    soak.run(args.warmup)
    braid.barrier()
    start = time.time()
    first = rss_kib()
    samples = [first]

    def report(label):
        print("rank %d %-8s ops %7d  rss %8.1f MiB  %6.1f s" % (
            soak.rank, label, soak.step - args.warmup, samples[-1] / 1024,
            time.time() - start), flush=True)

    report("start")
    done = 0
    while done < args.ops:
        chunk = min(args.report_every, args.ops - done)
        soak.run(chunk)
        done += chunk
        samples.append(rss_kib())
        report("end" if done == args.ops else "")
    braid.barrier()
    growth = (samples[-1] - first) / 1024
    ok = growth <= args.max_growth_mib
    print("rank %d: %d ops after %d warm-up, RSS %.1f -> %.1f MiB (max %.1f), growth %+.1f MiB: %s"
          % (soak.rank, args.ops, args.warmup, first / 1024, samples[-1] / 1024,
             max(samples) / 1024, growth, "flat" if ok else "GREW"), flush=True)
    braid.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
