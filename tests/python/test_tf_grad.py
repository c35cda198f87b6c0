"""Gradients through braid.tensorflow's collectives (Horovod's definitions, written
out here from every rank's upstream gradient), eagerly and inside tf.function, and
DistributedGradientTape against one process training on the concatenated batch.

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/test_tf_grad.py"""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

MODES = ["eager", "graph"]


def run(mode, fn, *args):
    return fn(*args) if mode == "eager" else tf.function(fn)(*args)


def upstream(rank, shape):
    """Rank `rank`'s upstream gradient dL/dy: L = sum(c_r * y)."""
    n = int(np.prod(shape))
    return (np.arange(n).reshape(shape) * 0.25 + rank + 1).astype(np.float64)


def grad_of(mode, collective, x, c):
    """dL/dx for L = sum(c * collective(x)), the tape run eagerly or in a tf.function."""
    x = tf.Variable(x)

    def grad():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.constant(c) * collective(x))
        return tape.gradient(loss, x)

    return run(mode, grad)


@pytest.mark.parametrize("op", ["Sum", "Average"])
@pytest.mark.parametrize("mode", MODES)
def test_allreduce_gradient_is_the_allreduce_of_the_upstream_gradient(tfhvd, tf_world, mode,
                                                                      op):
    rank, size = tf_world
    x0 = np.arange(6, dtype=np.float64).reshape(2, 3) + rank
    c = upstream(rank, (2, 3))
    g = grad_of(mode, lambda v: tfhvd.allreduce(
        v, op=getattr(tfhvd, op), prescale_factor=2.0, postscale_factor=0.5,
        name="tf.grad.ar.%s.%s" % (mode, op)), x0, c)
    total = sum(upstream(r, (2, 3)) for r in range(size)) * 2.0 * 0.5
    np.testing.assert_allclose(g.numpy(), total / (size if op == "Average" else 1), rtol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_allgather_gradient_is_this_ranks_rows_of_the_averaged_gradient(tfhvd, tf_world, mode):
    rank, size = tf_world
    x0 = np.full((rank + 1, 2), float(rank))
    total_rows = size * (size + 1) // 2
    c = upstream(rank, (total_rows, 2))
    g = grad_of(mode, lambda v: tfhvd.allgather(v, name="tf.grad.ag." + mode), x0, c)
    averaged = sum(upstream(r, (total_rows, 2)) for r in range(size)) / size
    offset = rank * (rank + 1) // 2
    np.testing.assert_allclose(g.numpy(), averaged[offset:offset + rank + 1], rtol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_broadcast_gradient_goes_to_the_root_only(tfhvd, tf_world, mode):
    rank, size = tf_world
    root = size - 1
    c = upstream(rank, (3,))
    g = grad_of(mode, lambda v: tfhvd.broadcast(v, root, name="tf.grad.bc." + mode),
                np.full(3, float(rank)), c)
    averaged = sum(upstream(r, (3,)) for r in range(size)) / size
    np.testing.assert_allclose(g.numpy(), averaged if rank == root else np.zeros(3), rtol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_grouped_allreduce_gradients(tfhvd, tf_world, mode):
    rank, size = tf_world
    a, b = tf.Variable(np.ones(2) * rank), tf.Variable(np.ones(3) * rank)

    def grads():
        with tf.GradientTape() as tape:
            ra, rb = tfhvd.grouped_allreduce([a, b], op=tfhvd.Sum, name="tf.grad.group." + mode)
            loss = tf.reduce_sum(ra * (rank + 1.0)) + tf.reduce_sum(rb * 2.0 * (rank + 1))
        return tape.gradient(loss, [a, b])

    ga, gb = run(mode, grads)
    s = size * (size + 1) / 2
    np.testing.assert_allclose(ga.numpy(), np.full(2, s))
    np.testing.assert_allclose(gb.numpy(), np.full(3, 2 * s))


# ---------------------------------------------------------------- DistributedGradientTape

BATCH, IN, HIDDEN = 5, 4, 6
LR = 0.1


def dataset(size):
    g = np.random.default_rng(11)
    x = g.standard_normal((BATCH * size, IN))
    return x, np.sin(x.sum(1, keepdims=True))


def initial_weights():
    g = np.random.default_rng(5)
    return [g.standard_normal((IN, HIDDEN)) * 0.5, np.zeros(HIDDEN),
            g.standard_normal((HIDDEN, 1)) * 0.5, np.zeros(1)]


def loss_fn(weights, x, y):
    w1, b1, w2, b2 = weights
    out = tf.matmul(tf.tanh(tf.matmul(x, w1) + b1), w2) + b2
    return tf.reduce_mean((out - y) ** 2)


def sgd_steps(weights, x, y, steps, distributed, hvd, mode, **tape_args):
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(weights, x, y)
        if distributed:
            tape = hvd.DistributedGradientTape(tape, **tape_args)
        grads = tape.gradient(loss, weights)
        for w, g in zip(weights, grads):
            w.assign_sub(LR * g)

    fn = step if mode == "eager" else tf.function(step)
    for _ in range(steps):
        fn()
    return [w.numpy() for w in weights]


@pytest.mark.parametrize("mode", MODES)
def test_distributed_gradient_tape_equals_one_process_on_the_concatenated_batch(
        tfhvd, tf_world, mode):
    rank, size = tf_world
    x, y = dataset(size)
    mine = slice(rank * BATCH, (rank + 1) * BATCH)
    distributed = sgd_steps([tf.Variable(w) for w in initial_weights()], x[mine], y[mine], 4,
                            True, tfhvd, mode)
    single = sgd_steps([tf.Variable(w) for w in initial_weights()], x, y, 4, False, tfhvd,
                       mode)
    for d, s in zip(distributed, single):
        np.testing.assert_allclose(d, s, rtol=1e-10, atol=1e-12)


def test_gradient_predivide_factor_and_fp16_compression(tfhvd, tf_world):
    rank, size = tf_world
    x, y = dataset(size)
    mine = slice(rank * BATCH, (rank + 1) * BATCH)
    predivided = sgd_steps([tf.Variable(w) for w in initial_weights()], x[mine], y[mine], 2,
                           True, tfhvd, "eager", gradient_predivide_factor=float(size))
    single = sgd_steps([tf.Variable(w) for w in initial_weights()], x, y, 2, False, tfhvd,
                       "eager")
    for d, s in zip(predivided, single):
        np.testing.assert_allclose(d, s, rtol=1e-10, atol=1e-12)
    half = sgd_steps([tf.Variable(w, dtype=tf.float32) for w in initial_weights()],
                     x[mine].astype(np.float32), y[mine].astype(np.float32), 2, True, tfhvd,
                     "eager", compression=tfhvd.Compression.fp16)
    for d, s in zip(half, single):
        assert d.dtype == np.float32
        np.testing.assert_allclose(d, s, rtol=0, atol=2e-3)


def test_tape_with_an_embedding_gradient_sums_its_rows(tfhvd, tf_world):
    """tf.gather's gradient is a tf.IndexedSlices: gathered over the ranks, it is the
    averaged dense gradient (also with sparse_as_dense)."""
    rank, size = tf_world
    table = tf.Variable(np.zeros((size + 2, 3)))
    for sparse_as_dense in (False, True):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(table, [rank, rank + 2]) * float(rank + 1))
        tape = tfhvd.DistributedGradientTape(tape, sparse_as_dense=sparse_as_dense)
        (g,) = tape.gradient(loss, [table])
        assert isinstance(g, tf.Tensor if sparse_as_dense else tf.IndexedSlices)
        want = np.zeros((size + 2, 3))
        for r in range(size):
            want[[r, r + 2]] += (r + 1) / size
        np.testing.assert_allclose(tf.convert_to_tensor(g).numpy(), want, rtol=1e-12)


def test_unconnected_sources_stay_none(tfhvd):
    a, unused = tf.Variable(1.0), tf.Variable(2.0)
    with tf.GradientTape() as tape:
        loss = a * 3.0
    ga, gu = tfhvd.DistributedGradientTape(tape).gradient(loss, [a, unused])
    assert gu is None and float(ga) == 3.0
