"""Horovod's Keras callbacks for Keras 3: start every rank from the same weights,
average the epoch's metrics over the ranks, and warm the learning rate up."""

import warnings

import keras
import numpy as np

import braid as _braid
from braid import _horovod

from ..functions import broadcast_variables


def _optimizer_variables(optimizer):
    return list(optimizer.variables) if optimizer is not None and optimizer.built else []


class BroadcastGlobalVariablesCallback(keras.callbacks.Callback):
    """Makes every rank's model weights (trainable or not) and optimizer state equal
    to rank `root_rank`'s when training starts. model.fit builds the optimizer before
    that; an optimizer built only by the first step is broadcast after that step."""

    def __init__(self, root_rank, device=""):
        super().__init__()
        del device
        self.root_rank = root_rank
        self.broadcast_done = False
        self._optimizer_pending = False

    def on_train_begin(self, logs=None):
        if self.broadcast_done:
            return
        optimizer = getattr(self.model, "optimizer", None)
        broadcast_variables(list(self.model.variables) + _optimizer_variables(optimizer),
                            root_rank=self.root_rank)
        self._optimizer_pending = optimizer is not None and not optimizer.built
        self.broadcast_done = True

    def on_train_batch_end(self, batch, logs=None):
        if self._optimizer_pending:
            broadcast_variables(_optimizer_variables(self.model.optimizer),
                                root_rank=self.root_rank)
            self._optimizer_pending = False


class MetricAverageCallback(keras.callbacks.Callback):
    """At the end of every epoch, replaces each number in the logs (loss, metrics,
    validation metrics) by its average over the ranks, so that callbacks after this
    one (checkpoints, ReduceLROnPlateau, early stopping) decide alike everywhere.
    Put it before them in the list."""

    def __init__(self, device=""):
        super().__init__()
        del device

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        keys = sorted(k for k, v in logs.items() if np.ndim(v) == 0 and _is_number(v))
        # Every rank must average the same metrics: the names travel first.
        every = _braid.allgather(np.array([len(keys)], np.int64), name="keras.metrics.count")
        if len(set(every.tolist())) != 1:
            raise ValueError("MetricAverageCallback: the ranks log different numbers of metrics "
                             "(%s)" % every.tolist())
        if not keys:
            return
        values = np.array([float(logs[k]) for k in keys], np.float64)
        averaged = _braid.allreduce(values, name="keras.metrics.epoch", op=_braid.Average)
        for k, v in zip(keys, averaged.tolist()):
            logs[k] = v


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


class LearningRateWarmupCallback(keras.callbacks.Callback):
    """Raises the learning rate from initial_lr / size to initial_lr over the first
    `warmup_epochs` epochs, a little every batch (Goyal et al., 2017):

        lr(e) = initial_lr / size * (e * (size - 1) / warmup_epochs + 1)

    with e the fractional epoch at the end of the batch. `initial_lr` is the scaled
    rate (one rank's rate times the number of ranks). With momentum_correction the
    optimizer's momentum buffers (Keras SGD's `momentums`) are scaled by new_lr /
    old_lr when the rate changes, which is Horovod's correction for Keras' velocity
    form. steps_per_epoch defaults to what model.fit reports."""

    def __init__(self, initial_lr, warmup_epochs=5, momentum_correction=True,
                 steps_per_epoch=None, verbose=0):
        super().__init__()
        if warmup_epochs <= 0:
            raise ValueError("LearningRateWarmupCallback: warmup_epochs must be positive")
        self.initial_lr = float(initial_lr)
        self.warmup_epochs = warmup_epochs
        self.momentum_correction = momentum_correction
        self.steps_per_epoch = steps_per_epoch
        self.verbose = verbose
        self.current_epoch = 0

    def _steps(self):
        steps = self.steps_per_epoch or (self.params or {}).get("steps")
        if not steps:
            raise ValueError("LearningRateWarmupCallback: pass steps_per_epoch (model.fit does "
                             "not know the number of steps per epoch here)")
        return steps

    def learning_rate_at(self, epoch):
        """The warm-up rate at fractional epoch `epoch`."""
        n = _horovod.size()
        return self.initial_lr / n * (epoch * (n - 1) / self.warmup_epochs + 1)

    def on_epoch_begin(self, epoch, logs=None):
        self.current_epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.current_epoch >= self.warmup_epochs:
            return
        epoch = self.current_epoch + float(batch + 1) / self._steps()
        self._set(min(self.learning_rate_at(epoch), self.initial_lr))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(np.asarray(self.model.optimizer.learning_rate))
        if epoch == self.warmup_epochs - 1 and self.verbose and _horovod.rank() == 0:
            print("\nEpoch %d: finished gradual learning rate warmup to %g."
                  % (epoch + 1, self.initial_lr))

    def _set(self, lr):
        optimizer = self.model.optimizer
        old = float(np.asarray(optimizer.learning_rate))
        optimizer.learning_rate = lr
        if not self.momentum_correction or old == 0 or old == lr:
            return
        # Before the first step there are no buffers yet, and nothing to correct.
        momentums = getattr(optimizer, "momentums", None)
        if momentums:
            for m in momentums:
                m.assign(m * (lr / old))
        elif (optimizer.built and getattr(optimizer, "momentum", 0)
              and not getattr(self, "_warned", False)):
            warnings.warn("LearningRateWarmupCallback: %s has no momentum buffers to correct"
                          % type(optimizer).__name__)
            self._warned = True
