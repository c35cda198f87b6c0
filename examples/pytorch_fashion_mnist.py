"""Data-parallel training of a small CNN on Fashion-MNIST with braid's Horovod API.

    braidrun -np 2 python examples/pytorch_fashion_mnist.py
    braidrun -np 1 python examples/pytorch_fashion_mnist.py --device cuda

Each rank trains on its own shard of the training set (reshuffled every epoch),
gradients are averaged across ranks by hvd.DistributedOptimizer, and the metrics
(training loss and accuracy, test accuracy) are combined across ranks with
hvd.allreduce. Rank 0 shows the progress and prints the final test accuracy.

With --device cuda each rank trains on GPU local_rank modulo the visible GPUs; its
gradients travel over NCCL when every rank has a GPU of its own, and host-staged
over MPI when ranks share one (or with BRAID_GPU_BACKEND=mpi).

The data are the gzipped IDX files of Debian's package dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist); --data-dir points elsewhere.
"""

import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

import braid.torch as hvd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_mnist_data as data  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data.add_training_args(p)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where the model trains (default cpu)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads per rank; 0: the cores divided among this node's ranks")
    return p.parse_args()


def set_threads(requested):
    if requested > 0:
        torch.set_num_threads(requested)
    elif "OMP_NUM_THREADS" not in os.environ:
        cores = min(os.cpu_count() or 1, len(os.sched_getaffinity(0)) * hvd.local_size())
        torch.set_num_threads(max(1, cores // hvd.local_size()))


def pick_device(kind):
    """This rank's torch device; with cuda, GPU local_rank modulo the visible GPUs."""
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        sys.exit("error: --device cuda, but torch sees no GPU")
    if not hvd.cuda_built():
        sys.exit("error: --device cuda, but this build of braid has no GPU data plane")
    device = torch.device("cuda", hvd.local_rank() % torch.cuda.device_count())
    torch.cuda.set_device(device)
    return device


class Progress:
    """A one-line text progress bar on stderr, redrawn with a carriage return."""

    def __init__(self, total, label, enabled, width=30, interval_s=0.5):
        self.total, self.label, self.enabled = total, label, enabled
        self.width, self.interval_s = width, interval_s
        self.start = self.last = time.perf_counter()

    def update(self, done, note=""):
        now = time.perf_counter()
        if not self.enabled or (now - self.last < self.interval_s and done < self.total):
            return
        self.last = now
        filled = self.width * done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        sys.stderr.write("\r%s [%s] %d/%d %.0fs %s" % (self.label, bar, done, self.total,
                                                        now - self.start, note))
        sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def metric_average(value, name):
    """The mean of a per-rank number over all ranks."""
    return hvd.allreduce(torch.tensor(float(value)), name=name).item()


def train_epoch(epoch, model, optimizer, sampler, x, y, args):
    model.train()
    sampler.set_epoch(epoch)  # a new shuffle of the same split every epoch
    indices = sampler.indices()
    steps = -(-len(indices) // args.batch_size)
    progress = Progress(steps, "epoch %d/%d" % (epoch + 1, args.epochs), hvd.rank() == 0)
    loss_sum = correct = seen = 0
    for step, (xb, yb) in enumerate(data.batches(x, y, indices, args.batch_size), 1):
        xb, yb = xb.to(args.torch_device), yb.to(args.torch_device)
        optimizer.zero_grad()
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(yb)
        correct += (logits.argmax(1) == yb).sum().item()
        seen += len(yb)
        progress.update(step, "loss %.4f" % (loss_sum / seen))
    progress.close()
    # Every rank has the same number of samples (the sampler pads), so the mean of the
    # per-rank means is the mean over all samples.
    return metric_average(loss_sum / seen, "train.loss"), metric_average(correct / seen, "train.acc")


def evaluate(model, x, y, args):
    """Accuracy and loss over the whole test set: each rank takes its unpadded shard, and
    the sums and sample counts are added across ranks before dividing."""
    model.eval()
    sampler = data.ShardSampler(len(y), hvd.size(), hvd.rank(), shuffle=False, pad=False)
    totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, samples
    with torch.no_grad():
        for xb, yb in data.batches(x, y, sampler.indices(), args.test_batch_size):
            xb, yb = xb.to(args.torch_device), yb.to(args.torch_device)
            logits = model(xb)
            totals[0] += F.cross_entropy(logits, yb, reduction="sum").item()
            totals[1] += (logits.argmax(1) == yb).sum().item()
            totals[2] += len(yb)
    loss_sum, correct, samples = hvd.allreduce(totals, name="test.totals", op=hvd.Sum).tolist()
    return loss_sum / samples, correct / samples, int(samples)


def main():
    args = parse_args()
    hvd.init()
    torch.manual_seed(args.seed)
    set_threads(args.threads)
    args.torch_device = pick_device(args.device)

    (x_train, y_train), (x_test, y_test) = data.load_on_every_rank(args.data_dir)
    sampler = data.ShardSampler(len(y_train), hvd.size(), hvd.rank(), shuffle=True, seed=args.seed)

    model = data.make_model().to(args.torch_device)
    # Linear scaling: the averaged gradient of size x batch-size samples takes a step
    # size times as large as one rank's would.
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr * hvd.size(), momentum=args.momentum)

    # Every rank starts from rank 0's weights and optimizer state.
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    hvd.broadcast_optimizer_state(optimizer, root_rank=0)

    compression = hvd.Compression.fp16 if args.fp16_allreduce else hvd.Compression.none
    optimizer = hvd.DistributedOptimizer(optimizer, named_parameters=model.named_parameters(),
                                         compression=compression, op=hvd.Average)

    if hvd.rank() == 0:
        print("Fashion-MNIST: %d ranks, %d training samples per rank per epoch, batch %d per rank, "
              "lr %g, %d torch thread(s) per rank, %s%s"
              % (hvd.size(), len(sampler), args.batch_size, args.lr * hvd.size(),
                 torch.get_num_threads(), args.torch_device,
                 ", fp16 allreduce" if args.fp16_allreduce else ""),
              flush=True)

    test_loss = test_acc = samples = None
    for epoch in range(args.epochs):
        start = time.perf_counter()
        train_loss, train_acc = train_epoch(epoch, model, optimizer, sampler, x_train, y_train, args)
        seconds = time.perf_counter() - start
        test_loss, test_acc, samples = evaluate(model, x_test, y_test, args)
        if hvd.rank() == 0:
            print("epoch %d/%d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | %.1f s/epoch"
                  % (epoch + 1, args.epochs, train_loss, 100 * train_acc, test_loss,
                     100 * test_acc, seconds), flush=True)

    if test_acc is None:  # --epochs 0: the broadcast initial weights
        test_loss, test_acc, samples = evaluate(model, x_test, y_test, args)
    if hvd.rank() == 0:
        print("final test accuracy: %.2f%% (%d samples, loss %.4f)" % (100 * test_acc, samples, test_loss),
              flush=True)


if __name__ == "__main__":
    main()
