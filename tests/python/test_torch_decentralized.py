"""braid.torch.DecentralizedOptimizer against N workers simulated in one process
(numpy, float64) from the equations of Yu, Jin, Yang (ICML 2019), Algorithm 2: a
local momentum step (Option I or II) then x_i = sum_j W_ij x~_j and u_i = sum_j
W_ij u~_j, with W written here from each graph's definition. Also: with the
complete graph it is synchronous momentum SGD, mixing keeps the average,
consensus() and consensus_distance(), state_dict, errors.

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/test_torch_decentralized.py.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import restart_reference as ref  # noqa: E402

LR, BETA = 0.05, 0.9
TOL = 1e-10


def ring_w(n):
    """The ring: 1/3 to self and each of i +- 1 (n = 2: 1/2 each; n = 1: [1])."""
    w = np.zeros((n, n))
    for i in range(n):
        peers = {i, (i + 1) % n, (i - 1) % n}
        for j in peers:
            w[i, j] = 1.0 / len(peers)
    return w


def one_peer_w(n, t):
    """One-peer exponential at step t: i mixes 1/2 with i - 2^(t mod ceil(log2 n))
    (it sends to i + 2^..., so row i holds the rank it receives from)."""
    if n == 1:
        return np.ones((1, 1))
    rounds = max(1, (n - 1).bit_length())
    hop = 2 ** (t % rounds)
    w = np.zeros((n, n))
    for i in range(n):
        w[i, i] += 0.5
        w[i, (i - hop) % n] += 0.5
    return w


def simulate(n, steps, w_of, nesterov=False, beta=BETA, mix_momentum=True):
    """Every worker's (x, u) after each step t = 1..steps; W_(t-1) mixes step t."""
    xs = [ref.start() for _ in range(n)]
    us = [ref.zeros_like(xs[0]) for _ in range(n)]
    out = []
    for t in range(1, steps + 1):
        for r in range(n):
            xs[r], us[r] = ref.momentum_step(xs[r], us[r], ref.grad(xs[r], r, t), LR, beta,
                                             nesterov)
        w = w_of(t - 1)
        mix = lambda states: [[sum(w[i, j] * states[j][k] for j in range(n))  # noqa: E731
                               for k in range(len(states[0]))] for i in range(n)]
        xs = mix(xs)
        if mix_momentum:
            us = mix(us)
        out.append([(xs[r], us[r]) for r in range(n)])
    return out


def make(hvd, topology="ring", nesterov=False, beta=BETA, **kw):
    model = torch.nn.Linear(ref.IN, ref.OUT).double()
    w0, b0 = ref.start()
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(w0))
        model.bias.copy_(torch.from_numpy(b0))
    sgd = torch.optim.SGD(model.parameters(), lr=LR, momentum=beta, nesterov=nesterov)
    return model, hvd.DecentralizedOptimizer(sgd, topology=topology, **kw)


def train_step(model, opt, rank, t):
    x, y = ref.batch(rank, t)
    opt.zero_grad()
    loss = 0.5 * ((model(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2).sum(1).mean()
    loss.backward()
    opt.step()


def params(model):
    return [p.detach().numpy() for p in model.parameters()]


def assert_close(got, want, what):
    for k, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=TOL, atol=TOL, err_msg="%s, tensor %d" % (what, k))


@pytest.mark.parametrize("nesterov", [False, True], ids=["option1", "option2"])
@pytest.mark.parametrize("mix_momentum", [True, False], ids=["mix_xu", "mix_x"])
def test_ring_matches_algorithm_2(hvd, world, nesterov, mix_momentum):
    rank, n = world
    steps = 5
    expect = simulate(n, steps, lambda t: ring_w(n), nesterov, mix_momentum=mix_momentum)
    model, opt = make(hvd, "ring", nesterov, mix_momentum=mix_momentum)
    for t in range(1, steps + 1):
        train_step(model, opt, rank, t)
        x, u = expect[t - 1][rank]
        assert_close(params(model), x, "x after step %d" % t)
        assert_close([opt.state[p]["momentum_buffer"].numpy() for p in model.parameters()], u,
                     "u after step %d" % t)
    assert opt.steps == steps


def test_one_peer_exponential_time_varying(hvd, world):
    rank, n = world
    steps = 6
    expect = simulate(n, steps, lambda t: one_peer_w(n, t))
    model, opt = make(hvd, "one_peer_exponential")
    for t in range(1, steps + 1):
        train_step(model, opt, rank, t)
    assert_close(params(model), expect[-1][rank][0], "x")


def test_d_psgd_is_momentum_zero(hvd, world):
    rank, n = world
    expect = simulate(n, 4, lambda t: ring_w(n), beta=0.0)
    model, opt = make(hvd, "ring", beta=0.0)
    for t in range(1, 5):
        train_step(model, opt, rank, t)
    assert_close(params(model), expect[-1][rank][0], "x")


def test_complete_graph_is_synchronous_momentum_sgd(hvd, world):
    rank, n = world
    steps = 5
    expect = ref.sync_momentum_sgd(n, steps, LR, BETA, nesterov=False)
    model, opt = make(hvd, "complete")
    for t in range(1, steps + 1):
        train_step(model, opt, rank, t)
        assert_close(params(model), expect[t - 1], "x after step %d" % t)


def test_user_matrix(hvd, world):
    rank, n = world
    # A lazy ring: 1/2 self, 1/4 each neighbour (n = 2: 1/2, 1/2; n = 1: [1]).
    w = np.eye(n) * 0.5
    for i in range(n):
        w[i, (i + 1) % n] += 0.25
        w[i, (i - 1) % n] += 0.25
    if n == 1:
        w = np.ones((1, 1))
    expect = simulate(n, 3, lambda t: w)
    model, opt = make(hvd, torch.from_numpy(w))
    for t in range(1, 4):
        train_step(model, opt, rank, t)
    assert_close(params(model), expect[-1][rank][0], "x")


def test_consensus_and_distance(hvd, world):
    rank, n = world
    steps = 3
    expect = simulate(n, steps, lambda t: ring_w(n))
    model, opt = make(hvd, "ring")
    for t in range(1, steps + 1):
        train_step(model, opt, rank, t)
    xs = [expect[-1][r][0] for r in range(n)]
    xbar = ref.mean(xs)
    want = np.sqrt(sum(sum(np.sum((x[k] - xbar[k]) ** 2) for k in range(2)) for x in xs) / n)
    assert abs(opt.consensus_distance() - want) <= 1e-9 * max(1.0, want)
    assert_close(params(model), xs[rank], "x unchanged by the distance")
    opt.consensus()
    assert_close(params(model), xbar, "x after consensus")
    assert opt.consensus_distance() <= 1e-12
    assert opt.steps == steps  # consensus counts no step


def test_state_dict_carries_the_step(hvd, world):
    rank, n = world
    model, opt = make(hvd, "one_peer_exponential")
    for t in range(1, 4):
        train_step(model, opt, rank, t)
    sd = opt.state_dict()
    assert sd["braid_decentralized"]["step"] == 3
    model2, opt2 = make(hvd, "one_peer_exponential")
    opt2.load_state_dict(sd)
    assert opt2.steps == 3


def test_errors(hvd, world):
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="torch.optim.SGD"):
        hvd.DecentralizedOptimizer(torch.optim.Adam(model.parameters()))
    with pytest.raises(ValueError, match="unknown topology"):
        hvd.DecentralizedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), topology="star")
    with pytest.raises(ValueError, match="dampening"):
        hvd.DecentralizedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                                                   dampening=0.5))
