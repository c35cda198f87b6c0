"""braid's neighbour collectives on numpy arrays and torch CPU tensors:
neighbor_allreduce(_async) and neighbor_exchange(_async). Run under MPI, e.g.
braidrun -np 3 python -m pytest -q tests/python/test_neighbor.py.
Every rank's tensor is made from its rank, so each rank computes every rank's
tensor and the expected mix itself from the weights it passed."""

import os

import numpy as np
import pytest

os.environ.setdefault("BRAID_STALL_TIMEOUT_SECONDS", "60")

import braid  # noqa: E402

FLOATS = [np.float16, np.float32, np.float64]
TOL = {np.float16: 2e-3, np.float32: 1e-6, np.float64: 1e-13}


@pytest.fixture(scope="module")
def world():
    braid.init()
    yield braid.rank(), braid.size()


def tensor_of(r, shape, dtype, salt=0):
    g = np.random.default_rng(1000 * salt + r)
    return (g.integers(-16, 17, shape) / 4).astype(dtype)


def ring(rank, size):
    return sorted({(rank + 1) % size, (rank - 1) % size} - {rank})


def expected(rank, peers, weights, self_weight, shape, dtype, salt=0):
    out = self_weight * tensor_of(rank, shape, dtype, salt).astype(np.float64)
    for p, w in zip(peers, weights):
        out = out + w * tensor_of(p, shape, dtype, salt).astype(np.float64)
    return out


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(0,), (1,), (13,), (4, 5)], ids=str)
def test_ring_mix_default_weights(world, shape, dtype):
    rank, size = world
    peers = ring(rank, size)
    x = tensor_of(rank, shape, dtype)
    out = braid.neighbor_allreduce(x, send_to=peers, recv_from=peers)
    w = 1.0 / (len(peers) + 1)
    want = expected(rank, peers, [w] * len(peers), w, shape, dtype)
    np.testing.assert_allclose(out.astype(np.float64), want, rtol=TOL[dtype], atol=TOL[dtype])
    assert out is not x


def test_in_place_with_weights_as_dict(world):
    rank, size = world
    peers = ring(rank, size)
    weights = {p: 0.25 + 0.125 * (p % 2) for p in peers}
    self_weight = 1.0 - sum(weights.values())
    x = tensor_of(rank, (9,), np.float64, salt=3)
    h = braid.neighbor_allreduce_async(x, peers, peers, recv_weights=weights, output=x)
    assert braid.synchronize(h) is x
    want = expected(rank, peers, [weights[p] for p in peers], self_weight, (9,), np.float64, 3)
    np.testing.assert_allclose(x, want, rtol=1e-13)


def test_average_is_preserved_by_a_doubly_stochastic_mix(world):
    """The ring's W (1/3 each) is doubly stochastic: the mean over ranks stays."""
    rank, size = world
    peers = ring(rank, size)
    x = tensor_of(rank, (17,), np.float64, salt=5)
    mean_before = braid.allreduce(x, name="nb.mean.before", op=braid.Average)
    for t in range(4):
        x = braid.neighbor_allreduce(x, peers, peers, name="nb.mix")
    mean_after = braid.allreduce(x, name="nb.mean.after", op=braid.Average)
    np.testing.assert_allclose(mean_after, mean_before, rtol=0, atol=1e-14)


def test_exchange_rows_follow_recv_from(world):
    rank, size = world
    peers = ring(rank, size)
    recv = list(reversed(peers))
    x = tensor_of(rank, (2, 3), np.int32 if size % 2 else np.float32, salt=7)
    got = braid.neighbor_exchange(x, send_to=peers, recv_from=recv)
    assert got.shape == (len(recv), 2, 3)
    for k, p in enumerate(recv):
        np.testing.assert_array_equal(got[k], tensor_of(p, (2, 3), x.dtype, salt=7))


def test_one_peer_shift_changes_every_call(world):
    rank, size = world
    hops = max(1, (size - 1).bit_length())
    for t in range(2 * hops):
        hop = 2 ** (t % hops)
        send, recv = [(rank + hop) % size], [(rank - hop) % size]
        if send == [rank]:
            send = recv = []
        x = tensor_of(rank, (5,), np.float32, salt=t)
        out = braid.neighbor_allreduce(x, send, recv, self_weight=0.5 if recv else 1.0,
                                       recv_weights=[0.5] * len(recv), name="nb.one_peer")
        want = expected(rank, recv, [0.5] * len(recv), 0.5 if recv else 1.0, (5,), np.float32, t)
        np.testing.assert_allclose(out, want, rtol=1e-6)


def test_stats_count_bytes_per_peer(world):
    rank, size = world
    peers = ring(rank, size)
    braid.reset_stats()
    braid.neighbor_allreduce(np.ones(8, np.float64), peers, peers, name="nb.stats")
    s = braid.stats()
    assert s["neighbor_allreduce"]["count"] == 1
    assert s["neighbor_allreduce"]["bytes"] == 64
    sent = s["neighbor_sent_bytes"] + [0] * size
    assert [sent[p] for p in range(size)] == [64 if p in peers else 0 for p in range(size)]


def test_inconsistent_graph_fails_on_every_rank(world):
    rank, size = world
    if size < 2:
        pytest.skip("needs two ranks")
    # Everyone sends to rank + 1 and claims to receive from rank + 1 as well.
    nxt = (rank + 1) % size
    recv = [nxt] if size > 2 or rank == 0 else []
    with pytest.raises(braid.BraidMismatchError, match="Inconsistent neighbour graph"):
        braid.neighbor_allreduce(np.zeros(3, np.float32), [nxt], recv, name="nb.bad")
    # The engine still works.
    out = braid.allreduce(np.ones(2, np.float32), name="nb.after", op=braid.Sum)
    np.testing.assert_array_equal(out, np.full(2, size, np.float32))


def test_local_mistakes_are_refused(world):
    rank, size = world
    with pytest.raises(braid.BraidInvalidArgument, match="itself"):
        braid.neighbor_allreduce(np.zeros(3, np.float32), [], [rank], name="nb.self")
    with pytest.raises(braid.BraidInvalidArgument, match="twice"):
        braid.neighbor_allreduce(np.zeros(3, np.float32), [0, 0], [], name="nb.twice")
    with pytest.raises(braid.BraidInvalidArgument, match="float16, bfloat16, float32"):
        braid.neighbor_allreduce(np.zeros(3, np.int32), [], [], name="nb.int")
    with pytest.raises(braid.BraidInvalidArgument, match="recv_weights"):
        braid.neighbor_allreduce(np.zeros(3, np.float32), [], [(rank + 1) % size],
                                 recv_weights=[0.5, 0.5], name="nb.weights")


def test_torch_cpu_tensors(world):
    torch = pytest.importorskip("torch")
    rank, size = world
    peers = ring(rank, size)
    x = torch.from_numpy(tensor_of(rank, (6,), np.float32, salt=9))
    out = braid.neighbor_allreduce(x, peers, peers, name="nb.torch")
    w = 1.0 / (len(peers) + 1)
    want = expected(rank, peers, [w] * len(peers), w, (6,), np.float32, 9)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6)
    bf = torch.arange(4, dtype=torch.bfloat16) + rank
    got = braid.neighbor_allreduce(bf, peers, peers, name="nb.bf16")
    want = sum((torch.arange(4, dtype=torch.float64) + r) for r in peers + [rank]) * w
    torch.testing.assert_close(got.double(), want, rtol=1e-2, atol=1e-2)
