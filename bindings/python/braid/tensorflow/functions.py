"""Variables and Python objects from one rank to all: broadcast_variables,
broadcast_object and allgather_object."""

import pickle

import numpy as np
import tensorflow as tf

import braid as _braid
from braid._horovod import check_process_set, check_root, global_process_set

from .mpi_ops import grouped_broadcast


def broadcast_variables(variables, root_rank, process_set=global_process_set, inplace=False):
    """Assigns rank `root_rank`'s values to `variables` (a list of tf.Variable) on
    every rank, in one group of broadcasts. Returns None, eagerly and inside a
    tf.function (whose automatic control dependencies run the assignments).
    `inplace` is accepted for Horovod's signature (the assignments are in place)."""
    del inplace
    check_process_set(process_set)
    variables = list(variables)
    if not variables:
        return None
    values = grouped_broadcast([tf.convert_to_tensor(v) for v in variables], root_rank)
    for v, value in zip(variables, values):
        v.assign(value)
    return None


def _dumps(obj):
    return np.frombuffer(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), np.uint8)


def broadcast_object(obj, root_rank=0, session=None, name=None, process_set=global_process_set):
    """Returns rank `root_rank`'s `obj` (anything pickle can store) on every rank.
    Eager only; `session` is accepted for Horovod's signature."""
    del session
    check_process_set(process_set)
    check_root(root_rank)
    # The default name must not depend on `obj`: only the root needs to pass one.
    name = "broadcast" if name is None else name
    root = _braid.rank() == root_rank
    payload = _dumps(obj) if root else np.empty(0, np.uint8)
    length = _braid.broadcast(np.array([payload.size], np.int64), root_rank,
                              name="tf.object.%s.length" % name)
    data = payload.copy() if root else np.empty(int(length[0]), np.uint8)
    if data.size:
        _braid.broadcast_(data, root_rank, name="tf.object.%s.data" % name)
    return obj if root else pickle.loads(data.tobytes())


def allgather_object(obj, session=None, name=None, process_set=global_process_set):
    """Returns the list of every rank's `obj`, in rank order. Eager only."""
    del session
    check_process_set(process_set)
    name = "allgather" if name is None else name
    payload = _dumps(obj)
    lengths = _braid.allgather(np.array([payload.size], np.int64),
                               name="tf.object.%s.lengths" % name)
    data = _braid.allgather(payload, name="tf.object.%s.data" % name).tobytes()
    out, offset = [], 0
    for n in lengths.tolist():
        out.append(pickle.loads(data[offset:offset + n]))
        offset += n
    return out
