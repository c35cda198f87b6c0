"""DistributedOptimizer._parameter_names, Horovod's {parameter: name} dict that
scripts and tools read: it covers every parameter, its names are unique and the same
on every rank, with and without named_parameters, and they are the names the
gradients' allreduces carry.

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/test_torch_parameter_names.py.
"""

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import braid.torch.optimizer as optimizer_module  # noqa: E402
from torch_util import MLP, named  # noqa: E402


@pytest.fixture
def allreduce_names(monkeypatch):
    """The names the optimizer passes to its single-tensor allreduces."""
    seen = []
    submit = optimizer_module.allreduce_async_

    def recording(tensor, *args, name=None, **kwargs):
        seen.append(name)
        return submit(tensor, *args, name=name, **kwargs)

    monkeypatch.setattr(optimizer_module, "allreduce_async_", recording)
    return seen


def one_step(model, opt):
    opt.zero_grad()
    F.mse_loss(model(torch.ones(3, 4)), torch.zeros(3, 2)).backward()
    opt.step()


def check_names(hvd, model, opt, tag):
    names = opt._parameter_names
    params = list(model.parameters())
    assert set(names) == set(params)
    ordered = [names[p] for p in params]
    assert all(isinstance(n, str) and n for n in ordered)
    assert len(set(ordered)) == len(ordered), ordered
    every = hvd.allgather_object(ordered, name=tag + ".names")
    assert all(other == ordered for other in every), every
    return ordered


def test_parameter_names_from_named_parameters(hvd, allreduce_names):
    model = MLP()
    pairs = named(model, "pnames.named")
    opt = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1),
                                   named_parameters=pairs)
    assert opt._parameter_names == {p: n for n, p in pairs}
    ordered = check_names(hvd, model, opt, "pnames.named")
    one_step(model, opt)
    assert sorted(allreduce_names) == sorted(ordered)


def test_parameter_names_without_named_parameters(hvd, allreduce_names):
    """Numbered in param_groups order, over two param groups."""
    model = MLP()
    opt = hvd.DistributedOptimizer(torch.optim.SGD(
        [{"params": model.fc1.parameters()}, {"params": model.fc2.parameters(), "lr": 0.2}],
        lr=0.1))
    ordered = check_names(hvd, model, opt, "pnames.unnamed")
    assert ordered == ["noname.%d" % i for i in range(4)]
    one_step(model, opt)
    assert sorted(allreduce_names) == sorted(ordered)
