"""braid.torch with int16 and bool tensors, float16 averages near the format's
maximum, and pre/postscaling bit for bit as Horovod defines it.

Horovod's scaling (its ScaleBuffer) is in the tensor's own arithmetic: the factor
is converted to float32 for float32 and float16 (float16 computed in float32 and
rounded to nearest even; braid does the same for bfloat16) and kept float64 for
float64 and the integers (the product converted back, truncating). With the same
tensor t on every rank, allreduce(t, op=Sum, prescale_factor=f) is then one
rounding of size * (f * t) at 2 and 3 ranks. The references below are written
with explicit numpy (torch for bfloat16, which numpy lacks) dtypes.

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/test_torch_dtypes.py"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import braid  # noqa: E402

RING_BYTES = 4 << 20  # the host backend's ring threshold: sizes on both paths


def sizes(dtype):
    return [1001, RING_BYTES // torch.tensor([], dtype=dtype).element_size() + 101]


# ---------------------------------------------------------------- int16


@pytest.mark.parametrize("op", ["Sum", "Min", "Max", "Average", "Product"])
def test_int16_allreduce(hvd, world, op):
    rank, size = world
    n = torch.arange(300, dtype=torch.int64)
    if op == "Product":
        values = [((n + r) % 3 - 1) * 7 for r in range(size)]  # |product| <= 7^4
    else:
        values = [1000 * (r + 1) * (1 - 2 * (n % 2)) + n % 7 for r in range(size)]
    out = hvd.allreduce(values[rank].to(torch.int16), name="i16." + op, op=getattr(hvd, op))
    stacked = torch.stack(values)
    expected = {
        "Sum": stacked.sum(0),
        "Min": stacked.min(0).values,
        "Max": stacked.max(0).values,
        "Average": torch.div(stacked.sum(0), size, rounding_mode="trunc"),
        "Product": stacked.prod(0),
    }[op]
    assert out.dtype == torch.int16
    assert torch.equal(out.to(torch.int64), expected)


def test_int16_allgather_and_broadcast(hvd, world):
    rank, size = world
    rows = (torch.arange(3 * (rank + 1)) + 1000 * rank - 30000).reshape(rank + 1, 3)
    out = hvd.allgather(rows.to(torch.int16), name="i16.gather")
    expected = torch.cat([(torch.arange(3 * (r + 1)) + 1000 * r - 30000).reshape(r + 1, 3)
                          for r in range(size)])
    assert out.dtype == torch.int16 and torch.equal(out.to(torch.int64), expected)
    for root in range(size):
        x = torch.full((5,), 32767 - root if rank == root else 0, dtype=torch.int16)
        hvd.broadcast_(x, root, name="i16.bcast.%d" % root)
        assert torch.equal(x, torch.full((5,), 32767 - root, dtype=torch.int16))


# ---------------------------------------------------------------- bool


def bool_pattern(rank, n):
    """Element i is true on rank r when bit r of i is set: every combination."""
    return (torch.arange(n) >> rank) % 2 == 1


def test_bool_allgather_and_broadcast(hvd, world):
    rank, size = world
    x = bool_pattern(0, rank + 2) ^ (rank % 2 == 1)
    out = hvd.allgather(x, name="bool.gather")
    assert out.dtype == torch.bool
    assert torch.equal(out, torch.cat([bool_pattern(0, r + 2) ^ (r % 2 == 1)
                                       for r in range(size)]))
    for root in range(size):
        y = bool_pattern(root, 9) if rank == root else torch.zeros(9, dtype=torch.bool)
        got = hvd.broadcast(y, root, name="bool.bcast.%d" % root)
        assert got.dtype == torch.bool and torch.equal(got, bool_pattern(root, 9))
        hvd.broadcast_(y, root, name="bool.bcast_.%d" % root)
        assert torch.equal(y, bool_pattern(root, 9))


@pytest.mark.parametrize("op", ["Sum", "Max", "Min", "Product"])
def test_bool_allreduce_is_logical(hvd, world, op):
    """As torch combines bools element-wise: + and max are or, * and min are and."""
    rank, size = world
    n = 1 << size
    out = hvd.allreduce(bool_pattern(rank, n), name="bool." + op, op=getattr(hvd, op))
    everyone = torch.stack([bool_pattern(r, n) for r in range(size)])
    expected = everyone.any(0) if op in ("Sum", "Max") else everyone.all(0)
    assert out.dtype == torch.bool and torch.equal(out, expected)


def test_bool_average_and_scaling_are_refused(hvd, world):
    x = torch.ones(4, dtype=torch.bool)
    with pytest.raises(braid.BraidInvalidArgument, match="bool.avg.*cannot be averaged"):
        hvd.allreduce(x, name="bool.avg", op=hvd.Average)
    with pytest.raises(braid.BraidInvalidArgument, match="bool.scaled.*cannot be scaled"):
        hvd.allreduce(x, name="bool.scaled", op=hvd.Sum, prescale_factor=2.0)
    assert hvd.allreduce(torch.ones(2), name="bool.after", op=hvd.Sum).tolist() == [world[1]] * 2


# ---------------------------------------------------------------- 16-bit averages


def test_float16_average_near_the_maximum_is_exact(hvd, world):
    """A float16 sum of two 60000s is past 65504: rounded per hop it is infinite."""
    for n in sizes(torch.float16):
        x = torch.full((n,), 60000.0, dtype=torch.float16)
        out = hvd.allreduce(x, name="f16.avg.max.%d" % n, op=hvd.Average)
        assert torch.equal(out, x), out[torch.isinf(out) | (out != 60000)][:5]


# ---------------------------------------------------------------- Horovod scaling

SCALED_DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                 torch.float16, torch.bfloat16, torch.float32, torch.float64]


def scaled_input(dtype, n):
    """The same values on every rank, small enough that f * t * 3 fits the dtype."""
    i = np.arange(n, dtype=np.int64)
    k = (i * 37) % 1001 - 500
    if dtype == torch.uint8:
        v = (i * 37) % 30
    elif dtype == torch.int8:
        v = (i * 37) % 33 - 16
    elif dtype == torch.int16:
        v = k * 5
    elif dtype.is_floating_point:
        v = k / 7.3
    else:
        v = k * 13
    return torch.from_numpy(np.asarray(v)).to(dtype)


def horovod_scale(x, f):
    """Horovod's ScaleBuffer of tensor x by f, in x's arithmetic."""
    if x.dtype == torch.bfloat16:  # numpy has no bfloat16: torch, explicitly in float32
        return (torch.tensor(np.float32(f)) * x.to(torch.float32)).to(torch.bfloat16)
    a = x.numpy()
    if a.dtype == np.float16:
        out = (np.float32(f) * a.astype(np.float32)).astype(np.float16)
    elif a.dtype == np.float32:
        out = np.float32(f) * a
    elif a.dtype == np.float64:
        out = np.float64(f) * a
    else:
        out = (np.float64(f) * a.astype(np.float64)).astype(a.dtype)  # truncates
    return torch.from_numpy(np.asarray(out))


def sum_of_copies(p, size):
    """The dtype's sum of `size` copies of p: one rounding of size * p."""
    if p.dtype in (torch.float16, torch.bfloat16):
        return (size * p.to(torch.float32)).to(p.dtype)  # exact in float32, then rounded
    if p.dtype == torch.float32:
        return torch.from_numpy(np.float32(size) * p.numpy())
    return p * size


def bitwise_equal(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    if a.dtype.is_floating_point:
        view = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
        return torch.equal(a.view(view), b.view(view))
    return torch.equal(a, b)


@pytest.mark.parametrize("dtype", SCALED_DTYPES, ids=lambda d: str(d).replace("torch.", ""))
def test_pre_and_postscale_match_horovod_bit_for_bit(hvd, world, dtype):
    rank, size = world
    if size > 3:
        pytest.skip("one rounding of size * p holds at 2 and 3 ranks (MPI's order beyond)")
    for n in sizes(dtype):
        t = scaled_input(dtype, n)
        for f in (0.1, 1.0 / 3, 0.7, 2.5):
            out = hvd.allreduce(t, name="hs.pre.%s.%d.%r" % (dtype, n, f), op=hvd.Sum,
                                prescale_factor=f)
            assert bitwise_equal(out, sum_of_copies(horovod_scale(t, f), size)), (n, f)
        for g in (0.1, 1.0 / 3, 1.7):
            out = hvd.allreduce(t, name="hs.post.%s.%d.%r" % (dtype, n, g), op=hvd.Sum,
                                postscale_factor=g)
            assert bitwise_equal(out, horovod_scale(sum_of_copies(t, size), g)), (n, g)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int32, torch.int16],
                         ids=lambda d: str(d).replace("torch.", ""))
def test_average_with_scale_factors_matches_horovod(hvd, world, dtype):
    """Horovod averages through the postscale factor: postscale / size."""
    rank, size = world
    if size > 3:
        pytest.skip("one rounding of size * p holds at 2 and 3 ranks (MPI's order beyond)")
    t = scaled_input(dtype, 1001)
    post = 1.0 / 3 if dtype.is_floating_point else 1.0
    out = hvd.allreduce(t, name="hs.avg.%s" % dtype, op=hvd.Average, prescale_factor=0.7,
                        postscale_factor=post)
    expected = horovod_scale(sum_of_copies(horovod_scale(t, 0.7), size), post / size)
    assert bitwise_equal(out, expected)
