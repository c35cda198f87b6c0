"""Fashion-MNIST for the braid examples: the IDX files, a small CNN and a sharded loader.

The data come from Debian's package ``dataset-fashion-mnist``, which installs the four
gzipped IDX files under /usr/share/datasets/fashion-mnist. Nothing is downloaded and
torchvision is not needed: the IDX format is a big-endian header (magic, then one uint32
per dimension) followed by the raw uint8 values, which numpy reads directly.
"""

import gzip
import os
import sys

import numpy as np

DEFAULT_DATA_DIR = "/usr/share/datasets/fashion-mnist"
PACKAGE = "dataset-fashion-mnist"

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# Mean and standard deviation of the training images' pixels (scaled to [0, 1]).
MEAN, STD = 0.2860, 0.3530


class DatasetMissing(Exception):
    """The IDX files are not where we looked; the message says how to get them."""


def _find(data_dir, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    raise DatasetMissing(
        "Fashion-MNIST not found: no %s(.gz) in %s; install the Debian package %s "
        "(apt-get install %s) or pass --data-dir DIR with the four IDX files"
        % (stem, data_dir, PACKAGE, PACKAGE)
    )


def read_idx(path):
    """Reads one IDX file (gzipped or not) into a numpy array of its stored shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError("%s is not an IDX file" % path)
    if data[2] != 0x08:
        raise ValueError("%s: only uint8 IDX files are supported (type 0x%02x)" % (path, data[2]))
    ndim = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError("%s: header says %s but holds %d values" % (path, shape, body.size))
    return body.reshape(shape)


def load_on_every_rank(data_dir):
    """(train, test) on every rank of an initialised braid job. A missing dataset ends
    every rank with exit code 2: the ranks agree first, so that no rank waits forever
    on one that left."""
    import braid

    try:
        train, test, error = load(data_dir, "train"), load(data_dir, "test"), None
    except DatasetMissing as e:
        train = test = None
        error = str(e)
    missing = int(braid.allreduce(np.array([int(error is not None)], np.int64),
                                  name="data.missing", op=braid.Sum)[0])
    if missing:
        if error is not None and braid.local_rank() == 0:
            print("error: " + error, file=sys.stderr)
        elif error is None and braid.rank() == 0:
            print("error: Fashion-MNIST is missing on %d rank(s)" % missing, file=sys.stderr)
        sys.exit(2)
    return train, test


def add_training_args(p):
    """The command-line options every Fashion-MNIST example takes."""
    p.add_argument("--epochs", type=int, default=4, help="training epochs (default 4)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per rank per step (default 64)")
    p.add_argument("--test-batch-size", type=int, default=1000, help="samples per rank per test step")
    p.add_argument("--lr", type=float, default=0.01,
                   help="learning rate for one rank; it is multiplied by the number of ranks (default 0.01)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                   help="folder with the Fashion-MNIST IDX files (default %(default)s)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--fp16-allreduce", action="store_true",
                   help="send the gradients as float16 (hvd.Compression.fp16)")


def load(data_dir=DEFAULT_DATA_DIR, split="train"):
    """Returns (images float32 [N, 1, 28, 28] normalised, labels int64 [N])."""
    image_stem, label_stem = FILES[split]
    images = read_idx(_find(data_dir, image_stem))
    labels = read_idx(_find(data_dir, label_stem))
    if images.shape[0] != labels.shape[0]:
        raise ValueError("%s: %d images but %d labels" % (split, images.shape[0], labels.shape[0]))
    x = (images.astype(np.float32) / 255.0 - MEAN) / STD
    return x.reshape(-1, 1, 28, 28), labels.astype(np.int64)


class ShardSampler:
    """The indices of one rank's shard, like torch's DistributedSampler.

    Every epoch all ranks permute 0..N-1 with the same seed (seed + epoch, so call
    set_epoch() before each epoch), pad the permutation by wrapping around to a
    multiple of `num_replicas` when `pad` is set, and take every num_replicas-th
    index starting at `rank`. Without padding (evaluation) the shards differ by at
    most one sample and together hold every sample exactly once.
    """

    def __init__(self, n, num_replicas, rank, shuffle=True, seed=0, pad=True):
        self.n, self.num_replicas, self.rank = n, num_replicas, rank
        self.shuffle, self.seed, self.pad = shuffle, seed, pad
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def indices(self):
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(self.n)
        else:
            order = np.arange(self.n)
        if self.pad:
            total = -(-self.n // self.num_replicas) * self.num_replicas
            order = np.resize(order, total)  # wraps around, as DistributedSampler does
        return order[self.rank::self.num_replicas]

    def __len__(self):
        return len(self.indices())


def batches(x, y, indices, batch_size):
    """Yields (images, labels) torch tensors for consecutive slices of `indices`."""
    import torch

    for start in range(0, len(indices), batch_size):
        idx = indices[start:start + batch_size]
        yield torch.from_numpy(x[idx]), torch.from_numpy(y[idx])


def make_model():
    """A small CNN: two 3x3 conv blocks with max-pooling, then two linear layers."""
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 32 x 14 x 14
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 64 x 7 x 7
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
        nn.Dropout(0.25),
        nn.Linear(128, 10),
    )
