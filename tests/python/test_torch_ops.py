"""braid.torch collectives against Horovod's PyTorch API (`import braid.torch as hvd`).

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/test_torch_ops.py.
Every rank runs the same tests in the same order; expected values are computed here
from rank and size."""

import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from math import factorial

import pytest

os.environ.setdefault("BRAID_STALL_TIMEOUT_SECONDS", "60")

torch = pytest.importorskip("torch")

import braid  # noqa: E402

DTYPES = [torch.uint8, torch.int8, torch.int32, torch.int64,
          torch.float16, torch.bfloat16, torch.float32, torch.float64]
INT_DTYPES = DTYPES[:4]
FLOAT_DTYPES = DTYPES[4:]
SHAPES = [(5,), (3, 4), (2, 3, 2)]
# Relative and absolute tolerance per float type; the test values are small integers
# and halves, exact in every type, so these only absorb the scaling by 1/size.
TOL = {torch.float16: 1e-3, torch.bfloat16: 1e-2, torch.float32: 1e-6, torch.float64: 1e-12}


def dname(dtype):
    return str(dtype).replace("torch.", "")


def sname(shape):
    return "%dd" % len(shape)


@pytest.fixture(scope="module")
def world(hvd):
    return hvd.rank(), hvd.size()


def base(shape, dtype, high=2):
    """1..high repeating: small positive values exact in every dtype."""
    n = 1
    for s in shape:
        n *= s
    return (torch.arange(n, dtype=torch.int64) % high + 1).reshape(shape).to(dtype)


def pattern(shape, dtype, r):
    """A tensor that tells ranks apart: values 10 * r + 1 .. 10 * r + 5."""
    n = 1
    for s in shape:
        n *= s
    return (torch.arange(n, dtype=torch.int64) % 5 + 10 * r + 1).reshape(shape).to(dtype)


def assert_same(got, expected, dtype=None):
    """`got` has `expected`'s values (computed in int64 / float64) and dtype `dtype`."""
    dtype = dtype or got.dtype
    assert isinstance(got, torch.Tensor), type(got)
    assert got.dtype == dtype, (got.dtype, dtype)
    assert tuple(got.shape) == tuple(expected.shape), (tuple(got.shape), tuple(expected.shape))
    if dtype.is_floating_point:
        tol = TOL[dtype]
        torch.testing.assert_close(got.double(), expected.double(), rtol=tol, atol=tol)
    else:
        assert torch.equal(got.to(torch.int64), expected.to(torch.int64)), (got, expected)


# ---------------------------------------------------------------- basics and queries


def test_init_rank_size(hvd, world):
    rank, size = world
    assert hvd.is_initialized()
    assert 0 <= rank < size
    if "OMPI_COMM_WORLD_SIZE" in os.environ:
        assert size == int(os.environ["OMPI_COMM_WORLD_SIZE"])
        assert rank == int(os.environ["OMPI_COMM_WORLD_RANK"])
    assert 0 <= hvd.local_rank() < hvd.local_size() <= size
    assert 0 <= hvd.cross_rank() < hvd.cross_size() <= size
    ranks = hvd.allgather(torch.tensor([rank], dtype=torch.int32), name="torch.ranks")
    assert ranks.tolist() == list(range(size))
    hvd.init()  # a second init while running does nothing
    assert hvd.rank() == rank and hvd.size() == size


def test_build_and_enabled_queries_return_bools(hvd):
    for query in ("mpi_built", "mpi_enabled", "gloo_built", "gloo_enabled", "nccl_built",
                  "cuda_built", "rocm_built", "ddl_built", "ccl_built",
                  "mpi_threads_supported"):
        value = getattr(hvd, query)()
        assert isinstance(value, bool), "%s() returned %r, not a bool" % (query, value)
    assert hvd.mpi_built() and hvd.mpi_enabled()
    assert hvd.nccl_built() == bool(braid.nccl_built())
    assert hvd.cuda_built() == bool(braid.cuda_built())


def test_reduce_op_constants_are_distinct(hvd):
    ops = [hvd.Average, hvd.Sum, hvd.Min, hvd.Max, hvd.Product, hvd.Adasum]
    assert len(set(map(repr, ops))) == len(ops)


# ---------------------------------------------------------------- allreduce

ALLREDUCE_VARIANTS = ["allreduce", "allreduce_", "allreduce_async", "allreduce_async_"]


def run_allreduce(hvd, variant, x, name, **kwargs):
    """Runs one of the four allreduce entry points and checks the in-place contract:
    out of place leaves `x` unchanged, in place writes the result into `x`."""
    before = x.clone()
    if variant == "allreduce":
        out = hvd.allreduce(x, name=name, **kwargs)
    elif variant == "allreduce_":
        out = hvd.allreduce_(x, name=name, **kwargs)
    elif variant == "allreduce_async":
        out = hvd.synchronize(hvd.allreduce_async(x, name=name, **kwargs))
    else:
        out = hvd.synchronize(hvd.allreduce_async_(x, name=name, **kwargs))
    assert isinstance(out, torch.Tensor)
    if variant.endswith("_"):
        assert out.data_ptr() == x.data_ptr(), "%s must return its input tensor" % variant
    else:
        assert out.data_ptr() != x.data_ptr()
        assert torch.equal(x, before), "%s modified its input" % variant
    return out


@pytest.mark.parametrize("variant", ALLREDUCE_VARIANTS)
@pytest.mark.parametrize("shape", SHAPES, ids=sname)
@pytest.mark.parametrize("dtype", DTYPES, ids=dname)
def test_allreduce_ops(hvd, world, dtype, shape, variant):
    rank, size = world
    b = base(shape, torch.int64)
    key = "%s.%s.%s" % (variant, dname(dtype), sname(shape))
    expected = {
        "sum": (hvd.Sum, b * (size * (size + 1) // 2)),
        "min": (hvd.Min, b),
        "max": (hvd.Max, b * size),
        "product": (hvd.Product, b ** size * factorial(size)),
    }
    if dtype.is_floating_point:
        expected["average"] = (hvd.Average, b.double() * (size + 1) / 2)
    for op_name, (op, want) in expected.items():
        x = (b * (rank + 1)).to(dtype)
        out = run_allreduce(hvd, variant, x, "ar.%s.%s" % (op_name, key), op=op)
        assert_same(out, want, dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dname)
def test_allreduce_default_op_is_average(hvd, world, dtype):
    rank, size = world
    x = torch.full((4,), float(rank + 1), dtype=dtype)
    assert_same(hvd.allreduce(x, name="ar.default.%s" % dname(dtype)),
                torch.full((4,), (size + 1) / 2, dtype=torch.float64), dtype)


@pytest.mark.parametrize("variant", ALLREDUCE_VARIANTS)
@pytest.mark.parametrize("dtype", INT_DTYPES, ids=dname)
def test_allreduce_average_integers_truncates(hvd, world, dtype, variant):
    """Average on integer tensors keeps the dtype and rounds toward zero.

    Horovod averages through the postscale factor: sum * (1.0 / size) in double, cast
    back to the integer type, which truncates toward zero (not floor: -2.5 -> -2).
    Rank r contributes v + r*r, so the exact mean is v + 1/2 (2 ranks) or v + 5/3
    (3 ranks): never an integer, never within 1e-9 of one. Scaling in double is then
    off by far less than the distance to the next integer, so exact division and
    Horovod's scaling agree on trunc(sum / size) and the comparison can be exact."""
    rank, size = world
    values = [0, 2, 5, 9] if dtype == torch.uint8 else [-7, -4, -1, 0, 2, 5]
    x = torch.tensor([v + rank * rank for v in values], dtype=dtype)
    sums = [sum(v + r * r for r in range(size)) for v in values]
    expected = torch.tensor([int(Fraction(s, size)) for s in sums], dtype=torch.int64)
    out = run_allreduce(hvd, variant, x, "ar.avg.int.%s.%s" % (variant, dname(dtype)),
                        op=hvd.Average)
    assert_same(out, expected, dtype)


@pytest.mark.parametrize("variant", ["allreduce", "allreduce_async_"])
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64] + FLOAT_DTYPES, ids=dname)
def test_allreduce_prescale_postscale(hvd, world, dtype, variant):
    rank, size = world
    b = base((3, 4), torch.int64)
    total = size * (size + 1) // 2
    if dtype.is_floating_point:
        pre, post = 2.0, 0.25
    else:
        pre, post = 2.0, 3.0  # integer factors keep integer results exact
    for op_name, op, want in [("sum", hvd.Sum, b.double() * total * pre * post),
                              ("average", hvd.Average, b.double() * total * pre * post / size)]:
        if op == hvd.Average and not dtype.is_floating_point:
            continue
        x = (b * (rank + 1)).to(dtype)
        out = run_allreduce(hvd, variant, x, "ar.scale.%s.%s.%s" % (op_name, variant, dname(dtype)),
                            op=op, prescale_factor=pre, postscale_factor=post)
        assert_same(out, want, dtype)


def test_allreduce_prescale_applies_before_the_sum(hvd, world):
    """prescale scales each rank's input, postscale the reduced output: with Min, a
    negative prescale flips which rank's value wins."""
    rank, size = world
    x = torch.tensor([float(rank + 1)], dtype=torch.float64)
    out = hvd.allreduce(x, name="ar.scale.order", op=hvd.Min, prescale_factor=-1.0,
                        postscale_factor=2.0)
    assert out.item() == -2.0 * size


def test_allreduce_zero_and_one_element(hvd, world):
    rank, size = world
    empty = hvd.allreduce(torch.zeros(0, 3), name="ar.empty", op=hvd.Sum)
    assert tuple(empty.shape) == (0, 3)
    one = hvd.allreduce(torch.tensor([float(rank)]), name="ar.one", op=hvd.Sum)
    assert one.item() == size * (size - 1) / 2


def test_allreduce_noncontiguous_input(hvd, world):
    """A strided view is reduced by value (Horovod requires contiguity and raises
    ValueError; either is acceptable, a wrong result is not)."""
    rank, size = world
    full = torch.arange(12, dtype=torch.float32).reshape(3, 4) + rank
    view = full[:, ::2]
    try:
        out = hvd.allreduce(view, name="ar.strided", op=hvd.Sum)
    except ValueError:
        hvd.barrier()
        return
    expected = sum((torch.arange(12, dtype=torch.float64).reshape(3, 4) + r)[:, ::2]
                   for r in range(size))
    assert_same(out, expected, torch.float32)


def test_allreduce_in_place_on_a_view_with_offset(hvd, world):
    """An in-place allreduce of a contiguous slice writes through to its base (the
    slice starts at a storage offset) and leaves the rest of the base alone."""
    rank, size = world
    base_tensor = torch.full((10,), -1.0)
    view = base_tensor[2:7]
    view.fill_(float(rank + 1))
    out = hvd.allreduce_(view, name="ar.view.offset", op=hvd.Sum)
    assert out.data_ptr() == view.data_ptr()
    expected = torch.full((10,), -1.0, dtype=torch.float64)
    expected[2:7] = size * (size + 1) / 2
    assert_same(base_tensor, expected, torch.float32)


def test_allreduce_in_place_noncontiguous(hvd, world):
    """In place on a strided view: Horovod refuses (ValueError); writing the result
    through the view is fine too. Nothing else of the base may change."""
    rank, size = world
    base_tensor = torch.zeros(4, 6, dtype=torch.float64)
    view = base_tensor[:, ::2]
    view.fill_(rank + 1.0)
    try:
        hvd.allreduce_(view, name="ar.view.strided", op=hvd.Sum)
        refused = False
    except ValueError:
        refused = True
    hvd.barrier()
    expected = torch.zeros(4, 6, dtype=torch.float64)
    expected[:, ::2] = (rank + 1.0) if refused else size * (size + 1) / 2
    assert_same(base_tensor, expected, torch.float64)


@pytest.mark.parametrize("dtype", [torch.int32, torch.float32, torch.bfloat16], ids=dname)
def test_scalar_tensors(hvd, world, dtype):
    rank, size = world
    x = torch.tensor(rank + 1, dtype=dtype)
    total = hvd.allreduce(x, name="ar.scalar.%s" % dname(dtype), op=hvd.Sum)
    root = hvd.broadcast(x, size - 1, name="bc.scalar.%s" % dname(dtype))
    assert total.dim() == 0 and root.dim() == 0
    assert_same(total, torch.tensor(size * (size + 1) // 2), dtype)
    assert_same(root, torch.tensor(size), dtype)


def test_int64_beyond_double_precision(hvd, world):
    """int64 reductions stay exact past 2**53 (no detour through double)."""
    rank, size = world
    big = 2 ** 60
    x = torch.tensor([big + rank, -big - rank, big + 7 * rank], dtype=torch.int64)
    total = hvd.allreduce(x, name="ar.int64.big.sum", op=hvd.Sum)
    low = hvd.allreduce(x, name="ar.int64.big.min", op=hvd.Min)
    assert total.tolist() == [size * big + size * (size - 1) // 2,
                              -size * big - size * (size - 1) // 2,
                              size * big + 7 * size * (size - 1) // 2]
    assert low.tolist() == [big, -big - (size - 1), big]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=dname)
def test_large_allreduce(hvd, world, dtype):
    """A prime number of elements past a megabyte (the segmented ring path)."""
    rank, size = world
    n = 1_000_003
    x = (torch.arange(n, dtype=torch.int64) % 8 + rank).to(dtype)
    out = hvd.allreduce(x, name="ar.large.%s" % dname(dtype), op=hvd.Sum)
    expected = (torch.arange(n, dtype=torch.int64) % 8) * size + size * (size - 1) // 2
    assert_same(out, expected, dtype)


def test_name_reused_with_another_shape_and_dtype(hvd, world):
    """A name may be reused once its previous operation finished, with a new shape
    and dtype each time."""
    rank, size = world
    for i, (shape, dtype) in enumerate([((3,), torch.float32), ((5, 2), torch.float32),
                                        ((5, 2), torch.int64), ((3,), torch.float32),
                                        ((7,), torch.float64)]):
        out = hvd.allreduce(torch.full(shape, float(rank + i), dtype=dtype), name="ar.reused",
                            op=hvd.Sum)
        assert_same(out, torch.full(shape, float(sum(r + i for r in range(size))),
                                    dtype=torch.float64), dtype)


def test_duplicate_name_in_flight(hvd, world):
    """A second operation under a name still in flight is refused (Horovod raises
    ValueError; braid has BraidDuplicateNameError) and the first is unaffected.
    Rank 0 submits twice while the other ranks sleep, so its first allreduce cannot
    have finished; the other ranks submit once."""
    rank, size = world
    if size < 2:
        pytest.skip("needs a second rank to hold the first operation open")
    x = torch.full((4,), float(rank))
    hvd.barrier()
    error = second = None
    if rank == 0:
        first = hvd.allreduce_async(x, name="ar.dup", op=hvd.Sum)
        try:
            second = hvd.allreduce_async(x.clone(), name="ar.dup", op=hvd.Sum)
        except Exception as e:  # noqa: BLE001 - checked below
            error = e
    else:
        time.sleep(0.3)
        first = hvd.allreduce_async(x, name="ar.dup", op=hvd.Sum)
    out = hvd.synchronize(first)
    if second is not None:  # refused when waited on instead of when submitted
        try:
            hvd.synchronize(second)
        except Exception as e:  # noqa: BLE001
            error = e
    assert_same(out, torch.full((4,), size * (size - 1) / 2, dtype=torch.float64),
                torch.float32)
    if rank == 0:
        assert isinstance(error, (ValueError, braid.BraidDuplicateNameError)), repr(error)
        assert "ar.dup" in str(error)


def test_unnamed_operations_match_by_order(hvd, world):
    rank, size = world
    handles = [hvd.allreduce_async(torch.full((i + 1,), float(rank * i)), op=hvd.Sum)
               for i in range(10)]
    gathered = hvd.allgather(torch.full((1, 2), rank))
    outs = [hvd.synchronize(h) for h in handles]
    for i, out in enumerate(outs):
        assert_same(out, torch.full((i + 1,), float(i * size * (size - 1) / 2),
                                    dtype=torch.float64), torch.float32)
    assert gathered[:, 0].tolist() == list(range(size))


def test_allreduce_keeps_autograd_off_for_plain_tensors(hvd, world):
    rank, size = world
    out = hvd.allreduce(torch.ones(3), name="ar.nograd", op=hvd.Sum)
    assert not out.requires_grad


# ---------------------------------------------------------------- grouped allreduce

GROUPED_VARIANTS = ["grouped_allreduce", "grouped_allreduce_", "grouped_allreduce_async",
                    "grouped_allreduce_async_"]


@pytest.mark.parametrize("variant", GROUPED_VARIANTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=dname)
def test_grouped_allreduce(hvd, world, dtype, variant):
    rank, size = world
    ops = [("sum", hvd.Sum, lambda b: b * (size * (size + 1) // 2)),
           ("max", hvd.Max, lambda b: b * size)]
    if dtype.is_floating_point:
        ops.append(("average", hvd.Average, lambda b: b.double() * (size + 1) / 2))
    for op_name, op, want in ops:
        bases = [base(shape, torch.int64) for shape in SHAPES]
        xs = [(b * (rank + 1)).to(dtype) for b in bases]
        before = [x.clone() for x in xs]
        name = "gar.%s.%s.%s" % (variant, op_name, dname(dtype))
        fn = getattr(hvd, variant)
        result = fn(xs, name=name, op=op)
        if "async" in variant:
            result = hvd.synchronize(result)
        outs = list(result)
        assert len(outs) == len(xs)
        for x, x0, out, b in zip(xs, before, outs, bases):
            assert_same(out, want(b), dtype)
            if variant.endswith("_"):
                assert out.data_ptr() == x.data_ptr()
            else:
                assert torch.equal(x, x0), "%s modified its input" % variant


def test_grouped_allreduce_prescale_postscale(hvd, world):
    rank, size = world
    xs = [torch.full((n,), float(rank + 1)) for n in (1, 7, 64)]
    outs = hvd.grouped_allreduce(xs, name="gar.scale", op=hvd.Sum, prescale_factor=3.0,
                                 postscale_factor=0.5)
    for out, x in zip(outs, xs):
        assert_same(out, torch.full(x.shape, 1.5 * size * (size + 1) / 2, dtype=torch.float64),
                    torch.float32)


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


# ---------------------------------------------------------------- errors


def check_mismatch(hvd, tag, call):
    """`call` fails on every rank with a BraidMismatchError (a RuntimeError) carrying
    the same text everywhere, and braid still works afterwards. Every rank makes the
    same collective calls whatever happens, and checks only at the end."""
    size = hvd.size()
    try:
        call()
        error = None
    except Exception as e:  # noqa: BLE001 - checked below
        error = e
    messages = hvd.allgather_object(str(error), name="mismatch.msg." + tag)
    ok = hvd.allreduce(torch.ones(3), name="mismatch.after." + tag, op=hvd.Sum)
    assert error is not None, "no error raised"
    assert isinstance(error, braid.BraidMismatchError), repr(error)
    assert isinstance(error, braid.BraidError) and isinstance(error, RuntimeError)
    assert len(messages) == size
    assert all(m == messages[0] for m in messages), messages
    assert messages[0].strip()
    assert_same(ok, torch.full((3,), float(size), dtype=torch.float64), torch.float32)


def needs_two(world):
    if world[1] < 2:
        pytest.skip("needs two ranks")


def test_mismatched_allreduce_shape(hvd, world):
    needs_two(world)
    rank, size = world
    check_mismatch(hvd, "ar.shape", lambda: hvd.allreduce(torch.ones(rank + 1),
                                                          name="mm.ar.shape"))


def test_mismatched_allreduce_dtype(hvd, world):
    needs_two(world)
    rank, size = world
    dtype = torch.float32 if rank % 2 == 0 else torch.float64
    check_mismatch(hvd, "ar.dtype", lambda: hvd.allreduce(torch.ones(5, dtype=dtype),
                                                          name="mm.ar.dtype", op=hvd.Sum))


def test_mismatched_allreduce_op(hvd, world):
    needs_two(world)
    rank, size = world
    op = hvd.Sum if rank == 0 else hvd.Max
    check_mismatch(hvd, "ar.op", lambda: hvd.allreduce(torch.ones(5), name="mm.ar.op", op=op))


def test_mismatched_allgather_trailing_shape(hvd, world):
    needs_two(world)
    rank, size = world
    check_mismatch(hvd, "ag.shape", lambda: hvd.allgather(torch.ones(2, rank + 1),
                                                          name="mm.ag.shape"))


def test_mismatched_allgather_dtype(hvd, world):
    needs_two(world)
    rank, size = world
    dtype = torch.int32 if rank % 2 == 0 else torch.int64
    check_mismatch(hvd, "ag.dtype", lambda: hvd.allgather(torch.ones(2, 3, dtype=dtype),
                                                          name="mm.ag.dtype"))


def test_mismatched_broadcast_root(hvd, world):
    needs_two(world)
    rank, size = world
    check_mismatch(hvd, "bc.root", lambda: hvd.broadcast(torch.ones(4), rank,
                                                         name="mm.bc.root"))


def test_mismatched_broadcast_shape(hvd, world):
    needs_two(world)
    rank, size = world
    check_mismatch(hvd, "bc.shape", lambda: hvd.broadcast_(torch.ones(3, rank + 2), 0,
                                                           name="mm.bc.shape"))


def test_broadcast_root_out_of_range(hvd, world):
    rank, size = world
    with pytest.raises((ValueError, braid.BraidError)):
        hvd.broadcast(torch.ones(2), size, name="bc.badroot")
    hvd.barrier()


def test_unsupported_dtype_is_refused(hvd, world):
    with pytest.raises((ValueError, TypeError, braid.BraidError)):
        hvd.allreduce(torch.ones(3, dtype=torch.complex64), name="ar.complex", op=hvd.Sum)
    hvd.barrier()


BEFORE_INIT_SCRIPT = r"""
import json, sys, torch
import braid, braid.torch as hvd
out = {"is_initialized": hvd.is_initialized()}
for what, call in [
        ("allreduce", lambda: hvd.allreduce(torch.ones(3), name="before.init")),
        ("allgather", lambda: hvd.allgather(torch.ones(3), name="before.init.ag")),
        ("broadcast_", lambda: hvd.broadcast_(torch.ones(3), 0, name="before.init.bc"))]:
    try:
        call()
        out[what] = None
    except Exception as e:
        out[what] = [type(e).__name__, isinstance(e, braid.BraidNotInitializedError), str(e)]
print("RESULT " + json.dumps(out))
"""


def test_ops_before_init_raise(hvd, world):
    """In a separate process without an MPI launcher (this process is initialised)."""
    rank, size = world
    if rank != 0:
        return  # not collective: one process started from rank 0 is enough
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMPI_", "PMIX_", "PMI_", "OPAL_", "HYDRA_"))}
    proc = subprocess.run([sys.executable, "-c", BEFORE_INIT_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=120)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (proc.returncode, proc.stdout, proc.stderr[-3000:])
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["is_initialized"] is False
    for what in ("allreduce", "allgather", "broadcast_"):
        assert out[what] is not None, "%s before init did not raise" % what
        kind, not_initialized, message = out[what]
        assert not_initialized, "%s raised %s: %s" % (what, kind, message)
        assert "not initialized" in message.lower(), message


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
