"""braid.torch's DistributedOptimizer against Horovod's PyTorch semantics.

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/test_torch_optimizer.py.
Gradients come from losses whose coefficients depend on the rank, so the expected
reduced gradient is computed here from rank and size."""

import copy
import warnings

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import torch_util  # noqa: E402
from torch_util import MLP, full_batch, named  # noqa: E402

LR = 0.1
SHAPES = {"a": (3, 2), "b": (4,), "c": (2, 2, 2)}


def needs_two(world):
    torch_util.needs_two(world, "Horovod registers its gradient hooks only with more than one rank")


class Coef(nn.Module):
    """Three parameters; the loss sum(p * coef(p, r)) makes dloss/dp = coef(p, r)."""

    def __init__(self):
        super().__init__()
        for i, (name, shape) in enumerate(SHAPES.items()):
            n = 1
            for s in shape:
                n *= s
            init = (torch.arange(n, dtype=torch.float32) * 0.125 - i).reshape(shape)
            setattr(self, name, nn.Parameter(init))

    def loss(self, r, scale=1.0, skip=()):
        total = 0
        for name in SHAPES:
            if name not in skip:
                total = total + (getattr(self, name) * coef(name, r, scale)).sum()
        return total


def coef(name, r, scale=1.0):
    """Multiples of 1/2 up to 7.5 (times `scale`): exact in float16."""
    shape = SHAPES[name]
    n = 1
    for s in shape:
        n *= s
    k = list(SHAPES).index(name)
    values = ((torch.arange(n, dtype=torch.float32) + k) % 5 + 1) * (r + 1) * 0.5
    return (values * scale).reshape(shape)


def mean_coef(name, size, scale=1.0, ranks=None):
    ranks = range(size) if ranks is None else ranks
    return sum((coef(name, r, scale) for r in ranks), torch.zeros(SHAPES[name])) / size


def distributed_sgd(hvd, model, tag, momentum=0.0, **kwargs):
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=momentum)
    return hvd.DistributedOptimizer(opt, named_parameters=named(model, tag), **kwargs)


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def close(got, expected, tol=1e-6):
    assert got is not None, "parameter has no gradient"
    torch.testing.assert_close(got.detach().float(), expected.float(), rtol=tol, atol=tol)


def step_applies_the_mean(model, opt, rank, size):
    """One ordinary step: every parameter moves by LR times the ranks' mean gradient."""
    before = snapshot(model)
    opt.zero_grad()
    model.loss(rank).backward()
    opt.step()
    for name, p in model.named_parameters():
        close(p, before[name] - LR * mean_coef(name, size))


def drain(opt):
    """Finishes whatever a failed test left in flight (same calls on every rank)."""
    try:
        opt.synchronize()
    except Exception:
        pass


# ---------------------------------------------------------------- basic averaging


@pytest.mark.parametrize("overlap", [None, True, False])
def test_distributed_optimizer_averages_gradients(hvd, world, overlap):
    """The same averages whether the hooks submit during backward (overlap=True),
    step() submits everything (False) or braid chooses (None)."""
    rank, size = world
    model = Coef()
    opt = distributed_sgd(hvd, model, "avg.%s" % overlap, overlap=overlap)
    for step in range(3):
        before = snapshot(model)
        opt.zero_grad()
        model.loss(rank, scale=step + 1).backward()
        opt.step()
        for name, p in model.named_parameters():
            avg = mean_coef(name, size, scale=step + 1)
            close(p.grad, avg)
            close(p, before[name] - LR * avg)


def test_overlap_default_follows_free_cores(hvd, world, monkeypatch):
    """overlap=None: host gradients overlap backward only when the ranks' torch
    threads leave cores free."""
    import braid.torch.optimizer as optimizer_module

    model = Coef()
    threads = torch.get_num_threads()
    for cpus, expected in ((threads * hvd.local_size(), False),
                           (threads * hvd.local_size() + 1, True)):
        monkeypatch.setattr(optimizer_module, "_usable_cpus", lambda: cpus)
        opt = distributed_sgd(hvd, model, "overlap.default")
        assert opt._overlap is expected
        assert distributed_sgd(hvd, model, "overlap.on", overlap=True)._overlap is True
        assert distributed_sgd(hvd, model, "overlap.off", overlap=False)._overlap is False


def test_default_names_and_two_param_groups(hvd, world):
    """Without named_parameters, Horovod names the allreduces by position."""
    rank, size = world
    model = Coef()
    base = torch.optim.SGD([{"params": [model.a, model.b]},
                            {"params": [model.c], "lr": 2 * LR}], lr=LR)
    opt = hvd.DistributedOptimizer(base)
    before = snapshot(model)
    opt.zero_grad()
    model.loss(rank).backward()
    opt.step()
    for name, p in model.named_parameters():
        lr = 2 * LR if name == "c" else LR
        close(p, before[name] - lr * mean_coef(name, size))


def test_op_sum(hvd, world):
    rank, size = world
    model = Coef()
    opt = distributed_sgd(hvd, model, "sum", op=hvd.Sum)
    before = snapshot(model)
    opt.zero_grad()
    model.loss(rank).backward()
    opt.step()
    for name, p in model.named_parameters():
        total = mean_coef(name, size) * size
        close(p.grad, total)
        close(p, before[name] - LR * total)


def test_gradient_predivide_factor(hvd, world):
    """Average split as 1/f before the sum and f/size after: still the average."""
    rank, size = world
    model = Coef()
    opt = distributed_sgd(hvd, model, "predivide", gradient_predivide_factor=4.0)
    before = snapshot(model)
    opt.zero_grad()
    model.loss(rank).backward()
    opt.step()
    for name, p in model.named_parameters():
        close(p.grad, mean_coef(name, size))
        close(p, before[name] - LR * mean_coef(name, size))


def test_gradient_predivide_factor_needs_average(hvd, world):
    model = Coef()
    with pytest.raises(ValueError, match="gradient_predivide_factor"):
        distributed_sgd(hvd, model, "predivide.sum", op=hvd.Sum, gradient_predivide_factor=2.0)


def test_adasum_optimizer_not_implemented(hvd, world):
    rank, size = world
    model = Coef()
    with pytest.raises(NotImplementedError, match="Adasum"):
        opt = distributed_sgd(hvd, model, "adasum", op=hvd.Adasum)
        model.loss(rank).backward()
        opt.step()


# ---------------------------------------------------------------- backward_passes_per_step


def test_backward_passes_per_step_2(hvd, world):
    """Two backward passes accumulate locally; step() applies the average over ranks
    of the accumulated (summed) gradients. Twice, to see the count reset."""
    rank, size = world
    model = Coef()
    opt = distributed_sgd(hvd, model, "bpps2", backward_passes_per_step=2)
    for step in range(2):
        before = snapshot(model)
        opt.zero_grad()
        model.loss(rank, scale=1.0).backward()
        model.loss(rank, scale=3.0 + step).backward()
        opt.step()
        for name, p in model.named_parameters():
            accumulated = mean_coef(name, size, 1.0) + mean_coef(name, size, 3.0 + step)
            close(p.grad, accumulated)
            close(p, before[name] - LR * accumulated)


@pytest.mark.parametrize("overlap", [True, False])
def test_backward_more_than_backward_passes_per_step_raises(hvd, world, overlap):
    needs_two(world)
    rank, size = world
    model = Coef()
    opt = distributed_sgd(hvd, model, "bpps.over.%s" % overlap, backward_passes_per_step=2,
                          overlap=overlap)
    try:
        opt.zero_grad()
        model.loss(rank).backward()
        model.loss(rank).backward()
        with pytest.raises(AssertionError) as err:
            model.loss(rank).backward()
        assert str(err.value) == (
            "Gradients were computed more than backward_passes_per_step times before call "
            "to step(). Increase backward_passes_per_step to accumulate gradients locally.")
    finally:
        drain(opt)
    # Usable again once synchronized.
    before = snapshot(model)
    opt.zero_grad()
    model.loss(rank).backward()
    model.loss(rank).backward()
    opt.synchronize()
    with opt.skip_synchronize():
        opt.step()
    for name, p in model.named_parameters():
        close(p, before[name] - LR * 2 * mean_coef(name, size))


# ---------------------------------------------------------------- groups


@pytest.mark.parametrize("groups", ["two", "list"])
def test_groups(hvd, world, groups):
    rank, size = world
    model = Coef()
    spec = 2 if groups == "two" else [[model.a, model.c]]  # b forms a group of its own
    opt = distributed_sgd(hvd, model, "groups.%s" % groups, groups=spec)
    for step in range(2):
        before = snapshot(model)
        opt.zero_grad()
        model.loss(rank, scale=step + 1).backward()
        opt.step()
        for name, p in model.named_parameters():
            close(p.grad, mean_coef(name, size, step + 1))
            close(p, before[name] - LR * mean_coef(name, size, step + 1))


def test_groups_must_be_tensors(hvd, world):
    model = Coef()
    with pytest.raises(ValueError):
        distributed_sgd(hvd, model, "groups.bad", groups=[["a", "b"]])


# ---------------------------------------------------------------- compression


@pytest.mark.parametrize("kind", ["fp16", "bf16"])
def test_compression(hvd, world, kind):
    rank, size = world
    model = Coef()
    opt = distributed_sgd(hvd, model, "comp.%s" % kind,
                          compression=getattr(hvd.Compression, kind))
    before = snapshot(model)
    opt.zero_grad()
    model.loss(rank).backward()
    opt.step()
    tol = 1e-3 if kind == "fp16" else 1e-2
    for name, p in model.named_parameters():
        assert p.grad.dtype == torch.float32
        close(p.grad, mean_coef(name, size), tol)
        close(p, before[name] - LR * mean_coef(name, size), tol)


# ---------------------------------------------------------------- missing gradients


def test_parameter_without_grad_for_one_step(hvd, world):
    """b stops requiring grad for one step, then requires it again."""
    rank, size = world
    model = Coef()
    opt = distributed_sgd(hvd, model, "toggle")
    before = snapshot(model)
    model.b.requires_grad_(False)
    opt.zero_grad()
    model.loss(rank).backward()
    opt.step()
    close(model.b, before["b"])  # zero (or no) gradient: unchanged
    assert model.b.grad is None or torch.count_nonzero(model.b.grad) == 0
    for name in ("a", "c"):
        close(getattr(model, name), before[name] - LR * mean_coef(name, size))
    model.b.requires_grad_(True)
    step_applies_the_mean(model, opt, rank, size)


def test_parameter_unused_on_one_rank(hvd, world):
    """Rank 0's loss does not use c: it gets no gradient there, yet its allreduce
    must still happen (as zeros), or the other ranks would wait for it."""
    rank, size = world
    model = Coef()
    opt = distributed_sgd(hvd, model, "unused")
    for step in range(2):
        before = snapshot(model)
        opt.zero_grad()
        model.loss(rank, skip=("c",) if rank == 0 else ()).backward()
        opt.step()
        for name, p in model.named_parameters():
            ranks = range(1, size) if name == "c" else range(size)
            close(p, before[name] - LR * mean_coef(name, size, ranks=ranks))


@pytest.mark.parametrize("as_dense", [False, True], ids=["sparse", "sparse_as_dense"])
def test_sparse_gradients(hvd, world, as_dense):
    """An embedding with sparse gradients: rows looked up on several ranks (and twice
    on one rank) get the average over ranks of the summed row gradients."""
    rank, size = world
    torch.manual_seed(3)
    emb = nn.Embedding(10, 3, sparse=True)
    opt = hvd.DistributedOptimizer(torch.optim.SGD(emb.parameters(), lr=LR),
                                   named_parameters=[("sparse.%s.w" % as_dense, emb.weight)],
                                   sparse_as_dense=as_dense)
    for step in range(2):
        before = emb.weight.detach().clone()
        idx = torch.tensor([rank, rank + 1, 5, 5 + step])
        opt.zero_grad()
        (emb(idx) * (rank + 1)).sum().backward()
        opt.step()
        expected = torch.zeros(10, 3)
        for r in range(size):
            for i in (r, r + 1, 5, 5 + step):
                expected[i] += (r + 1) / size
        close(emb.weight, before - LR * expected)


# ---------------------------------------------------------------- argument checks


def test_duplicate_parameter_names_raise(hvd, world):
    model = Coef()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    params = [("same", model.a), ("same", model.b), ("other", model.c)]
    with pytest.raises(ValueError, match="Parameter names in named_parameters must be unique"):
        hvd.DistributedOptimizer(opt, named_parameters=params)


def test_named_parameters_must_cover_every_parameter(hvd, world):
    model = Coef()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    with pytest.raises(ValueError, match="named_parameters was specified, but one or more "
                                         "model parameters were not named"):
        hvd.DistributedOptimizer(opt, named_parameters=[("a", model.a), ("b", model.b)])


def test_named_parameters_must_be_tuples(hvd, world):
    model = Coef()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    with pytest.raises(ValueError, match="named_parameters should be a sequence of tuples"):
        hvd.DistributedOptimizer(opt, named_parameters=list(model.parameters()))


# ---------------------------------------------------------------- synchronize / zero_grad


def test_synchronize_then_skip_synchronize(hvd, world):
    """synchronize(), change the reduced gradients (as gradient clipping does), then
    step() inside skip_synchronize() must not reduce again."""
    rank, size = world
    model = Coef()
    opt = distributed_sgd(hvd, model, "skip")
    before = snapshot(model)
    opt.zero_grad()
    model.loss(rank).backward()
    opt.synchronize()
    for name, p in model.named_parameters():
        close(p.grad, mean_coef(name, size))
        p.grad.mul_(rank + 1)  # rank-dependent: a second reduction would show
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with opt.skip_synchronize():
            opt.step()
    for name, p in model.named_parameters():
        close(p, before[name] - LR * (rank + 1) * mean_coef(name, size))
    # The next iteration reduces again as usual.
    step_applies_the_mean(model, opt, rank, size)


def test_step_after_synchronize_without_skip_warns(hvd, world):
    rank, size = world
    model = Coef()
    opt = distributed_sgd(hvd, model, "nowarn")
    opt.zero_grad()
    model.loss(rank).backward()
    opt.synchronize()
    with pytest.warns(UserWarning, match="skip_synchronize"):
        opt.step()


@pytest.mark.parametrize("overlap", [True, False])
def test_zero_grad_with_outstanding_allreduces_raises(hvd, world, overlap):
    """Also when the allreduces are not submitted yet (overlap=False): zero_grad would
    clear gradients that step() is about to reduce."""
    needs_two(world)
    rank, size = world
    model = Coef()
    opt = distributed_sgd(hvd, model, "zerograd.%s" % overlap, overlap=overlap)
    opt.zero_grad()
    model.loss(rank).backward()
    try:
        with pytest.raises(AssertionError) as err:
            opt.zero_grad()
        assert str(err.value) == (
            "optimizer.zero_grad() was called after loss.backward() but before "
            "optimizer.step() or optimizer.synchronize(). This is prohibited as it can "
            "cause a race condition.")
    finally:
        drain(opt)
    # The gradients were not cleared: step applies the average.
    before = snapshot(model)
    with opt.skip_synchronize():
        opt.step()
    for name, p in model.named_parameters():
        close(p, before[name] - LR * mean_coef(name, size))
    opt.zero_grad()  # fine once nothing is in flight


# ---------------------------------------------------------------- equivalence


@pytest.mark.parametrize("momentum", [0.0, 0.9], ids=["sgd", "momentum"])
@pytest.mark.parametrize("passes", [1, 2], ids=["bpps1", "bpps2"])
def test_equivalent_to_one_process_on_the_full_batch(hvd, world, momentum, passes):
    """size ranks taking batch b each follow, step for step, one process taking the
    concatenated size * b batch with the same optimizer (loss: mean over the batch, so
    the average of per-rank gradients is the full-batch gradient). With
    backward_passes_per_step=2 each rank splits its part in two halves and scales each
    half's loss by 1/2."""
    rank, size = world
    batch, steps = 6, 5
    torch.manual_seed(100 + rank)  # different initial weights on every rank ...
    model = MLP()
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)  # ... until rank 0's win
    reference = copy.deepcopy(model)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.2, momentum=momentum)
    opt = hvd.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.2, momentum=momentum),
        named_parameters=named(model, "equiv.%s.%d" % (momentum, passes)),
        backward_passes_per_step=passes)
    for step in range(steps):
        x, y = full_batch(step, size, batch)
        mine = slice(rank * batch, (rank + 1) * batch)
        xs, ys = x[mine], y[mine]
        opt.zero_grad()
        half = batch // passes
        for k in range(passes):
            part = slice(k * half, (k + 1) * half)
            (F.mse_loss(model(xs[part]), ys[part]) / passes).backward()
        opt.step()

        ref_opt.zero_grad()
        F.mse_loss(reference(x), y).backward()
        ref_opt.step()
        for (name, p), q in zip(model.named_parameters(), reference.parameters()):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-5, atol=1e-5,
                                       msg=lambda m: "step %d, %s: %s" % (step, name, m))
    # Every rank holds the same parameters.
    gathered = hvd.allgather_object([p.detach() for p in model.parameters()],
                                    name="equiv.params.%s.%d" % (momentum, passes))
    for other in gathered:
        for p, q in zip(model.parameters(), other):
            assert torch.equal(p.detach(), q)
