"""What the experiments share: the training loop over this rank's shard and the
test-set evaluation, both for the Fashion-MNIST CNN (examples/fashion_mnist_data.py)."""

import fashion_mnist_data as data


def train_steps(hvd, model, opt, x, y, batch_size, steps, seed, after_step=None):
    """Runs `steps` optimizer steps on this rank's shard (reshuffled each epoch, equal
    batches on every rank) and returns this rank's loss at every step. `after_step`
    (e.g. a scheduler's step) runs after each optimizer step."""
    import torch.nn.functional as F

    sampler = data.ShardSampler(len(y), hvd.size(), hvd.rank(), shuffle=True, seed=seed)
    losses, epoch = [], 0
    model.train()
    while len(losses) < steps:
        sampler.set_epoch(epoch)
        for xb, yb in data.batches(x, y, sampler.indices(), batch_size):
            if len(losses) == steps:
                break
            if len(yb) < batch_size:
                continue  # equal batches on every rank, every step
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step()
            losses.append(loss.item())
        epoch += 1
    return losses


def evaluate(hvd, torch, model, x, y):
    """(accuracy, mean loss) on (x, y), each rank evaluating its part."""
    import torch.nn.functional as F

    model.eval()
    sampler = data.ShardSampler(len(y), hvd.size(), hvd.rank(), shuffle=False, pad=False)
    totals = torch.zeros(3, dtype=torch.float64)
    with torch.no_grad():
        for xb, yb in data.batches(x, y, sampler.indices(), 1000):
            logits = model(xb)
            totals[0] += F.cross_entropy(logits, yb, reduction="sum").item()
            totals[1] += (logits.argmax(1) == yb).sum().item()
            totals[2] += len(yb)
    loss_sum, correct, count = hvd.allreduce(totals, name="eval", op=hvd.Sum).tolist()
    return correct / count, loss_sum / count
