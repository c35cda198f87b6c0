"""braid.ops' selection kernels (ops/compress) on numpy arrays and torch tensors,
against references written here (numpy sorts, torch.topk). The kernels are local;
every rank runs the same tests, and one test checks that random-k draws the same
indices on every rank. Run under MPI, e.g.
braidrun -np 2 python -m pytest -q tests/python/test_compress.py"""

import numpy as np
import pytest
import torch

import braid
import braid.ops as ops


def reference_order(x):
    """Indices by |x| descending, NaN first, ties by the smaller index."""
    mag = np.abs(np.asarray(x, dtype=np.float64))
    nan = np.isnan(mag)
    mag = np.where(nan, 0.0, mag)
    # lexsort: the last key is the primary one.
    return np.lexsort((np.arange(len(mag)), -mag, ~nan))


def reference_topk(x, k):
    return np.sort(reference_order(x)[:k])


def normal(n, seed, dtype=np.float32, ties=True):
    x = np.random.default_rng(seed).standard_normal(n).astype(dtype)
    if ties and n > 10:
        x[5::97] = x[4::97][: len(x[5::97])]
    return x


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("index_dtype", ["int32", "int64"])
def test_topk_numpy_against_a_sort(dtype, index_dtype):
    for n in (1, 100, 70001, 300007):
        x = normal(n, n, dtype)
        for k in (0, 1, n // 100, n // 2, n):
            idx, vals = ops.topk(x, k, index_dtype=index_dtype)
            assert idx.dtype == np.dtype(index_dtype)
            np.testing.assert_array_equal(idx, reference_topk(x, k))
            np.testing.assert_array_equal(vals, x[idx])


def test_topk_matches_torch_topk():
    torch.manual_seed(3)
    x = torch.randn(1_000_003)  # no ties: torch.topk and braid pick the same set
    for k in (1, 1000, 10000):
        idx, vals = ops.topk(x, k)
        assert isinstance(idx, torch.Tensor) and idx.dtype == torch.int32
        expected = torch.topk(x.abs(), k).indices.sort().values
        torch.testing.assert_close(idx.long(), expected)
        torch.testing.assert_close(vals, x[expected])


def test_topk_bfloat16_and_given_outputs():
    x = torch.randn(50000).to(torch.bfloat16)
    k = 500
    indices_out = torch.empty(k, dtype=torch.int64)
    values_out = torch.empty(k, dtype=torch.bfloat16)
    idx, vals = ops.topk(x, k, indices_out=indices_out, values_out=values_out, num_threads=2)
    assert idx is indices_out and vals is values_out
    np.testing.assert_array_equal(idx.numpy(), reference_topk(x.float().numpy(), k))
    assert torch.equal(vals, x[idx])


def test_nan_inf_zero_and_all_equal():
    x = np.zeros(1000, np.float32)
    idx, _ = ops.topk(x, 10)
    np.testing.assert_array_equal(idx, np.arange(10))
    x = np.full(200000, -1.5, np.float32)
    idx, vals = ops.topk(x, 1000)
    np.testing.assert_array_equal(idx, np.arange(1000))
    assert (vals == -1.5).all()
    x = normal(1000, 1)
    x[[7, 500]] = np.nan
    x[[3, 900]] = [np.inf, -np.inf]
    idx, vals = ops.topk(x, 3)
    np.testing.assert_array_equal(idx, [3, 7, 500])  # NaN, NaN, then the first inf
    idx, _ = ops.topk(x, 4)
    np.testing.assert_array_equal(idx, [3, 7, 500, 900])


def test_bad_arguments_raise():
    x = np.ones(10, np.float32)
    with pytest.raises(braid.BraidError, match="k = 11"):
        ops.topk(x, 11)
    with pytest.raises(braid.BraidError):
        ops.topk(np.ones(10, np.int32), 3)
    with pytest.raises(braid.BraidError):
        ops.topk(x, 3, indices_out=np.empty(2, np.int64))
    with pytest.raises(ValueError):
        ops.topk(x, 3, index_dtype="float32")
    idx, vals = ops.topk(np.ones(0, np.float32), 0)
    assert idx.size == 0 and vals.size == 0


def test_threshold_topk_guarantee_and_rounds():
    x = normal(200000, 5)
    for k in (200, 2000, 20000):
        idx, vals, info = ops.threshold_topk(x, k, seed=7)
        assert 1 <= info.rounds <= 10
        assert info.selected == min(k, info.candidates) == len(idx)
        order = reference_order(x)
        np.testing.assert_array_equal(idx, np.sort(order[: info.selected]))
        np.testing.assert_array_equal(vals, x[idx])
        assert info.candidates == int((np.abs(x) >= info.threshold).sum())
        again = ops.threshold_topk(x, k, seed=7)
        np.testing.assert_array_equal(again[0], idx)
        assert again[2] == info
    # One round from a tiny sample may stop short of k: still the largest ones.
    short = 0
    for seed in range(12):
        idx, _, info = ops.threshold_topk(x, 2000, sample_fraction=0.0005, seed=seed,
                                          max_rounds=1)
        assert info.rounds == 1
        np.testing.assert_array_equal(idx, np.sort(reference_order(x)[: info.selected]))
        short += info.selected < 2000
    assert short > 0


def test_random_k_is_the_same_on_every_rank(hvd):
    n, k = 100000, 1000
    x = normal(n, hvd.rank())  # different values on every rank
    idx, vals = ops.random_k(x, k, seed=1234, index_dtype="int64")
    assert len(np.unique(idx)) == k and (np.diff(idx) > 0).all()
    assert idx.min() >= 0 and idx.max() < n
    np.testing.assert_array_equal(vals, x[idx])
    every = hvd.allgather(torch.from_numpy(idx).reshape(1, k), name="compress.random_k")
    assert (every == every[0]).all()
    other, _ = ops.random_k(x, k, seed=1235, index_dtype="int64")
    assert not np.array_equal(idx, other)
    t_idx, _ = ops.random_k(torch.from_numpy(x), k, seed=1234)
    np.testing.assert_array_equal(t_idx.numpy(), idx)


def test_segmented_per_tensor_density_and_global():
    offsets = [0, 10, 10, 5000, 200000]
    x = normal(offsets[-1], 9)
    assert ops.k_for_density(offsets, 0.01) == [1, 0, 50, 1950]
    idx, vals, counts = ops.segmented_topk(x, offsets, density=0.01)
    assert counts == [1, 0, 50, 1950]
    expected = np.concatenate([lo + reference_topk(x[lo:hi], c)
                               for lo, hi, c in zip(offsets, offsets[1:], counts)])
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_array_equal(vals, x[idx])
    idx, vals, counts = ops.segmented_topk(x, offsets, global_k=3000)
    np.testing.assert_array_equal(idx, reference_topk(x, 3000))
    assert counts == [int(((lo <= idx) & (idx < hi)).sum()) for lo, hi in zip(offsets,
                                                                                 offsets[1:])]
    with pytest.raises(ValueError):
        ops.segmented_topk(x, offsets, k=[1, 0, 1, 1], global_k=3)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_error_feedback_against_a_loop(dtype):
    e, g, d = (normal(100003, s, dtype) for s in (1, 2, 3))
    wide = np.float64 if dtype == np.float64 else np.float32
    a, b = -0.1, 0.9
    ga = (wide(a) * g.astype(wide)).astype(wide)
    expected = (e.astype(wide) + ga).astype(wide)
    expected = (expected + (wide(b) * d.astype(wide)).astype(wide)).astype(dtype)
    out = ops.error_feedback(e, g, a=a, d=d, b=b)
    assert out is e
    np.testing.assert_array_equal(e, expected)
    e2 = np.ones(5, dtype)
    ops.error_feedback(e2, np.full(5, 2, dtype), a=0.5)
    np.testing.assert_array_equal(e2, np.full(5, 2, dtype))


def test_extract_sent_zeroes_the_memory():
    e = normal(10000, 4)
    before = e.copy()
    idx, _ = ops.topk(e, 100)
    sent = ops.extract_sent(e, idx)
    np.testing.assert_array_equal(sent, before[idx])
    assert (e[idx] == 0).all()
    rest = np.ones(e.size, bool)
    rest[idx] = False
    np.testing.assert_array_equal(e[rest], before[rest])
    with pytest.raises(braid.BraidError):
        ops.extract_sent(e, np.array([3, 10000], np.int64))


@pytest.mark.gpu
def test_cuda_kernels_match_the_host():
    if not torch.cuda.is_available():
        pytest.skip("no GPU visible")
    if not ops.compress_device_kernels_available():
        pytest.skip("this build of braid has no CUDA kernels")
    x = torch.randn(1_000_003)
    xc = x.cuda()
    for k in (1, 1000, 100000):
        idx, vals = ops.topk(xc, k)
        assert idx.is_cuda
        hidx, hvals = ops.topk(x, k)
        assert torch.equal(idx.cpu(), hidx) and torch.equal(vals.cpu(), hvals)
        didx, _, dinfo = ops.threshold_topk(xc, k, seed=5)
        hidx, _, hinfo = ops.threshold_topk(x, k, seed=5)
        assert dinfo == hinfo and torch.equal(didx.cpu(), hidx)
    assert torch.equal(ops.random_k(xc, 500, seed=1)[0].cpu(), ops.random_k(x, 500, seed=1)[0])
    e, g = torch.randn(100000), torch.randn(100000)
    ec = e.cuda()
    ops.error_feedback(ec, g.cuda(), a=0.3)
    ops.error_feedback(e, g, a=0.3)
    assert torch.equal(ec.cpu(), e)
