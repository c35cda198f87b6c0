"""DistributedOptimizer for Keras 3: any keras.optimizers.Optimizer whose
apply_gradients (and apply) first reduces the gradients over the ranks."""

from braid._horovod import Average, global_process_set

from ..compression import Compression
from ..gradient_tape import GradientReducer


class _DistributedOptimizer:
    """Mixed in before the wrapped optimizer's class: apply() reduces, then applies.
    Keras' apply_gradients and its train step both go through apply()."""

    _braid_reducer = None

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if self._braid_reducer is not None and grads:
            grads = self._braid_reducer(grads)
        return super().apply(grads, trainable_variables)


def DistributedOptimizer(optimizer, name=None, device_dense="", device_sparse="",
                         compression=Compression.none, sparse_as_dense=False,
                         gradient_predivide_factor=1.0, op=Average, backward_passes_per_step=1,
                         average_aggregated_gradients=False, num_groups=0, groups=None,
                         process_set=global_process_set, scale_local_gradients=True):
    """Returns an optimizer of `optimizer`'s class and configuration that averages
    (op) the gradients over the ranks before applying them: the dense ones in one
    fused group per step, tf.IndexedSlices gathered (or made dense with
    `sparse_as_dense`). A new optimizer is made from optimizer.get_config(), as in
    Horovod: state the given one already has is not carried over. Works in
    model.fit (whose train step is a tf.function) and in custom loops.

    Keras' gradient_accumulation_steps accumulates the averaged gradients; Horovod's
    backward_passes_per_step (local accumulation before the allreduce) is not
    supported. device_dense, device_sparse, num_groups, groups and
    scale_local_gradients are accepted for Horovod's signature."""
    del device_dense, device_sparse, num_groups, groups, scale_local_gradients
    del average_aggregated_gradients
    if backward_passes_per_step != 1:
        raise NotImplementedError(
            "braid.tensorflow.keras.DistributedOptimizer: backward_passes_per_step=%d is not "
            "supported; give the Keras optimizer gradient_accumulation_steps instead"
            % backward_passes_per_step)
    if isinstance(optimizer, _DistributedOptimizer):
        raise ValueError("DistributedOptimizer: the optimizer is already distributed")
    reducer = GradientReducer(compression, sparse_as_dense, op, gradient_predivide_factor,
                              process_set, what="DistributedOptimizer")
    base = type(optimizer)
    cls = type(base.__name__, (_DistributedOptimizer, base), {"__module__": base.__module__})
    config = optimizer.get_config()
    if name is not None:
        config["name"] = name
    wrapped = cls.from_config(config)
    wrapped._braid_reducer = reducer
    return wrapped
