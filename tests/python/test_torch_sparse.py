"""braid.torch's sparse API: sparse_allreduce(_async), allreduce of torch.sparse_coo
tensors, and DistributedOptimizer's sparse gradients (with torch.optim.SparseAdam).

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/test_torch_sparse.py.
Every rank's input is made from a seed and the rank, so each rank computes every
rank's input and the expected result itself."""

import copy

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import torch_util  # noqa: E402
from torch_util import dname  # noqa: E402

# Sparse tensors built here are checked (torch warns when the choice is left implicit).
pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks")

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
TOL = {torch.float16: 2e-3, torch.bfloat16: 2e-2, torch.float32: 1e-6, torch.float64: 1e-12}


def pairs(seed, r, shape, k, sparse_dim=1, dtype=torch.float32):
    """Rank r's sparse tensor for `seed`: k random (with repeats) positions in the
    sparse dimensions, values multiples of 1/2 in [-4, 4] (exact in every float type);
    not coalesced."""
    g = torch.Generator().manual_seed(seed * 1000 + r)
    indices = torch.stack([torch.randint(0, shape[d], (k,), generator=g)
                           for d in range(sparse_dim)]) if k else \
        torch.zeros((sparse_dim, 0), dtype=torch.int64)
    values = torch.randint(-8, 9, (k,) + tuple(shape[sparse_dim:]), generator=g) / 2
    return torch.sparse_coo_tensor(indices, values.to(dtype), shape, check_invariants=True)


def expected(tensors, op):
    """(dense sum or average in float64, sorted union of the coalesced indices)."""
    dense = sum(t.to(torch.float64).to_dense() for t in tensors)
    if op == "average":
        dense = dense / len(tensors)
    union = torch.cat([t.coalesce().indices() for t in tensors], dim=1)
    sparse_dim = tensors[0].sparse_dim()
    union = torch.unique(union, dim=1) if union.numel() else union.reshape(sparse_dim, 0)
    return dense, union


def check(got, tensors, op, like):
    dense, union = expected(tensors, op)
    assert got.layout == torch.sparse_coo
    assert got.is_coalesced()
    assert got.dtype == like.dtype and got.shape == like.shape and got.device == like.device
    assert got.sparse_dim() == like.sparse_dim()
    assert torch.equal(got.indices(), union), (got.indices(), union)
    tol = TOL[like.dtype]
    torch.testing.assert_close(got.to(torch.float64).to_dense(), dense, rtol=tol, atol=tol)


def op_of(hvd, op):
    return hvd.Sum if op == "sum" else hvd.Average


def every_rank(size, seed, shape, k, **kw):
    return [pairs(seed, r, shape, k(r) if callable(k) else k, **kw) for r in range(size)]


# ------------------------------------------------------------------ the collective


@pytest.mark.parametrize("dtype", FLOATS, ids=dname)
@pytest.mark.parametrize("shape", [(13,), (11, 3)], ids=["1d", "2d"])
@pytest.mark.parametrize("op", ["sum", "average"])
def test_sparse_allreduce(hvd, world, op, shape, dtype):
    rank, size = world
    seed = 10 + len(shape) * 10 + FLOATS.index(dtype)
    tensors = every_rank(size, seed, shape, lambda r: 3 + 2 * r, dtype=dtype)
    got = hvd.sparse_allreduce(tensors[rank], name="sar.%s.%d.%s" % (op, len(shape), dtype),
                               op=op_of(hvd, op))
    check(got, tensors, op, tensors[rank])


@pytest.mark.parametrize("shape,sparse_dim", [((4, 5, 3), 2), ((3, 4, 2), 3)],
                         ids=["sparse2_dense1", "sparse3"])
def test_sparse_dims_above_one(hvd, world, shape, sparse_dim):
    """The sparse dimensions are flattened into one row index and restored."""
    rank, size = world
    tensors = every_rank(size, 40 + sparse_dim, shape, 6, sparse_dim=sparse_dim)
    got = hvd.sparse_allreduce(tensors[rank], name="sdims.%d" % sparse_dim, op=hvd.Sum)
    check(got, tensors, "sum", tensors[rank])


def test_no_pairs_on_one_rank(hvd, world):
    rank, size = world
    tensors = every_rank(size, 50, (9, 2), lambda r: 0 if r == 0 else 4)
    got = hvd.sparse_allreduce(tensors[rank], name="kzero", op=hvd.Average)
    check(got, tensors, "average", tensors[rank])


def test_no_pairs_anywhere(hvd, world):
    rank, size = world
    tensors = every_rank(size, 51, (9, 2), 0)
    got = hvd.sparse_allreduce(tensors[rank], name="kzero.all")
    assert got.shape == (9, 2) and got._nnz() == 0 and got.is_coalesced()
    check(got, tensors, "average", tensors[rank])


def test_every_rank_the_same_index(hvd, world):
    rank, size = world
    t = torch.sparse_coo_tensor([[4]], [[rank + 1.0, -1.0]], (6, 2))
    got = hvd.sparse_allreduce(t, name="same.index", op=hvd.Sum)
    assert got.indices().tolist() == [[4]]
    assert got.values().tolist() == [[size * (size + 1) / 2, -float(size)]]


def test_repeated_indices_within_a_rank(hvd, world):
    rank, size = world
    t = torch.sparse_coo_tensor([[2, 2, 2, 5]], [1.0, 2.0, rank, 0.5], (7,))
    assert not t.is_coalesced()
    got = hvd.sparse_allreduce(t, name="dups", op=hvd.Sum)
    assert got.indices().tolist() == [[2, 5]]
    assert got.values().tolist() == [3.0 * size + size * (size - 1) / 2, 0.5 * size]


def test_first_and_last_row(hvd, world):
    rank, size = world
    n = 1000
    t = torch.sparse_coo_tensor([[0, n - 1]], [[1.0], [rank + 1.0]], (n, 1))
    got = hvd.sparse_allreduce(t, name="ends", op=hvd.Sum)
    assert got.indices().tolist() == [[0, n - 1]]
    assert got.values().tolist() == [[float(size)], [size * (size + 1) / 2]]


def test_rows_that_cancel_stay_in_the_result(hvd, world):
    """A row every rank had whose values add up to zero is still a row of the
    result (with zeros): a single process would have had it."""
    rank, size = world
    torch_util.needs_two(world)
    sign = 1.0 if rank == 0 else (-1.0 if rank == 1 else 0.0)
    t = torch.sparse_coo_tensor([[3, 6]], [[sign * 1.5, 2.0], [1.0, 1.0]], (8, 2))
    got = hvd.sparse_allreduce(t, name="cancel", op=hvd.Sum)
    assert got.indices().tolist() == [[3, 6]]
    assert got.values().tolist() == [[0.0, 2.0 * size], [float(size), float(size)]]


def test_allreduce_routes_sparse_tensors(hvd, world):
    rank, size = world
    tensors = every_rank(size, 60, (10, 4), 5)
    got = hvd.allreduce(tensors[rank], name="route")  # Average by default
    check(got, tensors, "average", tensors[rank])
    got = hvd.synchronize(hvd.allreduce_async(tensors[rank], name="route.async", op=hvd.Sum))
    check(got, tensors, "sum", tensors[rank])
    assert torch.equal(tensors[rank].to_dense(), pairs(60, rank, (10, 4), 5).to_dense())


def test_allreduce_of_a_sparse_tensor_with_compression(hvd, world):
    rank, size = world
    tensors = every_rank(size, 61, (10, 4), 5)
    got = hvd.allreduce(tensors[rank], name="route.fp16", op=hvd.Sum,
                        compression=hvd.Compression.fp16)
    check(got, tensors, "sum", tensors[rank])


def test_sparse_allreduce_async_and_synchronize(hvd, world):
    rank, size = world
    tensors = every_rank(size, 70, (12, 2), lambda r: r + 1)
    other = every_rank(size, 71, (5,), 3)
    h1 = hvd.sparse_allreduce_async(tensors[rank], name="async.a", op=hvd.Sum)
    h2 = hvd.sparse_allreduce_async(other[rank])  # unnamed: numbered in order
    got2 = hvd.synchronize(h2)
    got1 = hvd.synchronize(h1)
    assert hvd.poll(h1) and hvd.synchronize(h1) is got1
    check(got1, tensors, "sum", tensors[rank])
    check(got2, other, "average", other[rank])


def test_gradient_of_an_embedding(hvd, world):
    """What nn.Embedding(sparse=True) produces: every looked-up row, repeats
    uncoalesced."""
    rank, size = world
    torch.manual_seed(5)
    emb = nn.Embedding(10, 3, sparse=True)
    idx = torch.tensor([rank, rank, 9])
    (emb(idx) * (rank + 1)).sum().backward()
    got = hvd.sparse_allreduce(emb.weight.grad, name="emb.grad", op=hvd.Sum)
    want = torch.zeros(10, 3)
    for r in range(size):
        want[r] += 2 * (r + 1)
        want[9] += r + 1
    assert got.indices().tolist() == [sorted(set(range(size)) | {9})]
    torch.testing.assert_close(got.to_dense(), want)


def test_index_type_follows_the_row_count():
    from braid.torch import sparse

    small = torch.sparse_coo_tensor(torch.zeros((2, 0), dtype=torch.int64), [], (1000, 1000))
    large = torch.sparse_coo_tensor(torch.zeros((2, 0), dtype=torch.int64), [], (70000, 70000))
    assert sparse.Layout(small).index_dtype == torch.int32
    assert sparse.Layout(large).index_dtype == torch.int64


# ------------------------------------------------------------------ errors


def test_local_argument_errors(hvd, world):
    rank, size = world
    t = pairs(80, rank, (6, 2), 2)
    with pytest.raises(ValueError, match="op=Sum or op=Average"):
        hvd.sparse_allreduce(t, name="bad.op", op=hvd.Max)
    with pytest.raises(ValueError, match="op=Sum or op=Average"):
        hvd.allreduce(t, name="bad.op2", op=hvd.Min)
    with pytest.raises(ValueError, match="prescale_factor and postscale_factor"):
        hvd.allreduce(t, name="bad.scale", prescale_factor=2.0)
    with pytest.raises(ValueError, match="prescale_factor and postscale_factor"):
        hvd.allreduce_async(t, name="bad.scale2", postscale_factor=0.5)
    with pytest.raises(ValueError, match="in-place and grouped"):
        hvd.allreduce_(t, name="bad.inplace")
    with pytest.raises(ValueError, match="in-place and grouped"):
        hvd.grouped_allreduce_async([t], name="bad.group")
    with pytest.raises(ValueError, match="expected a torch.sparse_coo tensor"):
        hvd.sparse_allreduce(torch.ones(3), name="bad.dense")
    with pytest.raises(ValueError, match="float16, bfloat16, float32 or float64"):
        hvd.sparse_allreduce(torch.sparse_coo_tensor([[1]], [3], (4,)), name="bad.int")


def test_out_of_range_index_fails_on_every_rank(hvd, world):
    """A sparse tensor built without torch's invariant checks can carry an index
    outside its shape; the engine reports it on every rank, naming the rank."""
    rank, size = world
    bad = size - 1
    row = 8 if rank == bad else 1
    t = torch.sparse_coo_tensor(torch.tensor([[row]]), torch.ones(1, 2), (8, 2),
                                check_invariants=False)
    with pytest.raises(hvd.BraidInvalidArgument, match="rank %d: .*index 8" % bad):
        hvd.sparse_allreduce(t, name="range")
    ok = hvd.sparse_allreduce(torch.sparse_coo_tensor([[1]], [[1.0, 1.0]], (8, 2)),
                              name="range.after", op=hvd.Sum)
    assert ok.values().tolist() == [[float(size)] * 2]


def test_mismatched_shape_fails_on_every_rank_then_works(hvd, world):
    rank, size = world
    torch_util.needs_two(world)
    rows = 10 if rank == 0 else 12
    t = torch.sparse_coo_tensor([[1]], [[1.0, 2.0, 3.0]], (rows, 3))
    with pytest.raises(hvd.BraidMismatchError, match="Mismatched dense shapes"):
        hvd.sparse_allreduce(t, name="mismatch")
    t = torch.sparse_coo_tensor([[1]], [[1.0, 2.0, 3.0]], (10, 3))
    got = hvd.sparse_allreduce(t, name="mismatch.after", op=hvd.Sum)
    assert got.values().tolist() == [[size, 2.0 * size, 3.0 * size]]


def test_mismatched_dtype_fails_on_every_rank(hvd, world):
    rank, size = world
    torch_util.needs_two(world)
    dtype = torch.float64 if rank == 0 else torch.float32
    t = torch.sparse_coo_tensor([[1]], torch.ones(1, 2, dtype=dtype), (4, 2))
    with pytest.raises(hvd.BraidMismatchError):
        hvd.sparse_allreduce(t, name="mismatch.dtype")


# ------------------------------------------------------------------ DistributedOptimizer


class EmbedModel(nn.Module):
    """A bag of embeddings (sparse gradients) into a small dense head."""

    def __init__(self, rows=16, dim=4):
        super().__init__()
        self.emb = nn.Embedding(rows, dim, sparse=True)
        self.head = nn.Linear(dim, 1)

    def forward(self, idx):
        return self.head(self.emb(idx).sum(1)).squeeze(1)


def batch(step, size, per_rank, rows=16, bag=3):
    """The concatenated batch of every rank for `step` (rank r has rows
    [r * per_rank, (r + 1) * per_rank))."""
    g = torch.Generator().manual_seed(500 + step)
    idx = torch.randint(0, rows, (size * per_rank, bag), generator=g)
    y = torch.randn(size * per_rank, generator=g, dtype=torch.float64)
    return idx, y


def mse(model, idx, y):
    """The mean over the samples: averaging the ranks' gradients of their means gives
    the gradient of the mean over the concatenated batch (equal parts)."""
    return ((model(idx) - y) ** 2).mean()


def make_optimizers(hvd, model, tag, **kwargs):
    sparse = torch.optim.SparseAdam([model.emb.weight], lr=0.05)
    dense = torch.optim.Adam(model.head.parameters(), lr=0.05)
    if hvd is None:
        return [sparse, dense]
    return [hvd.DistributedOptimizer(sparse, named_parameters=[(tag + ".emb", model.emb.weight)],
                                     **kwargs),
            hvd.DistributedOptimizer(dense, named_parameters=[
                (tag + ".head." + n, p) for n, p in model.head.named_parameters()], **kwargs)]


def step(model, opts, idx, y):
    for opt in opts:
        opt.zero_grad()
    mse(model, idx, y).backward()
    for opt in opts:
        opt.step()


@pytest.mark.parametrize("as_dense", [False, True], ids=["sparse", "sparse_as_dense"])
def test_sparse_adam_matches_one_process(hvd, world, as_dense):
    rank, size = world
    per_rank = 4
    torch.manual_seed(11)
    model = EmbedModel().double()
    reference = copy.deepcopy(model)
    opts = make_optimizers(hvd, model, "adam.%s" % as_dense, sparse_as_dense=as_dense)
    ref_opts = make_optimizers(None, reference, None)
    for s in range(4):
        idx, y = batch(s, size, per_rank)
        mine = slice(rank * per_rank, (rank + 1) * per_rank)
        step(model, opts, idx[mine], y[mine])
        assert model.emb.weight.grad.is_sparse
        step(reference, ref_opts, idx, y)
        for (n, p), q in zip(model.named_parameters(), reference.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12, msg="%s at step %d" % (n, s))


def samples(step, r):
    """(rows, coefficients) of rank r at `step` for test_sparse_adam_rows_that_cancel:
    at step 1, row 2 gets +1 on rank 0 and -1 on rank 1 (and nothing elsewhere)."""
    if step == 0:
        return [2, r + 3], [r + 1.0, 1.0]
    if step == 1:
        return [2 if r < 2 else 6], [1.0 if r == 0 else (-1.0 if r == 1 else 1.0)]
    return [7], [1.0]


@pytest.mark.parametrize("as_dense", [False, True], ids=["sparse", "sparse_as_dense"])
def test_sparse_adam_rows_that_cancel(hvd, world, as_dense):
    """SparseAdam steps the rows its gradient has; a row whose gradients cancel
    across ranks is in a single process's gradient (with zeros), so it must be in
    the distributed one too: its moments decay and it keeps moving."""
    rank, size = world
    torch_util.needs_two(world)
    torch.manual_seed(12)
    emb = nn.Embedding(8, 2, sparse=True).double()
    ref = copy.deepcopy(emb)
    opt = hvd.DistributedOptimizer(torch.optim.SparseAdam(emb.parameters(), lr=0.1),
                                   named_parameters=[("cancel.%s" % as_dense, emb.weight)],
                                   sparse_as_dense=as_dense)
    ref_opt = torch.optim.SparseAdam(ref.parameters(), lr=0.1)
    for s in range(3):
        rows, coef = samples(s, rank)
        opt.zero_grad()
        (emb(torch.tensor(rows)).sum(1) * torch.tensor(coef, dtype=torch.float64)).mean() \
            .backward()
        before = emb.weight.detach().clone()
        opt.synchronize()
        if s == 1:
            grad = emb.weight.grad.coalesce()
            assert 2 in grad.indices()[0].tolist()
            assert grad.to_dense()[2].abs().sum() == 0
        with opt.skip_synchronize():
            opt.step()
        if s == 1:
            assert not torch.equal(emb.weight[2], before[2]), "row 2 was not stepped"
        every = [samples(s, r) for r in range(size)]
        all_rows = torch.tensor([i for rr, _ in every for i in rr])
        all_coef = torch.tensor([c for _, cc in every for c in cc], dtype=torch.float64)
        ref_opt.zero_grad()
        (ref(all_rows).sum(1) * all_coef).mean().backward()
        ref_opt.step()
        torch.testing.assert_close(emb.weight, ref.weight, rtol=1e-12, atol=1e-12,
                                   msg="step %d" % s)


@pytest.mark.parametrize("as_dense", [False, True], ids=["sparse", "sparse_as_dense"])
def test_rank_without_embedding_gradient(hvd, world, as_dense):
    """At step 1 rank 0 does not use the embedding (.grad is None there): it takes
    part with no rows; the others' rows are averaged over every rank."""
    rank, size = world
    torch_util.needs_two(world)
    torch.manual_seed(13)
    model = EmbedModel().double()
    reference = copy.deepcopy(model)
    lr = 0.1
    params = [("noemb.%s.%s" % (as_dense, n), p) for n, p in model.named_parameters()]
    opt = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=lr),
                                   named_parameters=params, sparse_as_dense=as_dense)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=lr)

    def loss(m, r, s):
        idx = torch.tensor([[r, r + 1, 9]])
        if s == 1 and r == 0:
            return m.head.weight.sum() + m.head.bias.sum()
        return mse(m, idx, torch.tensor([0.5 * r], dtype=torch.float64))

    for s in range(3):
        opt.zero_grad(set_to_none=True)
        loss(model, rank, s).backward()
        opt.step()
        ref_opt.zero_grad()
        (sum(loss(reference, r, s) for r in range(size)) / size).backward()
        ref_opt.step()
        assert model.emb.weight.grad.is_sparse
        for (n, p), q in zip(model.named_parameters(), reference.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12, msg="%s at step %d" % (n, s))


@pytest.mark.parametrize("as_dense", [False, True], ids=["sparse", "sparse_as_dense"])
def test_sparse_and_dense_gradients_in_one_group(hvd, world, as_dense):
    """groups=1 puts the embedding and the head in one unit: the sparse gradient
    goes its own way, the dense ones together."""
    rank, size = world
    per_rank = 3
    torch.manual_seed(14)
    model = EmbedModel().double()
    reference = copy.deepcopy(model)
    params = [("group.%s.%s" % (as_dense, n), p) for n, p in model.named_parameters()]
    opt = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1),
                                   named_parameters=params, groups=1, sparse_as_dense=as_dense)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    for s in range(3):
        idx, y = batch(100 + s, size, per_rank)
        mine = slice(rank * per_rank, (rank + 1) * per_rank)
        step(model, [opt], idx[mine], y[mine])
        step(reference, [ref_opt], idx, y)
        assert model.emb.weight.grad.is_sparse
        for (n, p), q in zip(model.named_parameters(), reference.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12, msg="%s at step %d" % (n, s))


def test_sparse_gradients_with_op_max_raise(hvd, world):
    torch.manual_seed(15)
    emb = nn.Embedding(4, 2, sparse=True)
    opt = hvd.DistributedOptimizer(torch.optim.SGD(emb.parameters(), lr=0.1),
                                   named_parameters=[("max.emb", emb.weight)], op=hvd.Max)
    with pytest.raises(ValueError, match="op=Average or op=Sum"):
        emb(torch.tensor([1])).sum().backward()
        opt.step()
