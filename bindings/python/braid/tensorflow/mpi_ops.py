"""Horovod's TensorFlow collectives on braid's engine, eager and inside tf.function.

Every operation is keyed by a name; unnamed operations are numbered in the order they
run, which must then be the same on every rank (as in Horovod). The collectives are
differentiable as Horovod defines them:

- allreduce: the gradient is the same allreduce (op, scale factors) of the upstream
  gradient;
- allgather: this rank's gradient is its rows of the upstream gradient averaged over
  the ranks;
- broadcast: the root's gradient is the upstream gradient averaged over the ranks,
  the other ranks' is zero.
"""

import tensorflow as tf

import braid as _braid
from braid import _horovod
from braid._horovod import (Adasum, Average, Max, Min, Product, Sum,  # noqa: F401
                            global_process_set)

from . import _engine
from .compression import Compression

_check_process_set = _horovod.check_process_set
_resolve_op = _horovod.resolve_op


def _tensor(value):
    if isinstance(value, (tf.IndexedSlices, tf.Tensor)):
        return value
    return tf.convert_to_tensor(value)


def _member_names(name, count):
    """The user-level names of a group's members (None: numbered when they run)."""
    return None if name is None else ["%s.%d" % (name, i) for i in range(count)]


def _collective(kind, submit, tensors, names, shapes):
    """Runs submit(eager tensors, engine names) -> Pending, eagerly or as one graph
    node; `names`: the members' user-level names, or None to number them as they run."""

    def eager(xs):
        members = names if names is not None else [None] * len(xs)
        return submit(xs, [_horovod.op_name(kind, n) for n in members]).finish()

    return _engine.run(eager, tensors, [t.dtype for t in tensors], shapes, "braid_" + kind)


# --- allreduce ----------------------------------------------------------------------


def _allreduce_raw(tensors, names, op, prescale, postscale):
    """The reduced tensors (not differentiable); `names`: None for numbered ones."""
    for t in tensors:
        _engine.check_reducible(t.dtype, "allreduce")
    return _collective(
        "allreduce", lambda xs, ns: _engine.submit_allreduce(xs, ns, op, prescale, postscale),
        tensors, names, [t.shape for t in tensors])


def _allreduce_with_gradient(tensors, names, op, prescale, postscale):
    @tf.custom_gradient
    def reduce(*xs):
        ys = _allreduce_raw(list(xs), names, op, prescale, postscale)

        def grad(*dys):
            dys = [tf.zeros_like(x) if d is None else tf.convert_to_tensor(d)
                   for x, d in zip(xs, dys)]
            return _allreduce_raw(dys, None, op, prescale, postscale)

        return ys, grad

    return list(reduce(*tensors))


def _allreduce_differentiable(tensors, names, op, prescale, postscale):
    """Floating-point tensors with a gradient (when a tape could record), the others
    (integers, bools: no gradient) as a group of their own."""
    floating = [i for i, t in enumerate(tensors) if t.dtype.is_floating]
    others = [i for i, t in enumerate(tensors) if not t.dtype.is_floating]
    out = [None] * len(tensors)
    for group in (floating, others):
        if not group:
            continue
        sub = [tensors[i] for i in group]
        sub_names = None if names is None else [names[i] for i in group]
        if _engine.needs_gradient(sub):
            reduced = _allreduce_with_gradient(sub, sub_names, op, prescale, postscale)
        else:
            reduced = _allreduce_raw(sub, sub_names, op, prescale, postscale)
        for i, r in zip(group, reduced):
            out[i] = r
    return out


def _sparse_allreduce(slices, name, op, prescale, postscale):
    """An IndexedSlices gradient (an embedding's, say): its rows and indices gathered
    from every rank; Average divides the values by the number of ranks (Horovod)."""
    if op not in (Sum, Average):
        raise NotImplementedError("allreduce of tf.IndexedSlices supports op Sum or Average")
    suffix = None if name is None else name + ".values"
    values = allgather(slices.values * prescale if prescale != 1.0 else slices.values,
                       name=suffix)
    indices = allgather(slices.indices, name=None if name is None else name + ".indices")
    scale = postscale / (_horovod.size() if op == Average else 1)
    if scale != 1.0:
        values = values * tf.constant(scale, values.dtype)  # not via float32
    return tf.IndexedSlices(values, indices, dense_shape=slices.dense_shape)


def allreduce(tensor, average=None, device_dense="", device_sparse="",
              compression=Compression.none, op=None, prescale_factor=1.0,
              postscale_factor=1.0, name=None, process_set=global_process_set,
              ignore_name_scope=False):
    """Reduces `tensor` over all ranks (default: the average) and returns the result;
    differentiable. A tf.IndexedSlices is gathered instead (op Sum or Average).
    device_dense, device_sparse and ignore_name_scope are accepted for Horovod's
    signature and change nothing."""
    del device_dense, device_sparse, ignore_name_scope
    _check_process_set(process_set)
    op = _resolve_op(op, average)
    tensor = _tensor(tensor)
    if isinstance(tensor, tf.IndexedSlices):
        return _sparse_allreduce(tensor, name, op, prescale_factor, postscale_factor)
    compressed, ctx = compression.compress(tensor)
    names = None if name is None else [name]
    reduced = _allreduce_differentiable([compressed], names, op, prescale_factor,
                                        postscale_factor)[0]
    return compression.decompress(reduced, ctx)


def grouped_allreduce(tensors, average=None, device_dense="", device_sparse="",
                      compression=Compression.none, op=None, prescale_factor=1.0,
                      postscale_factor=1.0, process_set=global_process_set, name=None):
    """Reduces a list of tensors together (one graph node; the engine fuses them);
    returns a list; differentiable. tf.IndexedSlices entries are gathered."""
    del device_dense, device_sparse
    _check_process_set(process_set)
    op = _resolve_op(op, average)
    tensors = [_tensor(t) for t in tensors]
    out = list(tensors)
    dense = []
    for i, t in enumerate(tensors):
        if isinstance(t, tf.IndexedSlices):
            sub = None if name is None else "%s.%d" % (name, i)
            out[i] = _sparse_allreduce(t, sub, op, prescale_factor, postscale_factor)
        else:
            dense.append(i)
    compressed, ctxs = [], []
    for i in dense:
        c, ctx = compression.compress(tensors[i])
        compressed.append(c)
        ctxs.append(ctx)
    names = None if name is None else ["%s.%d" % (name, i) for i in dense]
    reduced = _allreduce_differentiable(compressed, names, op, prescale_factor,
                                        postscale_factor)
    for i, r, ctx in zip(dense, reduced, ctxs):
        out[i] = compression.decompress(r, ctx)
    return out


# --- allgather ----------------------------------------------------------------------


def _check_gatherable(tensor):
    if tensor.shape.rank == 0:
        raise ValueError("allgather needs a tensor with at least one dimension "
                         "(it concatenates along dimension 0)")


def _allgather_raw(tensors, names):
    for t in tensors:
        _engine.check_movable(t.dtype, "allgather")
        _check_gatherable(t)
    shapes = [tf.TensorShape([None]).concatenate(t.shape[1:]) if t.shape.rank is not None
              else tf.TensorShape(None) for t in tensors]
    return _collective("allgather", _engine.submit_allgather, tensors, names, shapes)


def _allgather_grad(x, dy):
    """This rank's rows of the averaged upstream gradient."""
    averaged = _allreduce_raw([tf.convert_to_tensor(dy)], None, Average, 1.0, 1.0)[0]
    first = tf.shape(x, out_type=tf.int64)[:1]
    dims = _allgather_raw([first], None)[0]
    offset = tf.reduce_sum(dims[:_braid.rank()])
    return averaged[offset:offset + first[0]]


def allgather(tensor, name=None, ignore_name_scope=False, process_set=global_process_set):
    """Concatenates every rank's `tensor` along dimension 0, whose size may differ by
    rank; differentiable."""
    del ignore_name_scope
    _check_process_set(process_set)
    tensor = _tensor(tensor)
    names = None if name is None else [name]
    if not _engine.needs_gradient([tensor]):
        return _allgather_raw([tensor], names)[0]

    @tf.custom_gradient
    def gather(x):
        y = _allgather_raw([x], names)[0]
        return y, lambda dy: _allgather_grad(x, dy)

    return gather(tensor)


def grouped_allgather(tensors, name=None, process_set=global_process_set):
    """Allgathers a list of tensors (not differentiable); returns a list."""
    _check_process_set(process_set)
    tensors = [_tensor(t) for t in tensors]
    return _allgather_raw(tensors, _member_names(name, len(tensors))) if tensors else []


# --- broadcast ----------------------------------------------------------------------


def _broadcast_raw(tensors, root_rank, names):
    _horovod.check_root(root_rank)
    for t in tensors:
        _engine.check_movable(t.dtype, "broadcast")
    return _collective("broadcast",
                       lambda xs, ns: _engine.submit_broadcast(xs, ns, root_rank),
                       tensors, names, [t.shape for t in tensors])


def broadcast(tensor, root_rank, name=None, ignore_name_scope=False,
              process_set=global_process_set):
    """Returns rank `root_rank`'s `tensor` on every rank; differentiable."""
    del ignore_name_scope
    _check_process_set(process_set)
    tensor = _tensor(tensor)
    names = None if name is None else [name]
    if not _engine.needs_gradient([tensor]):
        return _broadcast_raw([tensor], root_rank, names)[0]

    @tf.custom_gradient
    def bcast(x):
        y = _broadcast_raw([x], root_rank, names)[0]

        def grad(dy):
            averaged = _allreduce_raw([tf.convert_to_tensor(dy)], None, Average, 1.0, 1.0)[0]
            return averaged if _braid.rank() == root_rank else tf.zeros_like(averaged)

        return y, grad

    return bcast(tensor)


def grouped_broadcast(tensors, root_rank, name=None, process_set=global_process_set):
    """Broadcasts a list of tensors from `root_rank` (not differentiable)."""
    _check_process_set(process_set)
    tensors = [_tensor(t) for t in tensors]
    return (_broadcast_raw(tensors, root_rank, _member_names(name, len(tensors))) if tensors
            else [])


# --- join, barrier, queries as tensors ----------------------------------------------


def join(process_set=global_process_set):
    """Marks this rank as out of data: until every rank has joined, it takes part in
    the other ranks' allreduces with zeros. Blocks until all ranks have joined and
    returns the rank that joined last (an int32 scalar, the same on every rank)."""
    _check_process_set(process_set)

    def eager(_):
        return [tf.constant(int(_braid._C.join_async().result()), tf.int32)]

    return _engine.run(eager, [], [tf.int32], [tf.TensorShape([])], "braid_join")[0]


def barrier(process_set=global_process_set):
    """Blocks until every rank has called barrier()."""
    _check_process_set(process_set)
    _braid._C.barrier()


def _query_op(query):
    def op(process_set=global_process_set):
        _check_process_set(process_set)
        return tf.constant(query(), tf.int32)

    op.__name__ = query.__name__ + "_op"
    op.__doc__ = "This rank's %s as an int32 tensor." % query.__name__
    return op


size_op = _query_op(_horovod.size)
rank_op = _query_op(_horovod.rank)
local_size_op = _query_op(_horovod.local_size)
local_rank_op = _query_op(_horovod.local_rank)
