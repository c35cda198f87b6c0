"""Eager TensorFlow tensors into braid's engine and back, and the bridge that runs the
same code inside a tf.function.

Tensors cross through DLPack: the engine reads an input where TensorFlow keeps it
and writes the result into fresh memory that becomes the output tensor without a
copy (a 64-byte aligned numpy buffer, as TensorFlow's kernels require; for bfloat16,
which numpy cannot export, a tf.raw_ops.DeepCopy of the input); the input is never
changed. An allgather's result is the engine's own (page-aligned) buffer, wrapped
without a copy. Tensors on a GPU are copied to the
host and the result back to the GPU (this binding's data plane is host memory).

Inside a graph (tf.function, Keras' train step) an operation runs as tf.py_function
around the eager code, with declared output dtypes and static shapes. py_function
is stateful, so TensorFlow's automatic control dependencies run the collectives of
one function in program order: unnamed ones are numbered at run time in the same
order on every rank, as in eager mode.
"""

import math

import numpy as np
import tensorflow as tf

import braid as _braid

_C = _braid._C

try:  # a tape could record now (tf.custom_gradient's eager bookkeeping costs ~0.1 ms)
    from tensorflow.python.eager.record import could_possibly_record as _could_record
except ImportError:  # pragma: no cover - older TensorFlow: always record
    def _could_record():
        return True

_to_dlpack = tf.experimental.dlpack.to_dlpack
_from_dlpack = tf.experimental.dlpack.from_dlpack

# The dtypes the engine reduces (bool: logical; Sum and Max are OR, Min and Product AND).
REDUCIBLE = (tf.uint8, tf.int8, tf.int16, tf.int32, tf.int64, tf.float16, tf.bfloat16,
             tf.float32, tf.float64, tf.bool)
# Moved as the signed integer of their width: allgather and broadcast copy bytes.
_AS_SIGNED = {tf.uint16: tf.int16, tf.uint32: tf.int32, tf.uint64: tf.int64}
_HOST = "/device:CPU:0"
# The same as DataType enums: a set lookup instead of DType.__eq__ per entry.
_REDUCIBLE_ENUMS = frozenset(d.as_datatype_enum for d in REDUCIBLE)
_MOVABLE_ENUMS = _REDUCIBLE_ENUMS | {d.as_datatype_enum for d in _AS_SIGNED}
_BFLOAT16 = tf.bfloat16.as_datatype_enum


def check_reducible(dtype, what):
    if dtype.as_datatype_enum not in _REDUCIBLE_ENUMS:
        raise TypeError("%s: dtype %s cannot be reduced; braid reduces %s" % (
            what, dtype.name, ", ".join(d.name for d in REDUCIBLE)))


def check_movable(dtype, what):
    if dtype.as_datatype_enum not in _MOVABLE_ENUMS:
        raise TypeError("%s: dtype %s is not supported; braid moves %s" % (
            what, dtype.name, ", ".join(d.name for d in REDUCIBLE + tuple(_AS_SIGNED))))


def _on_host(tensor):
    """(the tensor in host memory, the device to put the result on or None)."""
    device = tensor.device
    if not device or device.endswith("CPU:0"):
        return tensor, None
    with tf.device(_HOST):
        return tf.identity(tensor), device


def _back(tensor, device):
    if device is None:
        return tensor
    with tf.device(device):
        return tf.identity(tensor)


def _fresh_copy(tensor):
    """A host tensor with `tensor`'s value in memory nothing else refers to."""
    with tf.device(_HOST):
        return tf.raw_ops.DeepCopy(x=tensor)


_ALIGN = 64  # TensorFlow checks EIGEN_MAX_ALIGN_BYTES alignment of every buffer


def _aligned_empty(shape, dtype):
    """An uninitialised numpy array whose data start on a 64-byte boundary."""
    itemsize = np.dtype(dtype).itemsize
    count = math.prod(shape)
    raw = np.empty(count * itemsize + _ALIGN, np.uint8)
    start = -raw.ctypes.data % _ALIGN
    return raw[start:start + count * itemsize].view(dtype).reshape(shape)


def _copy_of_input(host):
    """(the array the engine works on in place, the result it becomes): a copy of
    `host` in a 64-byte aligned numpy array, or for bfloat16, which numpy cannot
    export, a DeepCopy."""
    if host.dtype.as_datatype_enum == _BFLOAT16:
        copy = _fresh_copy(host)
        return _to_dlpack(copy), copy
    out = _aligned_empty(tuple(host.shape), host.dtype.as_numpy_dtype)
    np.copyto(out, host.numpy())
    return out, out


def _as_tensor(out):
    return _from_dlpack(out.__dlpack__()) if isinstance(out, np.ndarray) else out


class Pending:
    """Collectives submitted to the engine; finish() waits and returns their outputs."""

    __slots__ = ("_parts", "_finish")

    def __init__(self, parts, finish):
        self._parts = parts
        self._finish = finish

    def finish(self):
        results = [p.result() for p in self._parts]
        return self._finish(results)


def submit_allreduce(tensors, names, op, prescale, postscale):
    outputs, devices, parts = [], [], []
    for tensor, name in zip(tensors, names):
        host, device = _on_host(tensor)
        if host.dtype.as_datatype_enum == _BFLOAT16:  # in place, in a copy of the input
            source, out = _copy_of_input(host)
            written = None
        else:  # from the input into a new aligned array
            written = out = _aligned_empty(tuple(host.shape), host.dtype.as_numpy_dtype)
            source = _to_dlpack(host)
        parts.append(_C.allreduce_async(name, source, written, op, prescale, postscale))
        outputs.append(out)
        devices.append(device)
    return Pending(parts, lambda _: [_back(_as_tensor(o), d) for o, d in zip(outputs, devices)])


def _signed(tensor):
    signed = _AS_SIGNED.get(tensor.dtype)
    return (tensor, None) if signed is None else (tf.bitcast(tensor, signed), tensor.dtype)


def _unsigned(tensor, dtype):
    return tensor if dtype is None else tf.bitcast(tensor, dtype)


def submit_allgather(tensors, names):
    parts, restore = [], []
    for tensor, name in zip(tensors, names):
        host, device = _on_host(tensor)
        host, dtype = _signed(host)
        parts.append(_C.allgather_async(name, _to_dlpack(host)))
        restore.append((device, dtype))

    def finish(results):
        # The engine's buffer, kept alive by the tensor that wraps it.
        return [_back(_unsigned(_from_dlpack(r.__dlpack__()), dtype), device)
                for r, (device, dtype) in zip(results, restore)]

    return Pending(parts, finish)


def submit_broadcast(tensors, names, root_rank):
    outputs, restore, parts = [], [], []
    for tensor, name in zip(tensors, names):
        host, device = _on_host(tensor)
        host, dtype = _signed(host)
        written, out = _copy_of_input(host)
        parts.append(_C.broadcast_async(name, written, int(root_rank)))
        outputs.append(out)
        restore.append((device, dtype))
    return Pending(parts, lambda _: [_back(_unsigned(_as_tensor(o), t), d)
                                     for o, (d, t) in zip(outputs, restore)])


def needs_gradient(tensors):
    """False when nothing could differentiate through an operation on `tensors`: not a
    floating dtype, or eager with no gradient tape recording."""
    if not all(t.dtype.is_floating for t in tensors):
        return False
    return not tf.executing_eagerly() or _could_record()


def run(eager_fn, inputs, out_dtypes, out_shapes, label):
    """eager_fn(list of eager tensors) -> list of tensors, now when executing eagerly,
    else as a py_function node of the graph being built (with the given output dtypes
    and static shapes). An empty list of inputs is allowed."""
    if tf.executing_eagerly():
        return eager_fn(list(inputs))
    outputs = tf.py_function(func=lambda *xs: eager_fn(list(xs)), inp=list(inputs),
                             Tout=list(out_dtypes), name=label)
    for out, shape in zip(outputs, out_shapes):
        out.set_shape(shape)
    return list(outputs)
