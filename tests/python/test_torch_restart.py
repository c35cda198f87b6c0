"""braid.torch.LocalSGD / PRSGDMomentum and braid.ops against N workers simulated
in one process (restart_reference.py, numpy, float64): every rank runs its worker
and compares its parameters and momentum with the reference worker of its rank
after every step. Also: the counters show one allreduce per restart, state_dict
round-trips mid-period, and ranks at different steps get an error, not a hang.

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/test_torch_restart.py.
"""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import braid  # noqa: E402
import restart_reference as ref  # noqa: E402
import torch_util  # noqa: E402

LR, BETA = 0.05, 0.9
TOL = 1e-9  # float64 throughout; the issue asks for 1e-6


def make_model():
    """The reference's linear model in torch, at the reference's starting point."""
    model = torch.nn.Linear(ref.IN, ref.OUT).double()
    w0, b0 = ref.start()
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(w0))
        model.bias.copy_(torch.from_numpy(b0))
    return model


def local_step(model, optimizer, rank, t):
    x, y = ref.batch(rank, t)
    optimizer.zero_grad()
    out = model(torch.from_numpy(x))
    loss = 0.5 * ((out - torch.from_numpy(y)) ** 2).sum(1).mean()
    loss.backward()
    optimizer.step()


def assert_matches(tensors, arrays, what, tol=TOL):
    for k, (t, a) in enumerate(zip(tensors, arrays)):
        np.testing.assert_allclose(t.detach().numpy(), a, rtol=tol, atol=tol,
                                   err_msg="%s, tensor %d" % (what, k))


def momentum(optimizer, model):
    return [optimizer.state[p]["momentum_buffer"] for p in model.parameters()]


@pytest.mark.parametrize("nesterov", [False, True], ids=["option1", "option2"])
@pytest.mark.parametrize("period", [1, 3, 8])
def test_pr_sgd_momentum_matches_reference(hvd, world, period, nesterov):
    rank, n = world
    steps = 2 * period + 2  # two restarts, ending in the middle of a period
    expect = ref.local_momentum_sgd(n, steps, LR, BETA, nesterov, period, average_u=True)
    model = make_model()
    opt = hvd.PRSGDMomentum(torch.optim.SGD(model.parameters(), lr=LR, momentum=BETA,
                                            nesterov=nesterov), period=period)
    for t in range(1, steps + 1):
        local_step(model, opt, rank, t)
        x, u = expect[t - 1][rank]
        assert_matches(model.parameters(), x, "parameters after step %d" % t)
        assert_matches(momentum(opt, model), u, "momentum after step %d" % t)
    assert opt.local_steps == steps


@pytest.mark.parametrize("nesterov", [False, True], ids=["option1", "option2"])
def test_period_one_is_synchronous_momentum_sgd(hvd, world, nesterov):
    rank, n = world
    expect = ref.sync_momentum_sgd(n, 6, LR, BETA, nesterov)
    model = make_model()
    opt = hvd.PRSGDMomentum(torch.optim.SGD(model.parameters(), lr=LR, momentum=BETA,
                                            nesterov=nesterov), period=1)
    for t in range(1, 7):
        local_step(model, opt, rank, t)
        assert_matches(model.parameters(), expect[t - 1], "step %d" % t)


def test_local_sgd_averages_parameters_only(hvd, world):
    rank, n = world
    expect = ref.local_momentum_sgd(n, 7, LR, BETA, False, 3, average_u=False)
    model = make_model()
    opt = hvd.LocalSGD(torch.optim.SGD(model.parameters(), lr=LR, momentum=BETA), period=3)
    for t in range(1, 8):
        local_step(model, opt, rank, t)
        x, u = expect[t - 1][rank]
        assert_matches(model.parameters(), x, "parameters after step %d" % t)
        assert_matches(momentum(opt, model), u, "momentum after step %d" % t)


def test_local_sgd_averages_all_state_of_adam(hvd, world):
    rank, n = world
    (x, m, v) = ref.local_adam(n, 5, 0.01, period=2)[rank]
    model = make_model()
    opt = hvd.LocalSGD(torch.optim.Adam(model.parameters(), lr=0.01), period=2,
                       average_state="all")
    for t in range(1, 6):
        local_step(model, opt, rank, t)
    params = list(model.parameters())
    assert_matches(params, x, "parameters")
    assert_matches([opt.state[p]["exp_avg"] for p in params], m, "exp_avg")
    assert_matches([opt.state[p]["exp_avg_sq"] for p in params], v, "exp_avg_sq")
    assert all(float(opt.state[p]["step"]) == 5 for p in params)  # not averaged, the same


def test_post_local_sgd_warmup_averages_gradients(hvd, world):
    rank, n = world
    expect = ref.local_momentum_sgd(n, 9, LR, BETA, False, 3, average_u=False, warmup=2)
    model = make_model()
    opt = hvd.LocalSGD(torch.optim.SGD(model.parameters(), lr=LR, momentum=BETA), period=3,
                       warmup_steps=2)
    for t in range(1, 10):
        local_step(model, opt, rank, t)
        x, u = expect[t - 1][rank]
        assert_matches(model.parameters(), x, "parameters after step %d" % t)
        assert_matches(momentum(opt, model), u, "momentum after step %d" % t)


def count_allreduces():
    return braid.stats()["allreduce"]


@pytest.mark.parametrize("warmup", [0, 2])
def test_counters_show_one_allreduce_per_restart(hvd, world, warmup):
    rank, _ = world
    model = make_model()
    opt = hvd.PRSGDMomentum(torch.optim.SGD(model.parameters(), lr=LR, momentum=BETA),
                            period=4, warmup_steps=warmup)
    elements = sum(p.numel() for p in model.parameters())  # 15
    grad_bytes = (elements + braid.ops.CHECK_SLOTS) * 8
    restart_bytes = (2 * elements + braid.ops.CHECK_SLOTS) * 8  # parameters and momentum
    braid.reset_stats()
    restarts = 0
    for t in range(1, 13 + warmup):
        before = count_allreduces()
        local_step(model, opt, rank, t)
        after = count_allreduces()
        is_restart = t > warmup and (t - warmup) % 4 == 0
        restarts += is_restart
        expect = 1 if (t <= warmup or is_restart) else 0
        assert after["count"] - before["count"] == expect, "step %d" % t
        nbytes = grad_bytes if t <= warmup else (restart_bytes if is_restart else 0)
        assert after["bytes"] - before["bytes"] == nbytes, "step %d" % t
    assert restarts == 3
    total = count_allreduces()
    assert total["count"] == warmup + 3
    assert total["bytes"] == warmup * grad_bytes + 3 * restart_bytes
    assert braid.stats()["broadcast"]["count"] == 0


def test_state_dict_round_trips_mid_period(hvd, world):
    rank, _ = world

    def build(name):
        model = make_model()
        opt = hvd.PRSGDMomentum(torch.optim.SGD(model.parameters(), lr=LR, momentum=BETA),
                                period=4, name=name)
        return model, opt

    model, opt = build("roundtrip.a")
    for t in range(1, 7):  # a restart at 4, then two steps into the next period
        local_step(model, opt, rank, t)
    saved_opt = copy.deepcopy(opt.state_dict())
    saved_model = copy.deepcopy(model.state_dict())
    assert saved_opt["braid_restart"]["step"] == 6
    for t in range(7, 12):  # a restart at 8
        local_step(model, opt, rank, t)

    model2, opt2 = build("roundtrip.b")
    model2.load_state_dict(saved_model)
    opt2.load_state_dict(saved_opt)
    assert opt2.local_steps == 6
    for t in range(7, 12):
        local_step(model2, opt2, rank, t)
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(momentum(opt, model), momentum(opt2, model2)):
        assert torch.equal(a, b)


def test_wrapper_is_an_optimizer_for_schedulers(hvd, world):
    rank, _ = world
    model = make_model()
    inner = torch.optim.SGD(model.parameters(), lr=LR, momentum=BETA)
    opt = hvd.LocalSGD(inner, period=2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for t in range(1, 4):
        local_step(model, opt, rank, t)
        sched.step()
    assert inner.param_groups[0]["lr"] == pytest.approx(LR / 8)
    with pytest.raises(NotImplementedError):
        opt.add_param_group({"params": [torch.zeros(1, requires_grad=True)]})


def test_ops_average_numpy_arrays(hvd, world):
    rank, n = world
    a = np.arange(5, dtype=np.float32) + rank
    m = np.full(3, float(rank), dtype=np.float32)
    op = braid.ops.LocalSGD(period=2, name="ops.numpy")
    op.set_buffers([a], [m])
    assert op.packed_count == 8 + braid.ops.CHECK_SLOTS
    assert op.step() is False
    assert np.array_equal(a, np.arange(5, dtype=np.float32) + rank)
    assert op.restart_due
    assert op.step() is True
    np.testing.assert_allclose(a, np.arange(5) + (n - 1) / 2, rtol=1e-6)
    np.testing.assert_allclose(m, np.full(3, (n - 1) / 2), rtol=1e-6)
    assert op.step_count == 2


def test_ops_reject_bad_buffers(hvd):
    op = braid.ops.LocalSGD(period=1, name="ops.bad")
    with pytest.raises(braid.BraidInvalidArgument, match="float32 and float64"):
        op.set_buffers([np.zeros(3, dtype=np.float16)])
    with pytest.raises(braid.BraidInvalidArgument, match="C-contiguous"):
        op.set_buffers([torch.zeros(3, 4, dtype=torch.float64).t()])
    with pytest.raises(braid.BraidInvalidArgument, match="one dtype"):
        op.set_buffers([np.zeros(3), np.zeros(3, dtype=np.float32)])
    with pytest.raises(braid.BraidInvalidArgument, match="no buffers registered"):
        op.restart()
    with pytest.raises(braid.BraidInvalidArgument, match="period"):
        braid.ops.LocalSGD(period=0)


def test_ranks_at_different_steps_fail_everywhere(hvd, world):
    rank, _ = world
    torch_util.needs_two(world)
    a = np.full(4, float(rank))
    op = braid.ops.LocalSGD(period=1, name="ops.diverged")
    op.set_buffers([a])
    op.step_count = 10 + rank  # every rank at another step
    with pytest.raises(braid.BraidMismatchError, match="not at the same step"):
        op.step()
    assert np.array_equal(a, np.full(4, float(rank)))  # left as they were
    op.step_count = 20
    assert op.step() is True  # agreeing again: the op and the engine still work
    assert np.allclose(a, np.full(4, (world[1] - 1) / 2))


@pytest.mark.gpu
def test_gpu_parameters(hvd, world):
    if not torch.cuda.is_available():
        pytest.skip("no GPU visible")
    if not hvd.cuda_built():
        pytest.skip("this build of braid has no GPU data plane")
    device = torch.device("cuda", hvd.local_rank() % torch.cuda.device_count())
    x = torch.full((1000,), float(world[0]), dtype=torch.float32, device=device)
    op = braid.ops.LocalSGD(period=1, name="ops.gpu")
    stream = torch.cuda.current_stream(device).cuda_stream
    if not braid.ops.device_kernels_available():
        with pytest.raises(braid.BraidInvalidArgument, match="no GPU kernels"):
            op.set_buffers([x], stream=stream)
        pytest.skip("this build has no GPU kernels for the restart ops")
    op.set_buffers([x], stream=stream)
    assert op.step()
    torch.cuda.synchronize(device)
    assert torch.allclose(x.cpu(), torch.full((1000,), (world[1] - 1) / 2))
