"""Data-parallel training of a small CNN on Fashion-MNIST with braid's Horovod Keras API.

    braidrun -np 2 python examples/keras_fashion_mnist.py

The Keras 3 (TensorFlow backend) counterpart of examples/pytorch_fashion_mnist.py,
written as a Horovod Keras script: hvd.DistributedOptimizer averages the gradients
across ranks inside model.fit, BroadcastGlobalVariablesCallback starts every rank
from rank 0's weights, MetricAverageCallback averages the epoch's metrics over the
ranks and LearningRateWarmupCallback raises the learning rate to its scaled value
over the first --warmup-epochs epochs. Each rank trains on its own shard of the
training set (batches reshuffled every epoch) and validates on its own shard of the
test set; the final test accuracy adds up the correct predictions and the samples
of every rank with hvd.allreduce. Rank 0 shows the progress.

It trains on the CPU only (install TensorFlow with `pip install .[tensorflow]` or
`pip install tensorflow-cpu`). The data are the gzipped IDX files of Debian's package
dataset-fashion-mnist (/usr/share/datasets/fashion-mnist); --data-dir points elsewhere.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import braid.tensorflow.keras as hvd  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_mnist_data as data  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data.add_training_args(p)
    p.add_argument("--warmup-epochs", type=int, default=1,
                   help="epochs over which the learning rate rises to its scaled value (default 1)")
    p.add_argument("--threads", type=int, default=0,
                   help="TensorFlow threads per rank; 0: OMP_NUM_THREADS if set, else the cores "
                        "divided among this node's ranks")
    return p.parse_args()


def set_threads(requested):
    """Sizes TensorFlow's thread pools before it starts them; returns the intra-op size."""
    threads = requested
    if threads <= 0 and os.environ.get("OMP_NUM_THREADS", "").isdigit():
        threads = int(os.environ["OMP_NUM_THREADS"])
    if threads <= 0:
        cores = min(os.cpu_count() or 1, len(os.sched_getaffinity(0)) * hvd.local_size())
        threads = max(1, cores // hvd.local_size())
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    # The train step is one chain of ops: a second pool of as many threads would only
    # compete with the first for this rank's cores.
    tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    return threads


def nhwc(x):
    """[N, 1, 28, 28] (what fashion_mnist_data gives) to Keras' [N, 28, 28, 1]."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def shard(x, y, shuffle, seed=0, pad=False):
    """This rank's shard, as fashion_mnist_data.ShardSampler picks it. Training shards
    are padded to the same length on every rank, so that every rank takes the same
    number of steps (each step is an allreduce)."""
    sampler = data.ShardSampler(len(y), hvd.size(), hvd.rank(), shuffle=shuffle, seed=seed, pad=pad)
    idx = sampler.indices()
    return nhwc(x[idx]), y[idx]


def make_model():
    """fashion_mnist_data.make_model() in Keras: two 3x3 conv blocks with max-pooling,
    then two dense layers; the output is the 10 logits."""
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),  # 14 x 14 x 32
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),  # 7 x 7 x 64
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.25),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dropout(0.25),
        keras.layers.Dense(10),
    ], name="fashion_mnist_cnn")


class EpochTimer(keras.callbacks.Callback):
    """Remembers how long each epoch's training took (without its validation)."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None


def evaluate(model, x, y, batch_size):
    """Loss and accuracy over the whole test set: each rank predicts its unpadded shard,
    and the loss sums, correct predictions and sample counts are added across ranks."""
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    losses = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
    local = np.array([float(np.sum(losses)), float(np.sum(np.argmax(logits, 1) == y)), len(y)],
                     np.float64)
    loss_sum, correct, samples = hvd.allreduce(tf.constant(local), name="test.totals",
                                               op=hvd.Sum).numpy().tolist()
    return loss_sum / samples, correct / samples, int(samples)


def train(model, train_shard, test_shard, args):
    """Compiles the model with the distributed optimizer and runs model.fit; returns the
    seconds each epoch's training took on this rank."""
    scaled_lr = args.lr * hvd.size()
    # Linear scaling: the averaged gradient of size x batch-size samples takes a step
    # size times as large as one rank's would; the warm-up starts from one rank's rate.
    opt = hvd.DistributedOptimizer(
        keras.optimizers.SGD(scaled_lr, momentum=args.momentum),
        compression=hvd.Compression.fp16 if args.fp16_allreduce else hvd.Compression.none)
    # The allreduce runs as a tf.py_function in the train step, which XLA cannot compile.
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=False)
    timer = EpochTimer()
    callbacks = [
        hvd.callbacks.BroadcastGlobalVariablesCallback(0),
        hvd.callbacks.MetricAverageCallback(),
    ]
    if args.warmup_epochs > 0:
        callbacks.append(hvd.callbacks.LearningRateWarmupCallback(
            initial_lr=scaled_lr, warmup_epochs=args.warmup_epochs, verbose=1))
    callbacks.append(timer)
    model.fit(*train_shard, batch_size=args.batch_size, epochs=args.epochs, shuffle=True,
              validation_data=test_shard, validation_batch_size=args.test_batch_size,
              callbacks=callbacks, verbose=2 if hvd.rank() == 0 else 0)
    return timer.seconds


def main():
    args = parse_args()
    hvd.init()
    threads = set_threads(args.threads)
    # A seed per rank: dropout masks and batch orders differ between ranks, while
    # BroadcastGlobalVariablesCallback makes the starting weights rank 0's everywhere.
    keras.utils.set_random_seed(args.seed + hvd.rank())

    (x_train, y_train), (x_test, y_test) = data.load_on_every_rank(args.data_dir)
    train_shard = shard(x_train, y_train, shuffle=True, seed=args.seed, pad=True)
    test_shard = shard(x_test, y_test, shuffle=False)
    model = make_model()

    if hvd.rank() == 0:
        print("Fashion-MNIST: %d ranks, %d training samples per rank per epoch, batch %d per rank, "
              "lr %g, %d TensorFlow thread(s) per rank, cpu%s"
              % (hvd.size(), len(train_shard[1]), args.batch_size, args.lr * hvd.size(), threads,
                 ", fp16 allreduce" if args.fp16_allreduce else ""),
              flush=True)

    start = time.perf_counter()
    seconds = train(model, train_shard, test_shard, args) if args.epochs > 0 else []
    elapsed = time.perf_counter() - start
    # With --epochs 0 the broadcast never ran: make the ranks' weights rank 0's here.
    if not seconds:
        hvd.broadcast_variables(model.variables, root_rank=0)
    test_loss, test_acc, samples = evaluate(model, *test_shard, args.test_batch_size)
    if hvd.rank() == 0:
        if seconds:
            print("training: %.1f s (%.1f s/epoch)" % (elapsed, sum(seconds) / len(seconds)),
                  flush=True)
        print("final test accuracy: %.2f%% (%d samples, loss %.4f)" % (100 * test_acc, samples, test_loss),
              flush=True)


if __name__ == "__main__":
    main()
