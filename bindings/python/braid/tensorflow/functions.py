"""Variables and Python objects from one rank to all: broadcast_variables,
broadcast_object and allgather_object."""

import tensorflow as tf

from braid import _objects
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


def broadcast_object(obj, root_rank=0, session=None, name=None, process_set=global_process_set):
    """Returns rank `root_rank`'s `obj` (anything pickle can store) on every rank.
    Eager only; `session` is accepted for Horovod's signature."""
    del session
    check_process_set(process_set)
    check_root(root_rank)
    return _objects.broadcast_object(obj, root_rank, name)


def allgather_object(obj, session=None, name=None, process_set=global_process_set):
    """Returns the list of every rank's `obj`, in rank order. Eager only."""
    del session
    check_process_set(process_set)
    return _objects.allgather_object(obj, name)
