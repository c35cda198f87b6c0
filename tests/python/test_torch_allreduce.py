"""braid.torch allreduce and grouped allreduce, and the basic queries, against
Horovod's PyTorch API (`import braid.torch as hvd`).

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/. Every rank runs
the same tests in the same order; expected values are computed here from rank and
size."""

import os
from fractions import Fraction
from math import factorial

import pytest

torch = pytest.importorskip("torch")

import braid  # noqa: E402
from torch_util import (  # noqa: E402
    DTYPES, FLOAT_DTYPES, INT_DTYPES, SHAPES, assert_same, base, dname, sname)

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
    Rank 0 submits twice before the other ranks submit at all: they wait in
    'ar.dup.go', which rank 0 joins only after its second submission, so its first
    allreduce cannot have finished (however the ranks are scheduled); the other
    ranks submit once."""
    rank, size = world
    if size < 2:
        pytest.skip("needs a second rank to hold the first operation open")
    x = torch.full((4,), float(rank))
    error = second = None
    if rank == 0:
        first = hvd.allreduce_async(x, name="ar.dup", op=hvd.Sum)
        try:
            second = hvd.allreduce_async(x.clone(), name="ar.dup", op=hvd.Sum)
        except Exception as e:  # noqa: BLE001 - checked below
            error = e
        hvd.allreduce(torch.ones(1), name="ar.dup.go", op=hvd.Sum)
    else:
        hvd.allreduce(torch.ones(1), name="ar.dup.go", op=hvd.Sum)
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
