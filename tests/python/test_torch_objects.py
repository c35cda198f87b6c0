"""braid.torch compression, broadcast_object / allgather_object, and join.

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/. Every rank runs
the same tests in the same order; expected values are computed here from rank and
size."""

import pytest

torch = pytest.importorskip("torch")

from torch_util import DTYPES, INT_DTYPES, TOL, assert_same, dname, pattern  # noqa: E402

# ---------------------------------------------------------------- compression


def test_compression_none_round_trip(hvd):
    for dtype in DTYPES:
        x = pattern((3, 2), dtype, 1)
        c, ctx = hvd.Compression.none.compress(x)
        assert c.dtype == dtype
        y = hvd.Compression.none.decompress(c, ctx)
        assert y.dtype == dtype and torch.equal(y, x)


@pytest.mark.parametrize("kind,wire", [("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_compression_cast_round_trip(hvd, kind, wire):
    comp = getattr(hvd.Compression, kind)
    for dtype in (torch.float32, torch.float64):
        x = torch.tensor([[0.5, -1.25, 3.0], [100.0, 0.0, -7.5]], dtype=dtype)
        c, ctx = comp.compress(x)
        assert c.dtype == wire
        y = comp.decompress(c, ctx)
        assert y.dtype == dtype
        assert torch.equal(y, x)  # values exact in the wire type
        z = torch.tensor([1.0 + 2 ** -12, 3.14159265], dtype=dtype)
        back = comp.decompress(*comp.compress(z))
        assert back.dtype == dtype
        torch.testing.assert_close(back, z, rtol=TOL[wire], atol=0)
        assert not torch.equal(back, z)  # really went through the narrow type
    # Integer tensors pass unchanged.
    for dtype in INT_DTYPES:
        x = pattern((4,), dtype, 2)
        c, ctx = comp.compress(x)
        assert c.dtype == dtype
        y = comp.decompress(c, ctx)
        assert y.dtype == dtype and torch.equal(y, x)


@pytest.mark.parametrize("kind", ["none", "fp16", "bf16"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=dname)
def test_allreduce_with_compression(hvd, world, kind, dtype):
    rank, size = world
    comp = getattr(hvd.Compression, kind)
    x = torch.full((6,), 0.5 * (rank + 1), dtype=dtype)
    before = x.clone()
    out = hvd.allreduce(x, name="ar.comp.%s.%s" % (kind, dname(dtype)), compression=comp,
                        op=hvd.Sum)
    assert out.dtype == dtype
    assert_same(out, torch.full((6,), 0.25 * size * (size + 1), dtype=torch.float64), dtype)
    assert torch.equal(x, before)
    avg = hvd.allreduce(x, name="ar.comp.avg.%s.%s" % (kind, dname(dtype)), compression=comp)
    tol = {"none": TOL[dtype], "fp16": 1e-3, "bf16": 1e-2}[kind]
    torch.testing.assert_close(avg.double(), torch.full((6,), 0.25 * (size + 1),
                                                        dtype=torch.float64), rtol=tol, atol=tol)
    if kind != "none":
        # The wire type's rounding is visible: 1 + 2^-12 is not representable in it.
        y = torch.full((2,), 1.0 + 2 ** -12, dtype=dtype)
        s = hvd.allreduce(y, name="ar.comp.round.%s.%s" % (kind, dname(dtype)),
                          compression=comp, op=hvd.Sum)
        assert torch.equal(s, torch.full((2,), float(size), dtype=dtype))


# ---------------------------------------------------------------- objects


class Payload:
    """A user-defined picklable object."""

    def __init__(self, rank):
        self.rank = rank
        self.items = list(range(rank + 1))

    def __eq__(self, other):
        return isinstance(other, Payload) and (self.rank, self.items) == (other.rank, other.items)


def make_object(r):
    return {"rank": r, "name": "rank-%d" % r, "nested": [(r, "x" * r), {"f": r / 3}],
            "tensor": torch.arange(r + 2, dtype=torch.float64) * r, "payload": Payload(r),
            "bytes": bytes(range(r * 40)), None: set(range(r))}


def objects_equal(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(objects_equal(a[k], b[k]) for k in a))
    return a == b


def test_broadcast_object_from_every_root(hvd, world):
    rank, size = world
    got = [hvd.broadcast_object(make_object(rank), root_rank=root, name="obj.bc.%d" % root)
           for root in range(size)]
    # Defaults: root 0, no name.
    small = hvd.broadcast_object([rank, "x"])
    # An object only the root holds (None elsewhere).
    big = hvd.broadcast_object(list(range(10000)) if rank == 0 else None, root_rank=0,
                               name="obj.bc.big")
    for root, obj in enumerate(got):
        assert objects_equal(obj, make_object(root)), root
    assert small == [0, "x"]
    assert big == list(range(10000))


def test_allgather_object(hvd, world):
    rank, size = world
    got = hvd.allgather_object(make_object(rank), name="obj.ag")
    assert isinstance(got, list) and len(got) == size
    for r, obj in enumerate(got):
        assert objects_equal(obj, make_object(r))
    assert hvd.allgather_object(rank * "ab") == [r * "ab" for r in range(size)]
    assert hvd.allgather_object(None, name="obj.ag.none") == [None] * size


# ---------------------------------------------------------------- join (runs last)


def test_join_average_over_ranks_that_did_not_join(hvd, world):
    """Rank 0 joins at once; the others allreduce while it waits. A joined rank counts
    as zeros and Average still divides by size (Horovod); join() returns the same
    rank everywhere: the last one to join."""
    rank, size = world
    assert hasattr(hvd, "join"), "braid.torch has no join()"
    x = torch.full((5, 3), float(rank + 1))
    active = range(1, size)
    join_error = None
    avg = total = None
    if rank == 0:
        try:
            last = hvd.join()
        except Exception as e:  # keep the other ranks from stalling, then report
            join_error, last = e, None
            hvd.allreduce(torch.zeros(5, 3), name="join.avg")
            hvd.allreduce(torch.zeros(5, 3), name="join.sum", op=hvd.Sum)
    else:
        avg = hvd.allreduce(x, name="join.avg")
        total = hvd.allreduce(x, name="join.sum", op=hvd.Sum)
        try:
            last = hvd.join()
        except Exception as e:
            join_error, last = e, None
    # Every rank makes the same calls before anything is checked.
    lasts = hvd.allgather_object(last, name="join.last")
    after = hvd.allreduce(x, name="join.after", op=hvd.Sum)  # everyone takes part again
    assert join_error is None, "join() raised %r" % join_error
    if rank != 0:
        s = float(sum(r + 1 for r in active))
        assert_same(avg, torch.full((5, 3), s / size, dtype=torch.float64), torch.float32)
        assert_same(total, torch.full((5, 3), s, dtype=torch.float64), torch.float32)
    assert all(v == lasts[0] for v in lasts), lasts
    assert isinstance(last, int)
    assert last in (list(active) if size > 1 else [0])
    assert_same(after, torch.full((5, 3), size * (size + 1) / 2, dtype=torch.float64),
                torch.float32)
