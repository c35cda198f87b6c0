"""The restart algorithms for Keras 3, over braid.ops: LocalSGD, PRSGDMomentum and
SlowMo (BMUF) as Keras callbacks.

Each is a keras.callbacks.Callback that counts a local step after every training
batch and restarts when one is due. In model.fit, list it after
BroadcastGlobalVariablesCallback and leave the optimizer undistributed (a plain
Keras optimizer: the steps between restarts are local)::

    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), ...)
    model.fit(x, y, callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0),
                               hvd.PRSGDMomentum(period=8)])

In a custom loop, pass the model and optimizer and call step() after every
optimizer.apply (SlowMo records its starting point when it is made, so make it
after the ranks' weights are equal).

A restart packs the trainable variables of one dtype (and the optimizer state it
averages) into one host buffer, runs braid's C++ restart op on it (one allreduce,
which also checks that every rank is at the same step) and assigns the result
back. The update rules are braid.torch's; see docs/local_sgd.md,
docs/pr_sgd_momentum.md and docs/slowmo.md.
"""

import itertools

import keras
import numpy as np

import braid as _braid
from braid import ops as _ops

_counter = itertools.count()


def _state_variables(optimizer, selection):
    """The optimizer variables a restart averages: none, Keras SGD's momentum buffers,
    or every floating-point state variable (not the step counter or learning rate)."""
    if selection is None:
        return []
    if selection == "momentum":
        return list(getattr(optimizer, "momentums", []) or [])
    skip = {id(getattr(optimizer, "_iterations", None)), id(getattr(optimizer, "_learning_rate",
                                                                    None))}
    return [v for v in optimizer.variables
            if id(v) not in skip and "float" in str(v.dtype)]


class _Packed:
    """Variables of one dtype as one flat host buffer."""

    def __init__(self, variables, dtype):
        self.variables = variables
        self.sizes = [int(np.prod(v.shape)) for v in variables]
        self.buffer = np.zeros(sum(self.sizes), dtype)

    def gather(self):
        offset = 0
        for v, n in zip(self.variables, self.sizes):
            self.buffer[offset:offset + n] = np.asarray(v.numpy()).reshape(-1)
            offset += n
        return self.buffer

    def scatter(self):
        offset = 0
        for v, n in zip(self.variables, self.sizes):
            v.assign(self.buffer[offset:offset + n].reshape(v.shape))
            offset += n


class _RestartCallback(keras.callbacks.Callback):
    _kind = None

    def __init__(self, model=None, optimizer=None, name=None):
        super().__init__()
        if name is None:
            name = "%s.%d" % (self._kind, next(_counter))
        self._base = "keras.%s" % name
        self._optimizer = optimizer
        self._groups = None  # [(dtype, params _Packed)]
        self._ops = []
        self._packed_state = {}  # (dtype, selection) -> _Packed, once the state exists
        if model is not None:
            self.set_model(model)
            self._setup()

    def _get_optimizer(self):
        optimizer = self._optimizer or getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ValueError("%s: no optimizer; pass optimizer= or compile the model"
                             % type(self).__name__)
        return optimizer

    def _setup(self):
        if self._groups is not None:
            return
        by_dtype = {}
        for v in self.model.trainable_variables:
            by_dtype.setdefault(np.dtype(v.dtype), []).append(v)
        if not by_dtype:
            raise ValueError("%s: the model has no trainable variables" % type(self).__name__)
        self._groups = [(dtype, _Packed(vs, dtype)) for dtype, vs in by_dtype.items()]
        self._ops = [self._make_op("%s.%s" % (self._base, dtype.name))
                     for dtype, _ in self._groups]

    def _state(self, dtype, selection):
        """The optimizer state of `dtype` a restart handles, packed (None: none yet)."""
        packed = self._packed_state.get((dtype, selection))
        if packed is None:
            variables = [v for v in _state_variables(self._get_optimizer(), selection)
                         if np.dtype(v.dtype) == dtype]
            if not variables:
                return None  # e.g. an optimizer not built yet: looked up again next time
            packed = self._packed_state[(dtype, selection)] = _Packed(variables, dtype)
        return packed

    @property
    def local_steps(self):
        """Local steps counted so far."""
        return self._ops[0].step_count if self._ops else 0

    def on_train_begin(self, logs=None):
        self._setup()

    def on_train_batch_end(self, batch, logs=None):
        self.step()


class LocalSGD(_RestartCallback):
    """Local SGD: every `period` local steps the trainable variables are averaged
    over the ranks (one allreduce). average_state: the optimizer state averaged with
    them: None, "momentum" (Keras SGD's momentum buffers: PR-SGD-Momentum) or "all"
    (every floating-point optimizer variable but the step counter and learning rate,
    e.g. Adam's moments)."""

    _kind = "local_sgd"

    def __init__(self, period, average_state=None, model=None, optimizer=None, name=None):
        if average_state not in (None, "momentum", "all"):
            raise ValueError("%s: average_state must be None, 'momentum' or 'all' (got %r)"
                             % (type(self).__name__, average_state))
        self.period = int(period)
        self.average_state = average_state
        super().__init__(model, optimizer, name)

    def _make_op(self, name):
        return _ops.LocalSGD(self.period, name=name)

    def step(self):
        """Counts a local step (after the optimizer's); restarts when due (collective).
        True if it did."""
        self._setup()
        restarted = False
        for (dtype, params), op in zip(self._groups, self._ops):
            if op.restart_due:
                state = self._register(dtype, params, op)
                restarted = op.step()
                params.scatter()
                if state is not None:
                    state.scatter()
            else:
                op.step()
        return restarted

    def restart(self):
        """Averages now (collective), without counting a step."""
        self._setup()
        for (dtype, params), op in zip(self._groups, self._ops):
            state = self._register(dtype, params, op)
            op.restart()
            params.scatter()
            if state is not None:
                state.scatter()

    def _register(self, dtype, params, op):
        state = self._state(dtype, self.average_state)
        op.set_buffers([params.gather()], [state.gather()] if state is not None else [])
        return state


class PRSGDMomentum(LocalSGD):
    """PR-SGD-Momentum (Yu, Jin, Yang, ICML 2019): local momentum SGD whose restart
    every `period` steps averages the weights and the momentum buffers. Needs
    keras.optimizers.SGD with momentum > 0 (nesterov=True is Option II)."""

    def __init__(self, period, model=None, optimizer=None, name=None):
        super().__init__(period, average_state="momentum", model=model, optimizer=optimizer,
                         name=name)

    def _setup(self):
        if self._groups is None:
            optimizer = self._get_optimizer()
            if not isinstance(optimizer, keras.optimizers.SGD) or not optimizer.momentum:
                raise ValueError(
                    "PRSGDMomentum averages the momentum of keras.optimizers.SGD(momentum=beta) "
                    "and got %s%s: use LocalSGD(period, average_state='all') for another "
                    "optimizer" % (type(optimizer).__name__, " with momentum 0" if isinstance(
                        optimizer, keras.optimizers.SGD) else ""))
        super()._setup()


class SlowMo(_RestartCallback):
    """SlowMo (Wang, Tantia, Ballas, Rabbat, ICLR 2020): the base optimizer steps
    locally; every `period` steps, with x_old where the period started,

        xbar = avg(x); d = (x_old - xbar) / lr; s = slow_momentum * s + d
        x_old = x_old - slow_lr * lr * s;  x = x_old on every rank

    (nesterov: BMUF's Nesterov block momentum). lr is the optimizer's learning rate
    at the restart. base_state: "keep" the base optimizer's state, "reset" it to zero
    (the step counter is kept) or "average" it in the same allreduce."""

    _kind = "slowmo"

    def __init__(self, period, slow_lr=1.0, slow_momentum=0.5, nesterov=False,
                 base_state="keep", model=None, optimizer=None, name=None):
        if base_state not in ("keep", "reset", "average"):
            raise ValueError("SlowMo: base_state must be 'keep', 'reset' or 'average' (got %r)"
                             % (base_state,))
        self.period = int(period)
        self.slow_lr, self.slow_momentum = float(slow_lr), float(slow_momentum)
        self.nesterov = bool(nesterov)
        self.base_state = base_state
        self._slow = []
        super().__init__(model, optimizer, name)

    def _make_op(self, name):
        return _ops.SlowMo(self.period, self.slow_lr, self.slow_momentum, self.nesterov,
                           name=name)

    def _setup(self):
        if self._groups is not None:
            return
        super()._setup()
        # x_old = the weights now: the first period starts where the ranks start.
        for (dtype, params), op in zip(self._groups, self._ops):
            x_old, s = np.zeros_like(params.buffer), np.zeros_like(params.buffer)
            self._slow.append((x_old, s))
            op.set_buffers([params.gather()], x_old, s)
            op.init_slow_params()

    def _lr(self):
        return float(np.asarray(self._get_optimizer().learning_rate))

    def step(self):
        """Counts a local step; at a restart (collective) runs the outer update."""
        self._setup()
        due = [op.restart_due for op in self._ops]
        lr = self._lr() if any(due) else 0.0
        restarted = False
        for i, op in enumerate(self._ops):
            if due[i]:
                state = self._register(i)
                restarted = op.step(lr)
                self._finish(i, state)
            else:
                op.step(lr)
        return restarted

    def restart(self):
        """Runs the outer update now (collective), without counting a step."""
        self._setup()
        lr = self._lr()
        for i, op in enumerate(self._ops):
            state = self._register(i)
            op.restart(lr)
            self._finish(i, state)

    def _register(self, i):
        dtype, params = self._groups[i]
        selection = "all" if self.base_state != "keep" else None
        state = self._state(dtype, selection)
        averaged = [state.gather()] if state is not None and self.base_state == "average" else []
        x_old, s = self._slow[i]
        self._ops[i].set_buffers([params.gather()], x_old, s, averaged)
        return state

    def _finish(self, i, state):
        self._groups[i][1].scatter()
        if state is None:
            return
        if self.base_state == "reset":
            state.buffer[:] = 0
        state.scatter()


def BMUF(period, block_momentum=None, block_lr=1.0, nesterov=True, base_state="keep",
         model=None, optimizer=None, name=None):
    """BMUF (Chen and Huo, 2016) as SlowMo: block momentum eta (default 1 - 1/N),
    block learning rate zeta; nesterov=True is BMUF's Nesterov block momentum."""
    if block_momentum is None:
        block_momentum = 1.0 - 1.0 / _braid.size()
    return SlowMo(period, slow_lr=block_lr, slow_momentum=block_momentum, nesterov=nesterov,
                  base_state=base_state, model=model, optimizer=optimizer, name=name)
