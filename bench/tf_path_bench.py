"""What braid.tensorflow costs per call, eagerly and inside tf.function, beside the
engine path, and what it adds to a training step.

    braidrun -np 2 python bench/tf_path_bench.py [--json out.json]

1. one 4-byte allreduce, one after another, through three paths in the same
   processes, on the same engine and operation name, alternating round by round:
   the engine path (`braid._C._engine_allreduce_loop`: enqueue and wait in C++,
   no Python per call), `hvd.allreduce` on an eager tensor (DLPack in, a fresh
   tensor out), and a tf.function holding one `hvd.allreduce` (a tf.py_function
   node around the eager code), and the same tf.function with `x + 1` in place of
   the allreduce (TensorFlow's own cost of a call);
2. 200 tensors of 64 KiB reduced as one group: `hvd.grouped_allreduce` eagerly
   and in a tf.function, against `braid._C._engine_allreduce_batch`;
3. one training step (tf.function) of the Fashion-MNIST CNN on synthetic images:
   with `hvd.DistributedGradientTape`, and the same step without communication.

A call's time is the slowest rank's; medians with 10th and 90th percentiles over
all rounds.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import braid  # noqa: E402
import braid.tensorflow as hvd  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import call_times  # noqa: E402

SMALL = "bench.tf.small"
MANY, MANY_ELEMENTS = 200, 16384  # float32: 64 KiB each


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    p.add_argument("--small-calls", type=int, default=500,
                   help="4-byte allreduces per path per round (default 500)")
    p.add_argument("--many-iters", type=int, default=5,
                   help="200 x 64 KiB groups per path per round (default 5)")
    p.add_argument("--step-steps", type=int, default=20,
                   help="timed training steps per path per round (default 20)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per rank (default 64)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return p.parse_args(argv)


def slowest(times):
    """Per call, the largest time over the ranks."""
    return call_times.slowest(times, "bench.tf.times")


summary = call_times.summary


def timed(fn, calls):
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def measure_small(args):
    array, t = np.ones(1, np.float32), tf.ones([1])
    graph = tf.function(lambda x: hvd.allreduce(x, name=SMALL))
    plain = tf.function(lambda x: x + 1.0)
    paths = {
        "engine": lambda n: braid._C._engine_allreduce_loop(array, n, "allreduce." + SMALL),
        "eager": lambda n: timed(lambda: hvd.allreduce(t, name=SMALL).numpy(), n),
        "tf.function": lambda n: timed(lambda: graph(t).numpy(), n),
        "tf.function, no collective": lambda n: timed(lambda: plain(t).numpy(), n),
    }
    return alternate(paths, args.rounds, args.small_calls, "us")


def measure_many(args):
    arrays = [np.ones(MANY_ELEMENTS, np.float32) for _ in range(MANY)]
    tensors = [tf.ones([MANY_ELEMENTS]) for _ in range(MANY)]
    names = ["allreduce.bench.tf.many.%d" % i for i in range(MANY)]
    graph = tf.function(lambda *xs: hvd.grouped_allreduce(list(xs), name="bench.tf.many"))

    def eager():
        for r in hvd.grouped_allreduce(tensors, name="bench.tf.many"):
            r.numpy()

    paths = {
        "engine": lambda n: braid._C._engine_allreduce_batch(arrays, names, n),
        "eager": lambda n: timed(eager, n),
        "tf.function": lambda n: timed(lambda: [r.numpy() for r in graph(*tensors)], n),
    }
    return alternate(paths, args.rounds, args.many_iters, "ms")


def alternate(paths, rounds, calls, unit):
    for run in paths.values():
        run(min(calls, 20))  # warm: traced, responses cached
    times = {name: [] for name in paths}
    for _ in range(rounds):
        for name, run in paths.items():
            times[name] += run(calls)
    return {name: summary(slowest(ts), unit) for name, ts in times.items()}


def cnn():
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10)])


def measure_step(args):
    model = cnn()
    opt = keras.optimizers.SGD(0.01, momentum=0.9)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    g = np.random.default_rng(hvd.rank())
    x = tf.constant(g.standard_normal((args.batch_size, 28, 28, 1)).astype(np.float32))
    y = tf.constant(g.integers(0, 10, args.batch_size))

    def step(distributed):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        if distributed:
            tape = hvd.DistributedGradientTape(tape)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply(grads, model.trainable_variables)
        return loss

    steps = {"DistributedGradientTape": tf.function(lambda: step(True)),
             "no communication": tf.function(lambda: step(False))}
    paths = {name: (lambda n, f=f: timed(lambda: f().numpy(), n)) for name, f in steps.items()}
    result = alternate(paths, args.rounds, args.step_steps, "ms")
    result["parameters"] = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    return result


def run(args):
    hvd.init()
    return {"ranks": hvd.size(), "small": measure_small(args), "many": measure_many(args),
            "step": measure_step(args)}


def report(results):
    print("braid.tensorflow per-call cost, %d ranks (slowest rank; median [p10, p90])"
          % results["ranks"])
    for part, title in (("small", "one 4-byte allreduce"),
                        ("many", "200 x 64 KiB, one group"),
                        ("step", "CNN training step (%d parameters)"
                         % results["step"]["parameters"])):
        print("\n%s" % title)
        for path, s in results[part].items():
            if isinstance(s, dict):
                print("  %-26s %9.1f %s [%.1f, %.1f]" % (path, s["median"], s["unit"], s["p10"],
                                                         s["p90"]))


def main():
    args = parse_args()
    results = run(args)
    if hvd.rank() == 0:
        report(results)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
