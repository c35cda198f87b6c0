"""braid's sparse collectives on numpy arrays: sparse_allreduce(_async) and
sparse_allgather(_async). Run under MPI, e.g.
braidrun -np 3 python -m pytest -q tests/python/test_sparse.py.
Every rank's pairs are made from a seed and the rank, so each rank computes every
rank's pairs and the expected result itself. (numpy has no bfloat16: braid.torch's
tests cover it.)"""

import os

import numpy as np
import pytest

# A rank that diverges turns into an error on every rank instead of a hang.
os.environ.setdefault("BRAID_STALL_TIMEOUT_SECONDS", "60")

import braid  # noqa: E402

FLOATS = [np.float16, np.float32, np.float64]
TOL = {np.float16: 2e-3, np.float32: 1e-6, np.float64: 1e-12}


@pytest.fixture(scope="module")
def world():
    braid.init()  # does nothing when another module started braid already
    yield braid.rank(), braid.size()


def pairs(seed, r, shape, k, dtype=np.float32, index_dtype=np.int64):
    """Rank r's (indices, values) for `seed`: k indices into shape[0] (repeats
    allowed), values multiples of 1/2 in [-4, 4] (exact in every float type)."""
    g = np.random.default_rng(seed * 1000 + r)
    indices = g.integers(0, shape[0], k).astype(index_dtype)
    values = (g.integers(-8, 9, (k,) + tuple(shape[1:])) / 2).astype(dtype)
    return indices, values


def reference(every, shape, op):
    dense = np.zeros(shape, np.float64)
    for indices, values in every:
        np.add.at(dense, indices.astype(np.int64), values.astype(np.float64))
    return dense / len(every) if op == braid.Average else dense


def every_rank(size, seed, shape, k, **kw):
    return [pairs(seed, r, shape, k(r) if callable(k) else k, **kw) for r in range(size)]


def close(got, want, dtype):
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(13,), (11, 3)], ids=["1d", "2d"])
@pytest.mark.parametrize("op", [braid.Sum, braid.Average], ids=["sum", "average"])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64], ids=["i32", "i64"])
def test_sparse_allreduce(world, index_dtype, op, shape, dtype):
    rank, size = world
    every = every_rank(size, 7 + len(shape), shape, lambda r: 2 + 3 * r, dtype=dtype,
                       index_dtype=index_dtype)
    dense = np.empty(shape, dtype)
    out = braid.sparse_allreduce(*every[rank], dense, op=op, dense_fallback=False)
    assert out is dense
    close(dense, reference(every, shape, op), dtype)


def test_async_and_unnamed(world):
    rank, size = world
    a = every_rank(size, 20, (6, 2), 3)
    b = every_rank(size, 21, (9,), 4)
    da, db = np.empty((6, 2), np.float32), np.empty(9, np.float32)
    ha = braid.sparse_allreduce_async(*a[rank], da, name="async.a", op=braid.Sum)
    hb = braid.sparse_allreduce_async(*b[rank], db)
    assert braid.synchronize(hb) is db and braid.synchronize(ha) is da
    assert braid.poll(ha) and braid.poll(hb)
    close(da, reference(a, (6, 2), braid.Sum), np.float32)
    close(db, reference(b, (9,), braid.Average), np.float32)


def test_no_pairs_on_one_rank(world):
    rank, size = world
    every = every_rank(size, 22, (8, 2), lambda r: 0 if r == size - 1 else 5, dtype=np.float64)
    dense = np.empty((8, 2), np.float64)
    braid.sparse_allreduce(*every[rank], dense, name="kzero", op=braid.Sum)
    close(dense, reference(every, (8, 2), braid.Sum), np.float64)


def test_no_pairs_anywhere_gives_zeros(world):
    dense = np.full((5, 3), 7.0, np.float32)
    braid.sparse_allreduce(np.zeros(0, np.int32), np.zeros((0, 3), np.float32), dense,
                           name="kzero.all")
    assert not dense.any()


def test_repeated_indices_add_up(world):
    rank, size = world
    indices = np.array([4, 4, 0, 4, 6], np.int32)
    values = np.array([1, 2, 3, rank, 0.5], np.float32)
    dense = np.empty(7, np.float32)
    braid.sparse_allreduce(indices, values, dense, name="dups", op=braid.Sum,
                           dense_fallback=False)
    want = np.zeros(7)
    want[4] = 3 * size + size * (size - 1) / 2
    want[0] = 3 * size
    want[6] = 0.5 * size
    np.testing.assert_array_equal(dense, want)


def test_first_and_last_index(world):
    rank, size = world
    n = 1000
    dense = np.empty((n, 2), np.float32)
    braid.sparse_allreduce(np.array([0, n - 1], np.int64),
                           np.array([[1, 2], [rank, 1]], np.float32), dense, name="ends",
                           op=braid.Sum)
    assert dense[0].tolist() == [size, 2 * size]
    assert dense[n - 1].tolist() == [size * (size - 1) / 2, size]
    assert not dense[1:n - 1].any()


def test_old_content_is_overwritten(world):
    rank, size = world
    every = every_rank(size, 23, (10, 4), 3)
    dense = np.full((10, 4), 123.0, np.float32)
    braid.sparse_allreduce(*every[rank], dense, name="overwrite", op=braid.Sum)
    close(dense, reference(every, (10, 4), braid.Sum), np.float32)


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_dense_fallback_gives_the_same_sums(world, dtype):
    """Far more pairs than rows: with dense_fallback the ranks run a dense allreduce,
    which must give what the sparse exchange gives (the values are exact)."""
    rank, size = world
    shape = (6, 3)
    every = every_rank(size, 24, shape, 40, dtype=dtype)
    sparse, dense = np.empty(shape, dtype), np.empty(shape, dtype)
    braid.sparse_allreduce(*every[rank], sparse, name="fb.off.%s" % np.dtype(dtype).name,
                           op=braid.Sum, dense_fallback=False)
    braid.sparse_allreduce(*every[rank], dense, name="fb.on.%s" % np.dtype(dtype).name,
                           op=braid.Sum, dense_fallback=True)
    np.testing.assert_array_equal(sparse, dense)
    close(dense, reference(every, shape, braid.Sum), dtype)


def test_stats_count_values_and_indices_apart(world):
    rank, size = world
    k = rank + 2
    braid.reset_stats()
    braid.sparse_allreduce(np.arange(k, dtype=np.int32), np.ones((k, 3), np.float64),
                           np.empty((8, 3), np.float64), name="stats", dense_fallback=False)
    stats = braid.stats()["sparse_allreduce"]
    assert stats["count"] == 1
    assert stats["bytes"] == k * 3 * 8
    assert stats["index_bytes"] == k * 4
    braid.sparse_allgather(np.arange(k, dtype=np.int64), np.ones((k, 2), np.float32), [8, 2],
                           name="stats.gather")
    gathered = braid.stats()["sparse_allgather"]
    assert gathered["count"] == 1 and gathered["index_bytes"] == k * 8


def test_sparse_allgather(world):
    rank, size = world
    every = every_rank(size, 25, (9, 2), lambda r: r + 1, dtype=np.float64)
    indices, values, counts = braid.sparse_allgather(*every[rank], [9, 2], name="gather")
    assert counts == [r + 1 for r in range(size)]
    np.testing.assert_array_equal(indices, np.concatenate([i for i, _ in every]))
    np.testing.assert_array_equal(values, np.concatenate([v for _, v in every]))
    h = braid.sparse_allgather_async(np.zeros(0, np.int32), np.zeros(0, np.float32), [4])
    indices, values, counts = braid.synchronize(h)
    assert counts == [0] * size and indices.size == 0 and values.size == 0


# ------------------------------------------------------------------ errors on every rank


def _mismatch(world, name, indices, values, dense):
    with pytest.raises(braid.BraidMismatchError) as info:
        braid.sparse_allreduce(indices, values, dense, name=name)
    return str(info.value)


def test_mismatched_dtype(world):
    rank, size = world
    if size < 2:
        pytest.skip("needs two ranks")
    dtype = np.float64 if rank == 0 else np.float32
    message = _mismatch(world, "mm.dtype", np.array([1], np.int32), np.ones((1, 2), dtype),
                        np.empty((4, 2), dtype))
    assert "mm.dtype" in message


def test_mismatched_dense_shape(world):
    rank, size = world
    if size < 2:
        pytest.skip("needs two ranks")
    rows = 4 if rank == 0 else 5
    message = _mismatch(world, "mm.shape", np.array([1], np.int32), np.ones((1, 2), np.float32),
                        np.empty((rows, 2), np.float32))
    assert "Mismatched dense shapes" in message and "[4, 2]" in message and "[5, 2]" in message


def test_mismatched_index_dtype(world):
    rank, size = world
    if size < 2:
        pytest.skip("needs two ranks")
    index_dtype = np.int32 if rank == 0 else np.int64
    message = _mismatch(world, "mm.index", np.array([1], index_dtype),
                        np.ones((1, 2), np.float32), np.empty((4, 2), np.float32))
    assert "Mismatched index types" in message


def test_out_of_range_index_names_the_rank(world):
    rank, size = world
    bad = size - 1
    index = 4 if rank == bad else 0
    with pytest.raises(braid.BraidInvalidArgument, match="rank %d: .*index 4" % bad):
        braid.sparse_allreduce(np.array([index], np.int64), np.ones((1, 2), np.float32),
                               np.empty((4, 2), np.float32), name="range")
    # The engine stays usable.
    dense = np.empty((4, 2), np.float32)
    braid.sparse_allreduce(np.array([3], np.int64), np.ones((1, 2), np.float32), dense,
                           name="range.after", op=braid.Sum)
    assert dense[3].tolist() == [size, size] and not dense[:3].any()


def test_op_other_than_sum_or_average_is_refused(world):
    with pytest.raises(braid.BraidInvalidArgument, match="op must be Sum or Average"):
        braid.sparse_allreduce(np.array([0], np.int32), np.ones(1, np.float32),
                               np.empty(3, np.float32), name="bad.op", op=braid.Max)
