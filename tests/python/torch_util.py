"""Shared by the braid.torch test modules: dtypes and shapes swept, the values the
tests reduce, and how results are compared."""

import pytest
import torch

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


def needs_two(world, why="needs two ranks"):
    if world[1] < 2:
        pytest.skip(why)



class MLP(torch.nn.Module):
    """A small two-layer model for optimizer tests."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 8)
        self.fc2 = torch.nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


def named(model, tag):
    """Parameter names unique to one test, so a failure cannot leave a pending name
    that the next test reuses."""
    return [("%s.%s" % (tag, n), p) for n, p in model.named_parameters()]


def full_batch(step, size, batch):
    """The concatenated batch of every rank for `step`, the same on every rank."""
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(size * batch, 4, generator=g)
    y = torch.randn(size * batch, 2, generator=g)
    return x, y
