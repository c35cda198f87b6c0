"""braid.torch's broadcast_parameters and broadcast_optimizer_state against
Horovod's PyTorch semantics: every rank ends with the root's parameters, buffers
and optimizer state.

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/."""

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from torch_util import MLP, full_batch, named  # noqa: E402


# ---------------------------------------------------------------- broadcast_parameters


class WithBuffers(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        return self.out(self.bn(self.fc(x)))


def built(seed, forwards):
    """A model from `seed` whose BatchNorm buffers moved through `forwards` passes."""
    torch.manual_seed(seed)
    model = WithBuffers()
    for i in range(forwards):
        model(torch.randn(5, 3) + i)
    return model


def test_broadcast_parameters_state_dict(hvd, world):
    rank, size = world
    for root in sorted({0, size - 1}):
        model = built(10 + rank, forwards=rank + 1)
        hvd.broadcast_parameters(model.state_dict(), root_rank=root)
        expected = built(10 + root, forwards=root + 1).state_dict()
        got = model.state_dict()
        assert got.keys() == expected.keys()
        for key in expected:
            assert got[key].dtype == expected[key].dtype, key
            assert torch.equal(got[key], expected[key]), key


def test_broadcast_parameters_named_parameters_list(hvd, world):
    rank, size = world
    root = size - 1
    model = built(20 + rank, forwards=rank + 1)
    own_buffers = {n: b.clone() for n, b in model.named_buffers()}
    hvd.broadcast_parameters(list(model.named_parameters()), root_rank=root)
    expected = built(20 + root, forwards=root + 1)
    for (name, p), q in zip(model.named_parameters(), expected.parameters()):
        assert torch.equal(p.detach(), q.detach()), name
        assert p.requires_grad
    for name, b in model.named_buffers():  # parameters only
        assert torch.equal(b, own_buffers[name]), name


def test_broadcast_parameters_plain_list(hvd, world):
    rank, size = world
    model = built(30 + rank, forwards=0)
    hvd.broadcast_parameters(list(model.parameters()), root_rank=0)
    for p, q in zip(model.parameters(), built(30, forwards=0).parameters()):
        assert torch.equal(p.detach(), q.detach())


# ---------------------------------------------------------------- broadcast_optimizer_state

OPTIMIZERS = {
    "SGD": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    "Adam": lambda params, lr: torch.optim.Adam(params, lr=lr),
    "RMSprop": lambda params, lr: torch.optim.RMSprop(params, lr=lr, momentum=0.5, centered=True),
    "Adagrad": lambda params, lr: torch.optim.Adagrad(params, lr=lr),
}


def trained(opt_name, data_rank, lr, steps=2):
    """Same initial weights everywhere; `steps` steps on rank `data_rank`'s data."""
    torch.manual_seed(5)
    model = MLP()
    opt = OPTIMIZERS[opt_name](model.parameters(), lr)
    g = torch.Generator().manual_seed(50 + data_rank)
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(model(torch.randn(8, 4, generator=g)), torch.randn(8, 2, generator=g)).backward()
        opt.step()
    return model, opt


def assert_state_equal(got, expected):
    got, expected = got.state_dict(), expected.state_dict()
    assert got["state"].keys() == expected["state"].keys()
    for index, state in expected["state"].items():
        assert got["state"][index].keys() == state.keys(), index
        for key, value in state.items():
            other = got["state"][index][key]
            if torch.is_tensor(value):
                assert torch.is_tensor(other) and other.dtype == value.dtype, (index, key)
                assert torch.equal(other, value), (index, key)
            else:
                assert type(other) is type(value) and other == value, (index, key)
    assert len(got["param_groups"]) == len(expected["param_groups"])
    for g, e in zip(got["param_groups"], expected["param_groups"]):
        for key, value in e.items():
            if key != "params":
                assert type(g[key]) is type(value) and g[key] == value, key


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_broadcast_optimizer_state(hvd, world, opt_name):
    """After steps on rank-dependent data with a rank-dependent learning rate, the
    state (momentum, moments, step counts) and hyperparameters become rank 0's."""
    rank, size = world
    model, opt = trained(opt_name, rank, lr=0.01 * (rank + 1))
    hvd.broadcast_optimizer_state(opt, root_rank=0)
    _, expected = trained(opt_name, 0, lr=0.01)
    assert_state_equal(opt, expected)
    # Still usable: one more step.
    opt.zero_grad()
    F.mse_loss(model(torch.ones(2, 4)), torch.zeros(2, 2)).backward()
    opt.step()


def test_broadcast_optimizer_state_from_last_rank(hvd, world):
    rank, size = world
    root = size - 1
    _, opt = trained("Adam", rank, lr=0.01 * (rank + 1), steps=rank + 1)
    hvd.broadcast_optimizer_state(opt, root_rank=root)
    _, expected = trained("Adam", root, lr=0.01 * (root + 1), steps=root + 1)
    assert_state_equal(opt, expected)


def test_broadcast_optimizer_state_before_training(hvd, world):
    """The usual start of a Horovod script: a fresh DistributedOptimizer whose state
    is still empty; the hyperparameters become rank 0's and training proceeds."""
    rank, size = world
    torch.manual_seed(rank)
    model = MLP()
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    opt = hvd.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1 * (rank + 1), momentum=0.9),
        named_parameters=named(model, "fresh"))
    hvd.broadcast_optimizer_state(opt, root_rank=0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.9)
    x, y = full_batch(0, size, 4)
    opt.zero_grad()
    F.mse_loss(model(x[rank * 4:(rank + 1) * 4]), y[rank * 4:(rank + 1) * 4]).backward()
    opt.step()
    gathered = hvd.allgather_object([p.detach() for p in model.parameters()],
                                    name="fresh.params")
    for other in gathered:
        for p, q in zip(model.parameters(), other):
            assert torch.equal(p.detach(), q)


class PartlyUsed(nn.Module):
    """`head` never gets a gradient; `mid` only on the ranks that use it."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(8)
        self.fc = nn.Linear(4, 3)
        self.mid = nn.Linear(3, 3)
        self.head = nn.Linear(3, 2)

    def loss(self, x, use_mid):
        out = self.fc(x)
        return (self.mid(out) if use_mid else out).pow(2).mean()


@pytest.mark.parametrize("opt_name", ["SGD", "Adam", "RMSprop"])
@pytest.mark.parametrize("distributed", [False, True], ids=["plain", "distributed"])
def test_broadcast_optimizer_state_with_parameters_without_gradients(hvd, world, opt_name,
                                                                     distributed):
    """Some parameters have no state (no gradient ever, or not on every rank): every
    rank still ends with the root's state and options, and can step on."""
    rank, size = world
    model = PartlyUsed()
    opt = OPTIMIZERS[opt_name](model.parameters(), 0.01 * (rank + 1))
    for group in opt.param_groups:
        group["weight_decay"] = 0.001 * rank
    if distributed:
        opt = hvd.DistributedOptimizer(opt, named_parameters=named(model, "partly" + opt_name))
    g = torch.Generator().manual_seed(60 + rank)
    for _ in range(2):
        opt.zero_grad()
        model.loss(torch.randn(5, 4, generator=g), use_mid=rank % 2 == 1).backward()
        opt.step()
    root = size - 1
    hvd.broadcast_optimizer_state(opt, root_rank=root)
    every = hvd.allgather_object(opt.state_dict(), name="partly.%s.%d" % (opt_name, distributed))
    for other in every:
        assert_dicts_equal(other, every[root])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * (root + 1))
    assert opt.param_groups[0]["weight_decay"] == pytest.approx(0.001 * root)
    opt.zero_grad()
    model.loss(torch.ones(2, 4), use_mid=True).backward()
    opt.step()


def assert_dicts_equal(got, expected):
    """Optimizer state dicts, tensors compared exactly."""
    assert got["state"].keys() == expected["state"].keys()
    for index, state in expected["state"].items():
        assert got["state"][index].keys() == state.keys(), index
        for key, value in state.items():
            if torch.is_tensor(value):
                assert torch.equal(got["state"][index][key], value), (index, key)
            else:
                assert got["state"][index][key] == value, (index, key)
    assert got["param_groups"] == expected["param_groups"]
