"""A Horovod-style PyTorch training script.

    braidrun -np 2 python examples/pytorch_horovod_style.py

With Horovod installed, change the one import below to `import horovod.torch as hvd`
and this script runs unchanged (under horovodrun); nothing else in it is braid's.

Every rank fits the same small MLP to its own synthetic regression data (the target is
a fixed random teacher network plus noise). The script exercises the usual pieces:
broadcast_object (rank 0's configuration), broadcast_parameters and
broadcast_optimizer_state (Adam, whose state exists before the first step),
DistributedOptimizer, allreduce of a metric, allgather_object, and allgather of the
flattened parameters to check that every rank ends with the same model.
"""

import argparse
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import braid.torch as hvd  # with Horovod installed: import horovod.torch as hvd


def make_mlp(inputs, hidden, outputs):
    return nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, outputs))


def synthetic_data(config, rank):
    """This rank's samples: inputs drawn from its own stream, targets from a teacher
    network that is the same on every rank (seeded by the configuration alone)."""
    g = torch.Generator().manual_seed(config["seed"])
    teacher = make_mlp(config["inputs"], 16, config["outputs"])
    with torch.no_grad():
        for p in teacher.parameters():  # unit-variance activations
            fan_in = p.shape[-1] if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
    g.manual_seed(config["seed"] + 1000 + rank)
    x = torch.randn(config["samples_per_rank"], config["inputs"], generator=g)
    with torch.no_grad():
        y = teacher(x) + 0.01 * torch.randn(len(x), config["outputs"], generator=g)
    return x, y


def main():
    p = argparse.ArgumentParser(description="Horovod-style MLP regression on synthetic data")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args()

    hvd.init()
    torch.set_num_threads(1)

    # Rank 0 decides the run's configuration; everyone else takes it from there.
    config = None
    if hvd.rank() == 0:
        config = {"seed": args.seed, "inputs": 20, "hidden": 64, "outputs": 4,
                  "samples_per_rank": 4096, "batch_size": args.batch_size,
                  "lr": args.lr * hvd.size(), "steps": args.steps}
    config = hvd.broadcast_object(config, root_rank=0)

    # Different initial weights on every rank, so that the broadcast below matters.
    torch.manual_seed(config["seed"] + 17 * hvd.rank())
    model = make_mlp(config["inputs"], config["hidden"], config["outputs"])
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    hvd.broadcast_optimizer_state(optimizer, root_rank=0)
    optimizer = hvd.DistributedOptimizer(optimizer, named_parameters=model.named_parameters(),
                                         op=hvd.Average)

    x, y = synthetic_data(config, hvd.rank())
    g = torch.Generator().manual_seed(config["seed"] + hvd.rank())
    for step in range(1, config["steps"] + 1):
        idx = torch.randint(len(x), (config["batch_size"],), generator=g)
        optimizer.zero_grad()
        loss = F.mse_loss(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()
        if step == 1 or step % 100 == 0 or step == config["steps"]:
            avg = hvd.allreduce(loss.detach(), name="loss").item()
            if hvd.rank() == 0:
                print("step %4d  loss (mean over ranks) %.5f" % (step, avg), flush=True)

    # The model's loss on each rank's whole data set, averaged over ranks.
    with torch.no_grad():
        local = F.mse_loss(model(x), y)
    final = hvd.allreduce(local, name="final_loss").item()
    per_rank = hvd.allgather_object((hvd.rank(), round(local.item(), 6)))

    # Data parallelism keeps the replicas equal: gather every rank's flat parameters.
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    gathered = hvd.allgather(flat.unsqueeze(0), name="params")  # [size, n]
    identical = bool((gathered == gathered[0]).all())

    if hvd.rank() == 0:
        print("per-rank final loss:", per_rank)
        print("final loss (mean over %d ranks): %.5f" % (hvd.size(), final))
        print("parameters identical on all %d ranks: %s" % (hvd.size(), identical))
    sys.exit(0 if identical else 1)


if __name__ == "__main__":
    main()
