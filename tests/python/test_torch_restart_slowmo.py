"""braid.torch.SlowMo and BMUF against N workers simulated in one process
(restart_reference.py): SlowMo's equations with the base optimizer's state kept,
reset or averaged and a learning rate that changes; BMUF and Nesterov-BMUF against
block momentum written in BMUF's own terms (which checks the documented mapping);
BMUF with its defaults converges on least squares; slow_momentum = 0, slow_lr = 1
equals local SGD; state_dict round-trips mid-period; one allreduce per restart.

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/test_torch_restart_slowmo.py.
"""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import braid  # noqa: E402
import restart_reference as ref  # noqa: E402
from test_torch_restart import BETA, assert_matches, local_step, make_model  # noqa: E402


def lr_at(t):
    """A learning rate that halves after step 5 (set on the param groups, as a
    scheduler would): the outer step must use the current one."""
    return 0.05 if t <= 5 else 0.025


def run(opt, model, rank, steps, expect, lr=lr_at):
    for t in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = lr(t)
        local_step(model, opt, rank, t)
        x, u = expect[t - 1][rank]
        assert_matches(model.parameters(), x, "parameters after step %d" % t)
        if u is not None:
            got = [opt.state[p].get("momentum_buffer") for p in model.parameters()]
            if all(g is not None for g in got):
                assert_matches(got, u, "momentum after step %d" % t)


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=lr_at(1), momentum=BETA)


@pytest.mark.parametrize("base_state", ["keep", "reset", "average"])
def test_slowmo_matches_reference(hvd, world, base_state):
    rank, n = world
    expect = ref.slowmo(n, 11, lr_at, BETA, tau=3, alpha=1.0, beta_slow=0.5, nesterov=False,
                        base_state=base_state)
    model = make_model()
    opt = hvd.SlowMo(sgd(model), period=3, slow_lr=1.0, slow_momentum=0.5,
                     base_state=base_state)
    run(opt, model, rank, 11, expect)


def test_slowmo_nesterov_matches_reference(hvd, world):
    rank, n = world
    expect = ref.slowmo(n, 9, lr_at, BETA, tau=2, alpha=0.7, beta_slow=0.8, nesterov=True,
                        base_state="keep")
    model = make_model()
    opt = hvd.SlowMo(sgd(model), period=2, slow_lr=0.7, slow_momentum=0.8, nesterov=True)
    run(opt, model, rank, 9, expect)


@pytest.mark.parametrize("nesterov", [False, True], ids=["classic", "nesterov"])
def test_bmuf_matches_block_momentum(hvd, world, nesterov):
    rank, n = world
    expect = ref.bmuf(n, 10, 0.05, BETA, tau=3, eta=0.6, zeta=1.3, nesterov=nesterov)
    model = make_model()
    opt = hvd.BMUF(sgd(model), period=3, block_momentum=0.6, block_lr=1.3, nesterov=nesterov)
    run(opt, model, rank, 10, expect, lr=lambda t: 0.05)


def test_bmuf_defaults(hvd, world):
    _, n = world
    model = make_model()
    opt = hvd.BMUF(sgd(model), period=2)
    assert isinstance(opt, hvd.SlowMo)
    state = opt.state_dict()["braid_restart"]
    assert state["kind"] == "slowmo"
    # The paper's block momentum 1 - 1/N and block learning rate 1, with Nesterov
    # block momentum.
    expect = ref.bmuf(n, 8, 0.05, BETA, tau=2, eta=1.0 - 1.0 / n, zeta=1.0, nesterov=True)
    run(opt, model, world[0], 8, expect, lr=lambda t: 0.05)


LS_TAU, LS_LR, LS_BLOCKS = 4, 0.05, 120


def least_squares_step(model, opt, rank):
    X, Y = (torch.from_numpy(a) for a in ref.ls_data(rank))
    opt.zero_grad()
    (0.5 * ((model(X) - Y) ** 2).sum(1).mean()).backward()
    opt.step()


def test_bmuf_defaults_converge_on_least_squares(hvd, world):
    """BMUF with its defaults (block momentum 1 - 1/N, block lr 1, Nesterov) over 120
    blocks of full-batch SGD on least squares, where every rank has its own data:
    the global loss falls to the optimum and never rises above where it started,
    block by block as the paper's BMUF-NBM (restart_reference.bmuf_least_squares)."""
    rank, n = world
    expect = ref.bmuf_least_squares(n, LS_BLOCKS, LS_TAU, LS_LR, 1.0 - 1.0 / n, 1.0, True)
    best = ref.ls_min_loss(n)
    model = make_model()
    opt = hvd.BMUF(torch.optim.SGD(model.parameters(), lr=LS_LR), period=LS_TAU)
    losses = [ref.ls_loss([p.detach().numpy() for p in model.parameters()], n)]
    for _ in range(LS_BLOCKS):
        for _ in range(LS_TAU):
            least_squares_step(model, opt, rank)
        losses.append(ref.ls_loss([p.detach().numpy() for p in model.parameters()], n))
    np.testing.assert_allclose(losses, expect, rtol=1e-9, err_msg="loss per block")
    assert max(losses) <= losses[0]
    assert losses[-1] - best < 1e-2 * (losses[0] - best), (losses[0], losses[-1], best)


@pytest.mark.parametrize("n", [3, 4])
def test_reference_bmuf_measures_the_block_from_its_start(n):
    """The reference itself: BMUF-NBM with the paper's defaults converges on least
    squares at N = 3 and 4, while measuring the block gradient from W(t-1) instead
    of the look-ahead start (the look-ahead counted twice) diverges."""
    args = (n, LS_BLOCKS, LS_TAU, LS_LR, 1.0 - 1.0 / n, 1.0, True)
    paper = ref.bmuf_least_squares(*args)
    misread = ref.bmuf_least_squares(*args, measure_from="w")
    best = ref.ls_min_loss(n)
    assert paper[-1] - best < 1e-2 * (paper[0] - best)
    assert misread[-1] > 1e3 * misread[0]


def test_slowmo_without_momentum_is_local_sgd(hvd, world):
    rank, n = world
    expect = ref.local_momentum_sgd(n, 8, 0.05, BETA, False, 4, average_u=False)
    model_a, model_b = make_model(), make_model()
    slow = hvd.SlowMo(sgd(model_a), period=4, slow_lr=1.0, slow_momentum=0.0)
    local = hvd.LocalSGD(sgd(model_b), period=4)
    for t in range(1, 9):
        local_step(model_a, slow, rank, t)
        local_step(model_b, local, rank, t)
        assert_matches(model_a.parameters(), [p.detach().numpy() for p in model_b.parameters()],
                       "step %d" % t, tol=1e-12)
        assert_matches(model_a.parameters(), expect[t - 1][rank][0], "step %d" % t)


def test_slowmo_state_dict_round_trips_mid_period(hvd, world):
    rank, _ = world

    def build(name):
        model = make_model()
        opt = hvd.SlowMo(sgd(model), period=4, slow_lr=0.9, slow_momentum=0.5, nesterov=True,
                         name=name)
        return model, opt

    model, opt = build("slowmo.roundtrip.a")
    for t in range(1, 7):  # a restart at 4 (nonzero slow momentum), two steps more
        local_step(model, opt, rank, t)
    saved_opt = copy.deepcopy(opt.state_dict())
    saved_model = copy.deepcopy(model.state_dict())
    ours = saved_opt["braid_restart"]
    assert ours["step"] == 6 and ours["started"]
    assert all(float(s.abs().sum()) > 0 for s in ours["slow_momentum"])
    for t in range(7, 12):
        local_step(model, opt, rank, t)

    model2, opt2 = build("slowmo.roundtrip.b")
    model2.load_state_dict(saved_model)
    opt2.load_state_dict(saved_opt)
    for t in range(7, 12):
        local_step(model2, opt2, rank, t)
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("base_state", ["keep", "average"])
def test_slowmo_counters_one_allreduce_per_restart(hvd, world, base_state):
    rank, _ = world
    model = make_model()
    opt = hvd.SlowMo(sgd(model), period=3, base_state=base_state)
    elements = sum(p.numel() for p in model.parameters())
    per_restart = (elements * (2 if base_state == "average" else 1) + braid.ops.CHECK_SLOTS) * 8
    braid.reset_stats()
    for t in range(1, 10):
        local_step(model, opt, rank, t)
    stats = braid.stats()["allreduce"]
    assert stats["count"] == 3
    assert stats["bytes"] == 3 * per_restart


def test_slowmo_rejects_what_it_cannot_do(hvd):
    model = make_model()
    with pytest.raises(ValueError, match="base_state"):
        hvd.SlowMo(sgd(model), period=2, base_state="sometimes")
    with pytest.raises(braid.BraidInvalidArgument, match="slow_lr"):
        hvd.SlowMo(sgd(model), period=2, slow_lr=0.0)
    opt = hvd.SlowMo(torch.optim.SGD([{"params": [model.weight], "lr": 0.1},
                                      {"params": [model.bias], "lr": 0.2}]), period=1)
    with pytest.raises(ValueError, match="one learning rate"):
        model(torch.zeros(1, ref.IN, dtype=torch.float64)).sum().backward()
        opt.step()


def test_numpy_slowmo_op(hvd, world):
    rank, n = world
    x = np.full(6, 1.0)
    x_old, s = np.zeros(6), np.zeros(6)
    op = braid.ops.SlowMo(period=1, slow_lr=1.0, slow_momentum=0.5, name="ops.slowmo.numpy")
    op.set_buffers([x], x_old, s)
    op.init_slow_params()
    assert np.array_equal(x_old, np.ones(6))
    x[:] = 1.0 + rank  # xbar = 1 + (n - 1) / 2
    assert op.step(lr=0.5)
    s_ref = (1.0 - (1.0 + (n - 1) / 2)) / 0.5
    np.testing.assert_allclose(s, np.full(6, s_ref), rtol=1e-12)
    np.testing.assert_allclose(x, np.full(6, 1.0 - 0.5 * s_ref), rtol=1e-12)
    np.testing.assert_allclose(x_old, x, rtol=0)
