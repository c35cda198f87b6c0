"""braid.torch allgather, broadcast, handles (poll, synchronize, many in flight),
barrier and Adasum against Horovod's PyTorch API.

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/. Every rank runs
the same tests in the same order; expected values are computed here from rank and
size."""

import time

import pytest

torch = pytest.importorskip("torch")

from torch_util import (  # noqa: E402
    DTYPES, FLOAT_DTYPES, SHAPES, assert_same, dname, pattern, sname)

# ---------------------------------------------------------------- allgather


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("shape", SHAPES, ids=sname)
@pytest.mark.parametrize("dtype", DTYPES, ids=dname)
def test_allgather_variable_first_dim(hvd, world, dtype, shape, asynchronous):
    """Rank r contributes r + 1 rows; the output is every rank's rows in rank order."""
    rank, size = world
    rest = tuple(shape[1:])
    x = pattern((rank + 1,) + rest, dtype, rank)
    before = x.clone()
    name = "ag.%s.%s.%s" % (asynchronous, dname(dtype), sname(shape))
    if asynchronous:
        out = hvd.synchronize(hvd.allgather_async(x, name=name))
    else:
        out = hvd.allgather(x, name=name)
    expected = torch.cat([pattern((r + 1,) + rest, torch.int64, r) for r in range(size)])
    assert_same(out, expected, dtype)
    assert torch.equal(x, before)


def test_allgather_with_an_empty_contribution(hvd, world):
    """Rank r contributes r rows, so rank 0 sends none."""
    rank, size = world
    x = torch.full((rank, 2), float(rank))
    out = hvd.allgather(x, name="ag.empty.rank0")
    expected = torch.cat([torch.full((r, 2), float(r)) for r in range(size)])
    assert_same(out, expected.double(), torch.float32)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("dtype", [torch.int8, torch.int64, torch.bfloat16, torch.float32],
                         ids=dname)
def test_grouped_allgather(hvd, world, dtype, asynchronous):
    rank, size = world
    xs = [pattern((rank + 1,), dtype, rank), pattern((2 * rank + 1, 3), dtype, rank + 1)]
    name = "gag.%s.%s" % (asynchronous, dname(dtype))
    if asynchronous:
        outs = list(hvd.synchronize(hvd.grouped_allgather_async(xs, name=name)))
    else:
        outs = list(hvd.grouped_allgather(xs, name=name))
    assert len(outs) == 2
    assert_same(outs[0], torch.cat([pattern((r + 1,), torch.int64, r) for r in range(size)]),
                dtype)
    assert_same(outs[1], torch.cat([pattern((2 * r + 1, 3), torch.int64, r + 1)
                                    for r in range(size)]), dtype)


# ---------------------------------------------------------------- broadcast

BROADCAST_VARIANTS = ["broadcast", "broadcast_", "broadcast_async", "broadcast_async_"]


@pytest.mark.parametrize("variant", BROADCAST_VARIANTS)
@pytest.mark.parametrize("shape", SHAPES, ids=sname)
@pytest.mark.parametrize("dtype", DTYPES, ids=dname)
def test_broadcast_from_every_root(hvd, world, dtype, shape, variant):
    rank, size = world
    results = []  # every rank runs every broadcast before anything is checked
    for root in range(size):
        x = pattern(shape, dtype, rank)
        before = x.clone()
        name = "bc.%s.%s.%s.%d" % (variant, dname(dtype), sname(shape), root)
        if variant == "broadcast":
            out = hvd.broadcast(x, root, name=name)
        elif variant == "broadcast_":
            out = hvd.broadcast_(x, root, name=name)
        elif variant == "broadcast_async":
            out = hvd.synchronize(hvd.broadcast_async(x, root, name=name))
        else:
            out = hvd.synchronize(hvd.broadcast_async_(x, root, name=name))
        results.append((root, x, before, out))
    for root, x, before, out in results:
        assert_same(out, pattern(shape, torch.int64, root), dtype)
        if variant.endswith("_"):
            assert out.data_ptr() == x.data_ptr()
            assert_same(x, pattern(shape, torch.int64, root), dtype)
        else:
            assert torch.equal(x, before), "%s modified its input" % variant


def test_broadcast_root_rank_keyword(hvd, world):
    rank, size = world
    root = size - 1
    out = hvd.broadcast(torch.tensor([rank]), root_rank=root, name="bc.keyword")
    assert out.tolist() == [root]


# ---------------------------------------------------------------- handles


def test_poll_and_synchronize(hvd, world):
    rank, size = world
    h = hvd.allreduce_async(torch.full((10,), float(rank)), name="poll.simple", op=hvd.Sum)
    deadline = time.monotonic() + 30
    while True:
        done = hvd.poll(h)
        assert isinstance(done, bool)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.001)
    assert done, "poll() never reported the allreduce done"
    out = hvd.synchronize(h)
    assert_same(out, torch.full((10,), size * (size - 1) / 2, dtype=torch.float64), torch.float32)


def test_poll_is_false_while_another_rank_has_not_submitted(hvd, world):
    rank, size = world
    if size < 2:
        pytest.skip("needs two ranks")
    hvd.barrier()
    if rank == 0:
        h = hvd.allreduce_async(torch.ones(4), name="poll.late", op=hvd.Sum)
        early = hvd.poll(h)  # the other ranks sleep before submitting
        out = hvd.synchronize(h)
        assert hvd.poll(h) is True
        assert early is False
    else:
        time.sleep(0.5)
        out = hvd.allreduce(torch.ones(4), name="poll.late", op=hvd.Sum)
    assert_same(out, torch.full((4,), float(size), dtype=torch.float64), torch.float32)


def test_many_async_handles_outstanding(hvd, world):
    """50 operations of mixed kinds, dtypes and sizes in flight at once (small ones are
    fused), then synchronized in reverse order."""
    rank, size = world
    pending = []
    for i in range(50):
        dtype = DTYPES[i % len(DTYPES)]
        n = 1 + (i * 7) % 23
        kind = i % 5
        name = "many.%d" % i
        if kind in (0, 1):
            x = torch.full((n,), rank + 1, dtype=dtype)
            fn = hvd.allreduce_async if kind == 0 else hvd.allreduce_async_
            h = fn(x, name=name, op=hvd.Sum)
            want = torch.full((n,), size * (size + 1) // 2, dtype=torch.int64)
        elif kind == 2:
            x = torch.full((n,), float(rank + 1), dtype=FLOAT_DTYPES[i % 4])
            h = hvd.allreduce_async(x, name=name, op=hvd.Average)
            want = torch.full((n,), (size + 1) / 2, dtype=torch.float64)
        elif kind == 3:
            x = pattern((rank + 1, 2), dtype, rank)
            h = hvd.allgather_async(x, name=name)
            want = torch.cat([pattern((r + 1, 2), torch.int64, r) for r in range(size)])
        else:
            root = i % size
            x = pattern((n,), dtype, rank)
            h = hvd.broadcast_async_(x, root, name=name)
            want = pattern((n,), torch.int64, root)
        pending.append((h, x, want))
    for h, x, want in reversed(pending):
        out = hvd.synchronize(h)
        assert_same(out, want, x.dtype)
        assert hvd.poll(h)


def test_barrier_waits_for_every_rank(hvd, world):
    rank, size = world
    hvd.barrier()
    if size < 2:
        return
    if rank == 0:
        time.sleep(0.4)
    start = time.monotonic()
    hvd.barrier()
    waited = time.monotonic() - start
    if rank != 0:
        assert waited > 0.2, "barrier returned after %.3f s while rank 0 slept" % waited


# ---------------------------------------------------------------- Adasum


def test_adasum_is_not_implemented(hvd, world):
    rank, size = world
    x = torch.ones(4)
    with pytest.raises(NotImplementedError, match="Adasum"):
        hvd.allreduce(x, name="adasum.ar", op=hvd.Adasum)
    with pytest.raises(NotImplementedError, match="Adasum"):
        hvd.allreduce_async_(x, name="adasum.ar_", op=hvd.Adasum)
    with pytest.raises(NotImplementedError, match="Adasum"):
        hvd.grouped_allreduce([x, x.clone()], name="adasum.grouped", op=hvd.Adasum)
    out = hvd.allreduce(x, name="adasum.after", op=hvd.Sum)
    assert_same(out, torch.full((4,), float(size), dtype=torch.float64), torch.float32)
