"""DistributedGradientTape, and the gradient averaging it shares with the Keras
DistributedOptimizer."""

import tensorflow as tf

from braid._horovod import Average, check_process_set, global_process_set, resolve_op

from .compression import Compression
from .mpi_ops import grouped_allreduce


class GradientReducer:
    """Reduces a list of gradients over the ranks: the dense ones in one group (one
    graph node, fused by the engine), tf.IndexedSlices gathered (or made dense with
    `sparse_as_dense`). None entries stay None: every rank must have the same ones.
    With op=Average, gradient_predivide_factor f scales by 1/f before the sum and by
    f/size after it (Horovod's split)."""

    def __init__(self, compression=Compression.none, sparse_as_dense=False, op=Average,
                 gradient_predivide_factor=1.0, process_set=global_process_set,
                 what="DistributedGradientTape"):
        check_process_set(process_set)
        self.op = resolve_op(op, None)  # refuses Adasum with Horovod's message
        if gradient_predivide_factor != 1.0 and self.op != Average:
            raise ValueError("%s: gradient_predivide_factor needs op=Average (got op %r)"
                             % (what, op))
        self.compression = compression
        self.sparse_as_dense = bool(sparse_as_dense)
        self.prescale = 1.0 / gradient_predivide_factor
        self.postscale = float(gradient_predivide_factor)

    def __call__(self, grads):
        grads = list(grads)
        present = [i for i, g in enumerate(grads) if g is not None]
        given = [grads[i] for i in present]
        if self.sparse_as_dense:
            given = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                     for g in given]
        reduced = grouped_allreduce(given, compression=self.compression, op=self.op,
                                    prescale_factor=self.prescale,
                                    postscale_factor=self.postscale)
        for i, r in zip(present, reduced):
            grads[i] = r
        return grads


class _DistributedGradientTape(tf.GradientTape):
    """A tf.GradientTape whose gradient() returns the gradients reduced over the
    ranks. It takes over the recording of the tape it was made from."""

    def __init__(self, tape, reducer):
        super().__init__(persistent=tape._persistent,
                         watch_accessed_variables=tape._watch_accessed_variables)
        self._tape = tape._tape
        self._braid_reducer = reducer

    def gradient(self, target, sources, output_gradients=None,
                 unconnected_gradients=tf.UnconnectedGradients.NONE):
        grads = super().gradient(target, sources, output_gradients, unconnected_gradients)
        flat = tf.nest.flatten(grads, expand_composites=False)
        return tf.nest.pack_sequence_as(grads, self._braid_reducer(flat))


def DistributedGradientTape(gradtape, device_dense="", device_sparse="",
                            compression=Compression.none, sparse_as_dense=False, op=Average,
                            gradient_predivide_factor=1.0, num_groups=0, groups=None,
                            process_set=global_process_set, scale_local_gradients=True):
    """Wraps a tf.GradientTape so that gradient() averages (op) the gradients over the
    ranks, in one fused group. Use it after recording::

        with tf.GradientTape() as tape:
            loss = loss_fn(model(x), y)
        tape = hvd.DistributedGradientTape(tape)
        grads = tape.gradient(loss, model.trainable_variables)

    device_dense, device_sparse, num_groups, groups and scale_local_gradients are
    accepted for Horovod's signature: the dense gradients always go as one group."""
    del device_dense, device_sparse, num_groups, groups, scale_local_gradients
    reducer = GradientReducer(compression, sparse_as_dense, op, gradient_predivide_factor,
                              process_set)
    if isinstance(gradtape, _DistributedGradientTape):
        raise ValueError("DistributedGradientTape: the tape is already distributed")
    return _DistributedGradientTape(gradtape, reducer)
