"""Gradients through braid.torch's collectives, as Horovod's PyTorch API defines them.

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/test_torch_grad.py.
Upstream gradients differ by rank, so a backward pass that sums where it should
average (or the reverse), or that skips the allreduce, gives a different answer."""

import pytest

torch = pytest.importorskip("torch")

from torch_util import dname, sname  # noqa: E402

FLOATS = [torch.float32, torch.float64]
SHAPES = [(5,), (3, 4), (2, 3, 2)]

# In the backward pass of allgather and broadcast the upstream gradient is averaged
# over ranks, as current Horovod defines it (early releases summed).


def upstream(shape, r, dtype=torch.float64):
    """Rank r's upstream gradient: distinct per element and per rank."""
    n = 1
    for s in shape:
        n *= s
    return ((torch.arange(n, dtype=torch.float64) % 7 + 1) * (r + 1) + 0.5 * r).reshape(
        shape).to(dtype)


def mean_over_ranks(fn, size):
    return sum(fn(r) for r in range(size)) / size


def close(got, expected):
    assert got is not None, "no gradient reached the input"
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES, ids=sname)
@pytest.mark.parametrize("dtype", FLOATS, ids=dname)
@pytest.mark.parametrize("op_name", ["Average", "Sum"])
def test_allreduce_grad(hvd, world, op_name, dtype, shape):
    """d/dx_r of allreduce is the same allreduce of the upstream gradients."""
    rank, size = world
    op = getattr(hvd, op_name)
    x = torch.full(shape, float(rank + 1), dtype=dtype, requires_grad=True)
    y = hvd.allreduce(x, name="grad.ar.%s.%s.%s" % (op_name, dname(dtype), sname(shape)), op=op)
    y.backward(upstream(shape, rank, dtype))
    assert y.requires_grad
    total = size * (size + 1) / 2
    expected_y = torch.full(shape, total / size if op_name == "Average" else total, dtype=dtype)
    close(y.detach(), expected_y)
    summed = sum(upstream(shape, r, dtype) for r in range(size))
    close(x.grad, summed / size if op_name == "Average" else summed)


@pytest.mark.parametrize("op_name", ["Average", "Sum"])
def test_allreduce_grad_keeps_scaling(hvd, world, op_name):
    """Horovod's backward uses the forward's op, prescale and postscale factors."""
    rank, size = world
    op = getattr(hvd, op_name)
    shape = (4, 3)
    x = torch.full(shape, float(rank + 1), dtype=torch.float64, requires_grad=True)
    y = hvd.allreduce(x, name="grad.ar.scaled.%s" % op_name, op=op, prescale_factor=3.0,
                      postscale_factor=0.5)
    y.backward(upstream(shape, rank))
    divide = size if op_name == "Average" else 1
    close(y.detach(), torch.full(shape, 1.5 * size * (size + 1) / 2 / divide,
                                 dtype=torch.float64))
    close(x.grad, 1.5 * sum(upstream(shape, r) for r in range(size)) / divide)


def test_allreduce_grad_through_a_graph(hvd, world):
    """A loss built on top of the allreduce: chain rule through the collective."""
    rank, size = world
    w = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    x = w * (rank + 1)
    y = hvd.allreduce(x, name="grad.ar.graph", op=hvd.Average)
    loss = (y ** 2).sum() * (rank + 1)
    loss.backward()
    # y = w * (size + 1) / 2 on every rank; dloss_r/dy = 2 y (r + 1); the backward
    # allreduce averages that over ranks, then d x_r / d w = r + 1.
    y_val = w.detach() * (size + 1) / 2
    mean_upstream = mean_over_ranks(lambda r: 2 * y_val * (r + 1), size)
    close(w.grad, mean_upstream * (rank + 1))


def test_allreduce_grad_with_compression(hvd, world):
    rank, size = world
    x = torch.full((6,), 0.5 * (rank + 1), dtype=torch.float32, requires_grad=True)
    y = hvd.allreduce(x, name="grad.ar.fp16", op=hvd.Sum, compression=hvd.Compression.fp16)
    y.backward(torch.full((6,), 0.25 * (rank + 1)))
    assert y.dtype == torch.float32
    close(x.grad, torch.full((6,), 0.25 * size * (size + 1) / 2))


@pytest.mark.parametrize("op_name", ["Average", "Sum"])
def test_grouped_allreduce_grad(hvd, world, op_name):
    rank, size = world
    op = getattr(hvd, op_name)
    shapes = [(3,), (2, 4), (1, 2, 3)]
    xs = [torch.full(s, float(rank + 1), dtype=torch.float64, requires_grad=True)
          for s in shapes]
    ys = hvd.grouped_allreduce(xs, name="grad.gar.%s" % op_name, op=op)
    loss = sum((y * upstream(s, rank)).sum() for y, s in zip(ys, shapes))
    loss.backward()
    assert len(ys) == len(xs)
    for x, s in zip(xs, shapes):
        summed = sum(upstream(s, r) for r in range(size))
        close(x.grad, summed / size if op_name == "Average" else summed)


@pytest.mark.parametrize("shape", SHAPES, ids=sname)
@pytest.mark.parametrize("dtype", FLOATS, ids=dname)
def test_allgather_grad(hvd, world, dtype, shape):
    """Rank r contributes r + 1 rows; its gradient is the allreduce of the upstream
    gradients over the gathered tensor, narrowed to rank r's rows."""
    rank, size = world
    rest = tuple(shape[1:])
    x = torch.full((rank + 1,) + rest, float(rank), dtype=dtype, requires_grad=True)
    y = hvd.allgather(x, name="grad.ag.%s.%s" % (dname(dtype), sname(shape)))
    rows = size * (size + 1) // 2
    y.backward(upstream(tuple(y.shape), rank, dtype))
    assert tuple(y.shape) == (rows,) + rest
    assert y.requires_grad
    reduced = sum(upstream((rows,) + rest, r, dtype) for r in range(size)) / size
    offset = rank * (rank + 1) // 2
    close(x.grad, reduced[offset:offset + rank + 1])


def test_allgather_grad_through_a_graph(hvd, world):
    """Every rank's loss uses every rank's rows."""
    rank, size = world
    w = torch.tensor([[1.0, -1.0]], dtype=torch.float64, requires_grad=True)
    x = w * (rank + 1)  # one row per rank
    g = hvd.allgather(x, name="grad.ag.graph")
    weights = torch.arange(1, size + 1, dtype=torch.float64)[:, None] * (rank + 1)
    (g * weights).sum().backward()
    # dloss_r/dg[row j] = (j + 1)(r + 1); reduced over ranks, row `rank`:
    per_rank = [(rank + 1) * (r + 1) * torch.ones(1, 2, dtype=torch.float64)
                for r in range(size)]
    reduced = sum(per_rank) / size
    close(w.grad, reduced * (rank + 1))


@pytest.mark.parametrize("shape", SHAPES, ids=sname)
@pytest.mark.parametrize("dtype", FLOATS, ids=dname)
def test_broadcast_grad(hvd, world, dtype, shape):
    """The gradient reaches only the root: the upstream gradients averaged over ranks
    there, zeros on every other rank."""
    rank, size = world
    results = []  # every rank runs every root's forward and backward before any check
    for root in range(size):
        x = torch.full(shape, float(rank), dtype=dtype, requires_grad=True)
        y = hvd.broadcast(x, root, name="grad.bc.%s.%s.%d" % (dname(dtype), sname(shape), root))
        y.backward(upstream(shape, rank, dtype))
        results.append((root, x, y))
    reduced = sum(upstream(shape, r, dtype) for r in range(size)) / size
    for root, x, y in results:
        assert y.requires_grad
        close(y.detach(), torch.full(shape, float(root), dtype=dtype))
        close(x.grad, reduced if rank == root else torch.zeros(shape, dtype=dtype))


def test_in_place_ops_under_no_grad(hvd, world):
    """In-place collectives on a tensor without grad tracking (torch.no_grad), the way
    optimizers and broadcast_parameters use them, work and leave no graph."""
    rank, size = world
    p = torch.full((3,), float(rank), requires_grad=True)
    with torch.no_grad():
        hvd.allreduce_(p, name="grad.inplace.ar", op=hvd.Sum)
        hvd.broadcast_(p, 0, name="grad.inplace.bc")
    assert p.requires_grad and p.grad_fn is None
    close(p.detach(), torch.full((3,), size * (size - 1) / 2))
