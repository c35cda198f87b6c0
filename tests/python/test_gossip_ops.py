"""braid.ops.DecentralizedSGD on numpy arrays and torch tensors, against a numpy
reference written here from the equations of Yu, Jin, Yang (ICML 2019, Algorithm
2) that simulates every rank with the dense W_t built below from the graph
definitions (docs/gossip_graphs.md). Also: mixing keeps the average; the complete
graph is synchronous momentum SGD; the one-peer exponential graph reaches the exact
average in log2(n) steps; mixing shrinks the consensus distance at least by the
factor sigma_2 = 1 - spectral_gap per step; the errors. Every rank runs the same
tests in order, e.g. braidrun -np 3 python -m pytest -q tests/python/test_gossip_ops.py"""

import math

import numpy as np
import pytest
import torch

import braid
import braid.ops as ops

SIZES = (5, 3)  # two parameter tensors per rank
DIM = sum(SIZES)


@pytest.fixture(scope="module")
def world():
    braid.init()  # does nothing when another module started braid already
    yield braid.rank(), braid.size()


def dense_w(kind, n, t):
    """W_t of the graphs, from their definitions."""
    w = np.zeros((n, n))
    if n == 1:
        return np.ones((1, 1))
    for i in range(n):
        if kind == "complete" or (kind == "ring" and n <= 3) or (kind == "exponential" and n <= 5):
            w[i, :] = 1.0 / n
        elif kind == "ring":
            for d in (-1, 0, 1):
                w[i, (i + d) % n] += 1.0 / 3
        elif kind == "one_peer_exponential":
            hop = 2 ** (t % math.ceil(math.log2(n)))
            w[i, i] += 0.5
            w[i, (i - hop) % n] += 0.5
        elif kind == "shift_and_lazy":  # the user list below: W_0, W_1, W_0, ...
            if t % 2 == 0:
                w[i, i] += 0.5
                w[i, (i + 1) % n] += 0.5
            else:
                w[i, :] += 0.6 / n
                w[i, i] += 0.4
    return w


def user_matrices(n):
    return [dense_w("shift_and_lazy", n, 0), dense_w("shift_and_lazy", n, 1)]


def start(rank):
    i = np.arange(DIM)
    return 0.2 * rank - 0.1 * (i % 3) + 0.05 * i


def grad(rank, t, x):
    """Of 0.5 * a_r * ||x - b_r||^2, plus a term of the step: differs by rank."""
    i = np.arange(DIM)
    a, b = 0.5 + 0.25 * rank, np.sin(1.0 + rank + 0.5 * i)
    return a * (x - b) + 0.1 * np.cos(t + 3.0 * rank + i)


class Reference:
    """Every rank's x and u under Algorithm 2, in float64."""

    def __init__(self, n, beta=0.9, nesterov=False, mix_momentum=True, average_period=0,
                 weight_decay=0.0):
        self.x = np.array([start(r) for r in range(n)])
        self.u = np.zeros_like(self.x)
        self.beta, self.nesterov, self.mix_momentum = beta, nesterov, mix_momentum
        self.average_period, self.wd = average_period, weight_decay

    def step(self, t, lr, w):
        g = np.array([grad(r, t, self.x[r]) for r in range(len(self.x))]) + self.wd * self.x
        self.u = self.beta * self.u + g
        self.x = self.x - lr * (self.beta * self.u + g if self.nesterov else self.u)
        if self.average_period and (t + 1) % self.average_period == 0:
            self.x[:] = self.x.mean(axis=0)
            self.u[:] = self.u.mean(axis=0)
            return
        self.x = w @ self.x
        if self.mix_momentum:
            self.u = w @ self.u


def split(flat, lib, dtype):
    parts = np.split(np.asarray(flat, dtype=np.float64), np.cumsum(SIZES)[:-1])
    if lib == "torch":
        return [torch.tensor(p, dtype=getattr(torch, dtype)) for p in parts]
    return [p.astype(dtype) for p in parts]


def flat(tensors):
    return np.concatenate([np.asarray(t, dtype=np.float64) for t in tensors])


CASES = [
    # (topology, options)
    ("ring", {}),
    ("ring", dict(nesterov=True, weight_decay=0.01)),
    ("exponential", dict(nesterov=True)),
    ("one_peer_exponential", dict(mix_momentum=False)),
    ("one_peer_exponential", {}),
    ("ring", dict(momentum=0.0)),
    ("ring", dict(average_period=3)),
    ("matrices", dict(average_period=4, mix_momentum=False)),
]


def run_against_reference(world, topology, options, lib, dtype, steps, tol):
    rank, n = world
    lr = 0.1
    beta = options.get("momentum", 0.9)
    ref = Reference(n, beta, options.get("nesterov", False), options.get("mix_momentum", True),
                    options.get("average_period", 0), options.get("weight_decay", 0.0))
    kind = "shift_and_lazy" if topology == "matrices" else topology
    topo = user_matrices(n) if topology == "matrices" else topology
    op = ops.DecentralizedSGD(topology=topo, **options)
    x, g, u = split(start(rank), lib, dtype), split(np.zeros(DIM), lib, dtype), \
        split(np.zeros(DIM), lib, dtype)
    op.set_buffers(x, g, u)
    for t in range(steps):
        for gi, v in zip(g, split(grad(rank, t, flat(x)), lib, dtype)):
            gi[...] = v
        op.step(lr)
        ref.step(t, lr, dense_w(kind, n, t))
        np.testing.assert_allclose(flat(x), ref.x[rank], rtol=0, atol=tol, err_msg="x, step %d" % t)
        if beta != 0:
            np.testing.assert_allclose(flat(u), ref.u[rank], rtol=0, atol=tol,
                                       err_msg="u, step %d" % t)
    assert op.step_count == steps


@pytest.mark.parametrize("lib", ["numpy", "torch"])
@pytest.mark.parametrize("topology,options", CASES)
def test_matches_algorithm2(world, topology, options, lib):
    run_against_reference(world, topology, options, lib, "float64", 8, 1e-12)


def test_float32_torch(world):
    run_against_reference(world, "ring", dict(nesterov=True), "torch", "float32", 6, 2e-5)


def test_mixing_preserves_the_average(world):
    rank, n = world
    op = ops.DecentralizedSGD(topology="one_peer_exponential", momentum=0.0)
    x = [np.cos(3.0 * rank + np.arange(s)) * (rank + 1) for s in SIZES]
    mean = braid.allreduce(flat(x), name="test_gossip.mean")
    op.set_buffers(x, [np.zeros(s) for s in SIZES])
    for t in range(5):
        if t % 2:
            op.step(0.5)  # zero gradients: only the mixing moves x
        else:
            op.mix()
        now = braid.allreduce(flat(x), name="test_gossip.mean.%d" % t)
        np.testing.assert_allclose(now, mean, rtol=0, atol=1e-12)
    op.consensus()
    np.testing.assert_allclose(flat(x), mean, rtol=0, atol=1e-12)
    assert op.consensus_distance() == pytest.approx(0.0, abs=1e-12)


def test_complete_graph_is_synchronous_momentum_sgd(world):
    rank, n = world
    op = ops.DecentralizedSGD(topology="complete", nesterov=True)
    x, g, u = split(start(0), "torch", "float64"), split(np.zeros(DIM), "torch", "float64"), \
        split(np.zeros(DIM), "torch", "float64")
    op.set_buffers(x, g, u)
    sx, su = start(0), np.zeros(DIM)
    for t in range(6):
        mine = grad(rank, t, flat(x))
        for gi, v in zip(g, split(mine, "torch", "float64")):
            gi[...] = v
        gbar = braid.allreduce(mine, name="test_gossip.gbar")  # the average
        su = 0.9 * su + gbar
        sx = sx - 0.1 * (0.9 * su + gbar)
        op.step(0.1)
        np.testing.assert_allclose(flat(x), sx, rtol=0, atol=1e-12)
        np.testing.assert_allclose(flat(u), su, rtol=0, atol=1e-12)


def test_one_peer_exponential_reaches_exact_consensus(world):
    rank, n = world
    if n & (n - 1):
        pytest.skip("needs a power of two ranks (has %d)" % n)
    op = ops.DecentralizedSGD(topology="one_peer_exponential")
    x, u = [np.full(s, (rank + 1.0) ** 2) for s in SIZES], [np.full(s, -rank, float) for s in SIZES]
    op.set_buffers(x, [], u)
    for _ in range(int(math.log2(n))):
        op.mix()
    np.testing.assert_allclose(flat(x), np.mean([(r + 1.0) ** 2 for r in range(n)]), atol=1e-12)
    np.testing.assert_allclose(flat(u), -np.mean(range(n)), atol=1e-12)


@pytest.mark.parametrize("topology", ["ring", "torus", "exponential", "matrix"])
def test_consensus_distance_shrinks_by_sigma2(world, topology):
    """||X_t - Xbar|| after a mixing step is at most sigma_2 = ||W - J/n||_2 times its
    value before (the distance is that norm over sqrt(n))."""
    rank, n = world
    topo = [user_matrices(n)[0]] if topology == "matrix" else topology  # not symmetric
    op = ops.DecentralizedSGD(topology=topo, momentum=0.0)
    sigma2 = 1.0 - op.graph.spectral_gap()
    x = [torch.tensor(np.sin(np.arange(s) * (rank + 2.0)) * (rank + 1)) for s in SIZES]
    op.set_buffers(x)
    before = op.consensus_distance()
    everyone = braid.allgather(flat(x)[None], name="test_gossip.rows")
    xbar = everyone.mean(axis=0)
    assert before == pytest.approx(math.sqrt(((everyone - xbar) ** 2).sum() / n), abs=1e-12)
    for _ in range(4):
        op.mix()
        after = op.consensus_distance()
        assert after <= sigma2 * before + 1e-12
        before = after


def test_step_count_and_phase(world):
    op = ops.DecentralizedSGD(topology="one_peer_exponential", name="test_gossip.phase")
    op.set_buffers([np.zeros(3)])
    for _ in range(3):
        op.mix()
    assert op.step_count == 3
    op.step_count = 7
    assert op.step_count == 7
    assert op.name == "test_gossip.phase"
    assert op.mixed_count == 3


def test_errors(world):
    rank, n = world
    with pytest.raises(braid.BraidInvalidArgument, match="hypercube"):
        ops.DecentralizedSGD(topology="hypercube")
    with pytest.raises(braid.BraidInvalidArgument, match="ranks"):
        ops.DecentralizedSGD(topology=[np.eye(n + 1)])
    if n > 1:
        with pytest.raises(braid.BraidInvalidArgument, match="sums to"):
            ops.DecentralizedSGD(topology=np.ones((n, n)))
    with pytest.raises(braid.BraidInvalidArgument, match=r"momentum must be in \[0, 1\)"):
        ops.DecentralizedSGD(momentum=1.0)
    op = ops.DecentralizedSGD()
    with pytest.raises(braid.BraidInvalidArgument, match="grads buffer 0 has 2 elements"):
        op.set_buffers([np.zeros(3)], [np.zeros(2)])
    with pytest.raises(braid.BraidInvalidArgument, match="float32 and float64"):
        op.set_buffers([np.zeros(3, np.float16)])
    with pytest.raises(braid.BraidInvalidArgument, match="one dtype on one device"):
        op.set_buffers([np.zeros(3)], [np.zeros(3, np.float32)])
    op.set_buffers([np.zeros(3)], [np.zeros(3)])
    with pytest.raises(braid.BraidInvalidArgument, match="no momentum buffers"):
        op.step(0.1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU visible")
def test_cuda_matches_cpu(world):
    rank, n = world
    results = {}
    for device in ("cpu", "cuda"):
        op = ops.DecentralizedSGD(topology="ring", nesterov=True, weight_decay=0.01,
                                  name="test_gossip.cuda.%s" % device)
        x = [t.to(device) for t in split(start(rank), "torch", "float32")]
        g = [torch.zeros_like(t) for t in x]
        u = [torch.zeros_like(t) for t in x]
        op.set_buffers(x, g, u)
        for t in range(5):
            for gi, v in zip(g, split(grad(rank, t, flat([xi.cpu() for xi in x])), "torch",
                                      "float32")):
                gi.copy_(v)
            op.step(0.1)
        distance = op.consensus_distance()
        torch.cuda.synchronize()
        results[device] = (flat([t.cpu() for t in x]), flat([t.cpu() for t in u]), distance)
    np.testing.assert_array_equal(results["cuda"][0], results["cpu"][0])
    np.testing.assert_array_equal(results["cuda"][1], results["cpu"][1])
    assert results["cuda"][2] == pytest.approx(results["cpu"][2], rel=1e-12, abs=1e-15)
