"""braid.torch's restart wrappers and the optimizer state: PRSGDMomentum refuses an
optimizer it would silently run as another algorithm, LocalSGD refuses state names
the optimizer does not keep, and a parameter that has no state yet on some rank (no
gradient so far) gets it before a restart, so the restart averages the same buffers
on every rank instead of failing.

The expected averages come from a plain torch optimizer stepped on the same data
and gathered from every rank (a missing buffer counts as zeros).

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/test_torch_restart_state.py.
"""

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import restart_reference as ref  # noqa: E402

LR, BETA, PERIOD = 0.05, 0.9, 3


class TwoLayers(nn.Module):
    """A shared layer, a second one that rank 0 leaves out during the first period,
    and a third that no rank uses."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.first = nn.Linear(ref.IN, ref.OUT).double()
        self.second = nn.Linear(ref.OUT, ref.OUT).double()
        self.unused = nn.Linear(2, 2).double()

    def loss(self, rank, step):
        x, y = (torch.from_numpy(a) for a in ref.batch(rank, step))
        out = self.first(x)
        if rank != 0 or step > PERIOD:
            out = out + self.second(out)
        return 0.5 * ((out - y) ** 2).sum(1).mean()


def local_steps(model, opt, rank, steps):
    for t in steps:
        opt.zero_grad()
        model.loss(rank, t).backward()
        opt.step()


def gathered_mean(hvd, tensors, name):
    """The mean over the ranks of each tensor."""
    every = hvd.allgather_object([t.detach().clone() for t in tensors], name=name)
    return [sum(r[k] for r in every) / len(every) for k in range(len(tensors))]


def assert_equal_on_every_rank(hvd, tensors, name):
    every = hvd.allgather_object([t.detach().clone() for t in tensors], name=name)
    for other in every:
        for a, b in zip(other, every[0]):
            assert torch.equal(a, b)


def state_or_zeros(opt, model, key):
    return [opt.state.get(p, {}).get(key, torch.zeros_like(p)) for p in model.parameters()]


def test_pr_sgd_momentum_refuses_what_is_not_pr_sgd_momentum(hvd):
    model = TwoLayers()
    params = list(model.parameters())
    cases = [
        (torch.optim.SGD(params, lr=LR), r"momentum 0.*use LocalSGD\(optimizer, period\)"),
        (torch.optim.SGD(params, lr=LR, momentum=BETA, dampening=0.5),
         r"dampening 0\.5.*average_state='momentum'"),
        (torch.optim.Adam(params), r"Adam is not SGD.*LocalSGD"),
        (torch.optim.SGD([{"params": params[:2]}, {"params": params[2:], "momentum": 0.0}],
                         lr=LR, momentum=BETA), r"param group 1 has momentum 0"),
    ]
    for opt, match in cases:
        with pytest.raises(ValueError, match=match):
            hvd.PRSGDMomentum(opt, period=PERIOD)


def test_local_sgd_refuses_state_the_optimizer_does_not_keep(hvd):
    model = TwoLayers()
    with pytest.raises(ValueError, match="'momentum_buffer'.*SGD.*keeps nothing"):
        hvd.LocalSGD(torch.optim.SGD(model.parameters(), lr=LR), PERIOD,
                     average_state="momentum")
    with pytest.raises(ValueError, match="'exp_avgs'.*it keeps 'exp_avg', 'exp_avg_sq'"):
        hvd.LocalSGD(torch.optim.Adam(model.parameters()), PERIOD, average_state=("exp_avgs",))


def test_pr_sgd_momentum_with_a_parameter_that_has_no_momentum_yet(hvd, world):
    """Rank 0 has no momentum_buffer for `second` (and no rank for `unused`) at the
    first restart: it averages zeros for them, and training goes on."""
    rank, _ = world
    model, plain = TwoLayers(), TwoLayers()
    opt = hvd.PRSGDMomentum(torch.optim.SGD(model.parameters(), lr=LR, momentum=BETA),
                            period=PERIOD, name="state.prsgd")
    plain_opt = torch.optim.SGD(plain.parameters(), lr=LR, momentum=BETA)
    local_steps(model, opt, rank, range(1, PERIOD + 1))
    local_steps(plain, plain_opt, rank, range(1, PERIOD + 1))
    params = gathered_mean(hvd, list(plain.parameters()), "state.prsgd.x")
    momentum = gathered_mean(hvd, state_or_zeros(plain_opt, plain, "momentum_buffer"),
                             "state.prsgd.u")
    for k, p in enumerate(model.parameters()):
        torch.testing.assert_close(p.detach(), params[k], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(opt.state[p]["momentum_buffer"], momentum[k], rtol=1e-12,
                                   atol=1e-12)
    local_steps(model, opt, rank, range(PERIOD + 1, 2 * PERIOD + 1))  # the next restart
    assert_equal_on_every_rank(hvd, list(model.parameters()), "state.prsgd.after")


def test_local_sgd_averages_adam_state_that_some_rank_lacks(hvd, world):
    """Adam keeps no state for a parameter before its first gradient; with
    average_state="all" rank 0 gets zero moments and step 0 for `second` at the
    first restart, averaged with the others', and its next Adam step works."""
    rank, _ = world
    model, plain = TwoLayers(), TwoLayers()
    opt = hvd.LocalSGD(torch.optim.Adam(model.parameters(), lr=0.01), PERIOD,
                       average_state="all", name="state.adam")
    plain_opt = torch.optim.Adam(plain.parameters(), lr=0.01)
    local_steps(model, opt, rank, range(1, PERIOD + 1))
    local_steps(plain, plain_opt, rank, range(1, PERIOD + 1))
    for key in ("exp_avg", "exp_avg_sq"):
        mean = gathered_mean(hvd, state_or_zeros(plain_opt, plain, key), "state.adam." + key)
        for k, p in enumerate(model.parameters()):
            torch.testing.assert_close(opt.state[p][key], mean[k], rtol=1e-12, atol=1e-12)
    second = model.second.weight
    assert float(opt.state[second]["step"]) == (0 if rank == 0 else PERIOD)
    local_steps(model, opt, rank, range(PERIOD + 1, 2 * PERIOD + 1))
    assert float(opt.state[second]["step"]) == (PERIOD if rank == 0 else 2 * PERIOD)
    assert_equal_on_every_rank(hvd, list(model.parameters()), "state.adam.after")


def test_slowmo_average_base_state_with_a_parameter_that_has_none_yet(hvd, world):
    rank, _ = world
    model = TwoLayers()
    opt = hvd.SlowMo(torch.optim.SGD(model.parameters(), lr=LR, momentum=BETA), PERIOD,
                     base_state="average", name="state.slowmo")
    local_steps(model, opt, rank, range(1, 2 * PERIOD + 1))
    assert_equal_on_every_rank(hvd, [opt.state[p]["momentum_buffer"]
                                     for p in model.parameters()], "state.slowmo.u")
