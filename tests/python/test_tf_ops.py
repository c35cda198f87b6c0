"""braid.tensorflow's collectives, eagerly and inside tf.function: every dtype and
reduce op braid has, scale factors, fp16 compression, grouped allreduce, allgather
with a different first dimension per rank, broadcast from every root,
tf.IndexedSlices, broadcast_variables, objects, errors, and join (last).

Expected values are computed here with numpy from every rank's input, which each
rank can rebuild from the rank number. Run under MPI, e.g.
braidrun -np 3 python -m pytest -q tests/python/test_tf_ops.py"""

import re

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import braid  # noqa: E402

MODES = ["eager", "graph"]
REDUCIBLE = ["uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
             "float64", "bool"]
OPS = ["Sum", "Average", "Min", "Max", "Product"]


def run(mode, fn, *args):
    """fn(*args) now, or inside a tf.function built for this call."""
    if mode == "eager":
        return fn(*args)
    return tf.function(fn)(*args)


def values(dtype, rank, n, op):
    """Rank `rank`'s input as float64 numpy (small, so no dtype overflows)."""
    i = np.arange(n)
    if dtype == "bool":
        return ((i + rank) % 3 == 0).astype(np.float64)
    if op == "Product":
        return ((i + rank) % 2 + 1).astype(np.float64)  # 1 or 2
    v = (i % 7) + 3 * rank + 1
    if dtype.startswith("int") or dtype.startswith("float") or dtype == "bfloat16":
        v = v * np.where(i % 2 == 0, 1, -1)
    if dtype.startswith("float") or dtype == "bfloat16":
        v = v / 4.0
    return v.astype(np.float64)


def expected(dtype, op, stacked, size):
    if dtype == "bool":
        b = stacked != 0
        return {"Sum": b.any(0), "Max": b.any(0), "Min": b.all(0), "Product": b.all(0)}[op]
    out = {"Sum": stacked.sum(0), "Min": stacked.min(0), "Max": stacked.max(0),
           "Product": stacked.prod(0), "Average": stacked.sum(0) / size}[op]
    if op == "Average" and not (dtype.startswith("float") or dtype == "bfloat16"):
        out = np.trunc(out)
    return out


def as_f64(t):
    return tf.cast(t, tf.float64).numpy() if t.dtype != tf.bool else t.numpy()


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", REDUCIBLE)
@pytest.mark.parametrize("mode", MODES)
def test_allreduce_every_dtype_and_op(tfhvd, tf_world, mode, dtype, op):
    rank, size = tf_world
    if dtype == "bool" and op == "Average":
        pytest.skip("bool has no average (tested in test_bool_average_is_refused)")
    n = 1001
    x = tf.cast(tf.constant(values(dtype, rank, n, op)), dtype)
    out = run(mode, lambda t: tfhvd.allreduce(t, op=getattr(tfhvd, op),
                                              name="tf.ar.%s.%s.%s" % (mode, dtype, op)), x)
    assert out.dtype == x.dtype and out.shape == x.shape
    want = expected(dtype, op, np.stack([values(dtype, r, n, op) for r in range(size)]), size)
    tol = {"float16": 2e-3, "bfloat16": 1e-2}.get(dtype, 1e-12)
    np.testing.assert_allclose(as_f64(out), want, rtol=tol, atol=tol)
    np.testing.assert_array_equal(x.numpy(), tf.cast(values(dtype, rank, n, op), dtype).numpy())


def test_bool_average_is_refused(tfhvd):
    with pytest.raises(braid.BraidError, match="bool"):
        tfhvd.allreduce(tf.constant([True, False]), op=tfhvd.Average, name="tf.bool.avg")


@pytest.mark.parametrize("mode", MODES)
def test_large_tensor_on_the_ring_path(tfhvd, tf_world, mode):
    rank, size = tf_world
    n = (4 << 20) // 4 + 101  # past the host backend's ring threshold
    x = tf.range(n, dtype=tf.float32) * float(rank + 1)
    out = run(mode, lambda t: tfhvd.allreduce(t, op=tfhvd.Sum, name="tf.ring." + mode), x)
    want = np.arange(n, dtype=np.float64) * (size * (size + 1) / 2)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("op", ["Sum", "Average"])
@pytest.mark.parametrize("mode", MODES)
def test_prescale_and_postscale(tfhvd, tf_world, mode, op):
    rank, size = tf_world
    x = tf.constant(np.arange(10, dtype=np.float64) + rank)
    out = run(mode, lambda t: tfhvd.allreduce(t, op=getattr(tfhvd, op), prescale_factor=0.5,
                                              postscale_factor=3.0,
                                              name="tf.scale.%s.%s" % (mode, op)), x)
    total = sum(0.5 * (np.arange(10) + r) for r in range(size)) * 3.0
    np.testing.assert_allclose(out.numpy(), total / (size if op == "Average" else 1),
                               rtol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_fp16_compression_sends_half_precision(tfhvd, tf_world, mode):
    rank, size = tf_world
    # 1 + 2^-12 is not a float16: the wire rounds it, and the result shows that.
    x = tf.constant(np.full(8, 1.0 + 2.0 ** -12 * (rank + 1), np.float32))
    out = run(mode, lambda t: tfhvd.allreduce(t, op=tfhvd.Sum, name="tf.fp16." + mode,
                                              compression=tfhvd.Compression.fp16), x)
    assert out.dtype == tf.float32
    halves = [np.float16(1.0 + 2.0 ** -12 * (r + 1)) for r in range(size)]
    want = np.float16(sum(np.float32(h) for h in halves))
    np.testing.assert_array_equal(out.numpy(), np.full(8, np.float32(want)))
    exact = sum(1.0 + 2.0 ** -12 * (r + 1) for r in range(size))
    assert abs(float(out[0]) - exact) > 1e-5  # it did go through float16


@pytest.mark.parametrize("mode", MODES)
def test_grouped_allreduce(tfhvd, tf_world, mode):
    rank, size = tf_world
    tensors = [tf.fill([3, 4], float(rank)), tf.constant([rank + 1] * 5, tf.int32),
               tf.constant(np.arange(7, dtype=np.float64) * (rank + 1))]
    out = run(mode, lambda *ts: tfhvd.grouped_allreduce(list(ts), op=tfhvd.Sum,
                                                        name="tf.group." + mode), *tensors)
    s = size * (size + 1) // 2
    np.testing.assert_allclose(out[0].numpy(), np.full((3, 4), s - size))
    np.testing.assert_array_equal(out[1].numpy(), np.full(5, s))
    np.testing.assert_allclose(out[2].numpy(), np.arange(7) * s)
    assert [o.dtype for o in out] == [t.dtype for t in tensors]


MOVED = REDUCIBLE + ["uint16", "uint32", "uint64"]


def rows(dtype, rank):
    """Rank `rank`'s allgather input: rank + 1 rows of 3."""
    v = np.arange((rank + 1) * 3).reshape(rank + 1, 3) + 10 * rank
    return tf.constant(v % 2 == 0) if dtype == "bool" else tf.cast(tf.constant(v), dtype)


@pytest.mark.parametrize("dtype", MOVED)
@pytest.mark.parametrize("mode", MODES)
def test_allgather_a_different_first_dimension_per_rank(tfhvd, tf_world, mode, dtype):
    rank, size = tf_world
    out = run(mode, lambda t: tfhvd.allgather(t, name="tf.ag.%s.%s" % (mode, dtype)),
              rows(dtype, rank))
    want = np.concatenate([rows(dtype, r).numpy() for r in range(size)])
    assert out.dtype == tf.as_dtype(dtype)
    np.testing.assert_array_equal(out.numpy(), want)


def test_allgather_in_graph_has_an_unknown_first_dimension(tfhvd):
    fn = tf.function(lambda t: tfhvd.allgather(t, name="tf.ag.shape"))
    graph = fn.get_concrete_function(tf.TensorSpec([2, 5], tf.float32))
    assert graph.structured_outputs.shape.as_list() == [None, 5]


def test_allgather_of_a_scalar_is_refused(tfhvd):
    with pytest.raises(ValueError, match="at least one dimension"):
        tfhvd.allgather(tf.constant(1.0))


@pytest.mark.parametrize("dtype", ["uint8", "int32", "int64", "float16", "bfloat16", "float32",
                                   "float64", "bool", "uint16", "uint64"])
@pytest.mark.parametrize("mode", MODES)
def test_broadcast_from_every_root(tfhvd, tf_world, mode, dtype):
    rank, size = tf_world
    for root in range(size):
        x = rows(dtype, rank)[:1]  # one row: the same shape everywhere
        out = run(mode, lambda t: tfhvd.broadcast(t, root, name="tf.bc.%s.%s.%d"
                                                  % (mode, dtype, root)), x)
        np.testing.assert_array_equal(out.numpy(), rows(dtype, root)[:1].numpy())
        np.testing.assert_array_equal(x.numpy(), rows(dtype, rank)[:1].numpy())  # untouched


@pytest.mark.parametrize("op", ["Sum", "Average"])
def test_indexed_slices_are_gathered(tfhvd, tf_world, op):
    rank, size = tf_world
    slices = tf.IndexedSlices(tf.fill([2, 3], float(rank + 1)), tf.constant([rank, rank + 1]),
                              dense_shape=tf.constant([size + 1, 3]))
    out = tfhvd.allreduce(slices, op=getattr(tfhvd, op), name="tf.slices." + op)
    assert isinstance(out, tf.IndexedSlices)
    dense = tf.convert_to_tensor(out).numpy()
    want = np.zeros((size + 1, 3))
    for r in range(size):
        want[r:r + 2] += r + 1
    np.testing.assert_allclose(dense, want / (size if op == "Average" else 1))


@pytest.mark.parametrize("mode", MODES)
def test_broadcast_variables_makes_ranks_equal(tfhvd, tf_world, mode):
    rank, size = tf_world
    variables = [tf.Variable(tf.fill([4, 2], float(rank))),
                 tf.Variable(tf.constant([rank] * 3, tf.int64))]
    root = size - 1
    run(mode, lambda: tfhvd.broadcast_variables(variables, root_rank=root))
    np.testing.assert_array_equal(variables[0].numpy(), np.full((4, 2), float(root)))
    np.testing.assert_array_equal(variables[1].numpy(), np.full(3, root))


def test_objects(tfhvd, tf_world):
    rank, size = tf_world
    every = tfhvd.allgather_object({"rank": rank, "pad": "x" * rank}, name="tf.objs")
    assert every == [{"rank": r, "pad": "x" * r} for r in range(size)]
    assert tfhvd.broadcast_object(("from", rank), root_rank=size - 1) == ("from", size - 1)


def test_named_ops_in_a_function_run_again_every_call(tfhvd, tf_world):
    rank, size = tf_world
    fn = tf.function(lambda t: tfhvd.allreduce(t, op=tfhvd.Sum, name="tf.again"))
    for step in range(3):
        out = fn(tf.constant([float(rank + step)]))
        assert float(out[0]) == sum(r + step for r in range(size))


def test_queries_and_query_ops(tfhvd, tf_world):
    rank, size = tf_world
    assert int(tfhvd.rank_op()) == rank and int(tfhvd.size_op()) == size
    assert 0 <= tfhvd.local_rank() < tfhvd.local_size() <= size


# ---------------------------------------------------------------- errors


def same_error_everywhere(tfhvd, tag, call):
    """`call` fails on every rank with the same braid error text; braid works after."""
    try:
        call()
        error = None
    except Exception as e:  # noqa: BLE001 - checked below
        error = e
    # Inside a tf.function the text is TensorFlow's: "{{function_node NAME}}
    # BraidMismatchError: ...", then a traceback; NAME differs between processes.
    text = str(error)
    found = re.search(r"Braid\w*Error: [^\n]*", text) if "Braid" in text else None
    line = found.group(0) if found else text
    lines = tfhvd.allgather_object(line, name="tf.mm.msg." + tag)
    after = tfhvd.allreduce(tf.ones(2), op=tfhvd.Sum, name="tf.mm.after." + tag)
    assert error is not None, "no error raised"
    assert "Mismatched" in line, text[:2000]
    assert all(ln == lines[0] for ln in lines), lines
    np.testing.assert_array_equal(after.numpy(), np.full(2, float(tfhvd.size())))
    return error


@pytest.mark.parametrize("mode", MODES)
def test_mismatched_shapes_fail_alike_on_every_rank(tfhvd, tf_world, mode):
    rank, size = tf_world
    if size < 2:
        pytest.skip("needs two ranks")
    error = same_error_everywhere(
        tfhvd, "shape." + mode,
        lambda: run(mode, lambda t: tfhvd.allreduce(t, name="tf.mm.shape." + mode),
                    tf.ones([rank + 1])))
    if mode == "eager":
        assert isinstance(error, braid.BraidMismatchError)
    else:  # TensorFlow's wrapping of a py_function's exception
        assert isinstance(error, tf.errors.OpError)
        assert "BraidMismatchError" in str(error)


def test_mismatched_allgather_trailing_shape(tfhvd, tf_world):
    rank, size = tf_world
    if size < 2:
        pytest.skip("needs two ranks")
    same_error_everywhere(tfhvd, "ag",
                          lambda: tfhvd.allgather(tf.ones([2, rank + 1]), name="tf.mm.ag"))


def test_unsupported_dtypes_are_refused_before_any_communication(tfhvd):
    with pytest.raises(TypeError, match="uint16 cannot be reduced"):
        tfhvd.allreduce(tf.constant([1], tf.uint16))
    with pytest.raises(TypeError, match="complex64 is not supported"):
        tfhvd.allgather(tf.constant([1j], tf.complex64))
    with pytest.raises(TypeError, match="string"):
        tfhvd.broadcast(tf.constant(["a"]), 0)


def test_bad_arguments(tfhvd, tf_world):
    rank, size = tf_world
    with pytest.raises(ValueError, match="root_rank"):
        tfhvd.broadcast(tf.ones(2), size)
    with pytest.raises(NotImplementedError, match="Adasum"):
        tfhvd.allreduce(tf.ones(2), op=tfhvd.Adasum)
    with pytest.raises(NotImplementedError, match="global process set"):
        tfhvd.allreduce(tf.ones(2), process_set=object())
    with pytest.raises(NotImplementedError, match="IndexedSlices"):
        tfhvd.allreduce(tf.IndexedSlices(tf.ones([1, 2]), tf.constant([0])), op=tfhvd.Max)


# ---------------------------------------------------------------- join (runs last)


@pytest.mark.parametrize("mode", MODES)
def test_join_tf(tfhvd, tf_world, mode):
    """Rank 0 joins at once; the others allreduce (a joined rank counts as zeros) and
    then join; join() returns the same rank everywhere."""
    rank, size = tf_world
    x = tf.fill([4], float(rank + 1))
    total = None
    if rank == 0:
        last = run(mode, tfhvd.join)
    else:
        total = tfhvd.allreduce(x, op=tfhvd.Sum, name="tf.join.sum." + mode)
        last = run(mode, tfhvd.join)
    lasts = tfhvd.allgather_object(int(last), name="tf.join.last." + mode)
    assert last.dtype == tf.int32
    assert all(v == lasts[0] for v in lasts), lasts
    assert int(last) in (list(range(1, size)) if size > 1 else [0])
    if rank != 0:
        want = float(sum(r + 1 for r in range(1, size)))
        np.testing.assert_array_equal(total.numpy(), np.full(4, want))
