"""braid.ops: communication-efficient training algorithms as framework-neutral ops on
flat buffers.

The restart ops take any C-contiguous float32 or float64 array that supports DLPack
or the buffer protocol (torch, numpy, ...) and update it in place:

- ``LocalSGD(period, warmup_steps)``: every ``period`` local steps (after
  ``warmup_steps``) the registered buffers are replaced by their average over the
  ranks. Registering the momentum buffers as well gives PR-SGD-Momentum.
- ``SlowMo(period, slow_lr, slow_momentum, nesterov)``: every ``period`` steps the
  SlowMo outer update; ``BMUF(...)`` is the same op in BMUF's terms.

A restart is one allreduce of every registered buffer together (one per op: an op
takes buffers of one dtype on one device), which also checks that every rank is at
the same step. ``braid.stats()`` counts the allreduces and bytes. See
docs/local_sgd.md, docs/pr_sgd_momentum.md and docs/slowmo.md.

Every rank must create the same ops in the same order (unnamed ops are numbered)
and step them equally often. An op is used by one thread at a time.
"""

import braid as _braid

_C = _braid._C


def __getattr__(name):
    # Read from the extension on first use, so that importing braid does not depend
    # on it: CHECK_SLOTS, the elements a restart adds to the registered buffers to
    # agree on the step.
    if name == "CHECK_SLOTS":
        return _C.restart_check_slots
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def _op_name(kind, name):
    return _braid._name("restart." + kind, None if name is None else "restart.%s" % name)


class _RestartOp:
    __slots__ = ("_op",)

    @property
    def step_count(self):
        """Local steps counted so far (settable, e.g. when restoring a checkpoint)."""
        return self._op.step_count

    @step_count.setter
    def step_count(self, value):
        self._op.step_count = int(value)

    @property
    def restart_due(self):
        """True when the next step() restarts (register the buffers before it)."""
        return self._op.restart_due

    @property
    def period(self):
        return self._op.period

    @property
    def warmup_steps(self):
        return self._op.warmup_steps

    @property
    def name(self):
        """The name of the op's allreduce."""
        return self._op.name

    @property
    def packed_count(self):
        """Elements of one restart's allreduce: the buffers plus CHECK_SLOTS."""
        return self._op.packed_count


class LocalSGD(_RestartOp):
    """Periodic averaging: local SGD, post-local SGD (warmup_steps) and, with the
    momentum buffers registered as `averaged`, PR-SGD-Momentum."""

    __slots__ = ()

    def __init__(self, period, warmup_steps=0, name=None):
        self._op = _C.restart_local_sgd(_op_name("local_sgd", name), int(period),
                                        int(warmup_steps))

    def set_buffers(self, params, averaged=(), stream=0):
        """Registers the arrays a restart averages (kept referenced until replaced).
        `stream`: the cudaStream_t (an int) GPU arrays are produced on."""
        self._op.set_buffers(list(params), list(averaged), stream)

    def step(self):
        """Counts a local step; restarts (collective) when due. True if it did."""
        return self._op.step(0.0)

    def restart(self):
        """Averages the registered buffers now, without counting a step (collective)."""
        self._op.restart(0.0)


class SlowMo(_RestartOp):
    """SlowMo: every `period` steps xbar = avg(x); d = (x_old - xbar) / lr;
    s = slow_momentum * s + d; x_old -= slow_lr * lr * s (nesterov: x_old -= slow_lr *
    lr * (slow_momentum * s + d)); x = x_old, where the next period starts. x_old and
    s are flat arrays the caller owns: s starts at zero, x_old at the parameters
    (init_slow_params)."""

    __slots__ = ()

    def __init__(self, period, slow_lr=1.0, slow_momentum=0.5, nesterov=False, name=None):
        self._op = _C.restart_slowmo(_op_name("slowmo", name), int(period), float(slow_lr),
                                     float(slow_momentum), bool(nesterov))

    def set_buffers(self, params, slow_params, slow_momentum, averaged=(), stream=0):
        """Registers the parameters, the flat slow buffers x_old and s (as many
        elements as the parameters together), and state averaged along."""
        self._op.set_buffers(list(params), list(averaged), stream)
        self._op.set_slow_buffers(slow_params, slow_momentum, stream)

    def init_slow_params(self):
        """x_old = the registered parameters, concatenated."""
        self._op.init_slow_params()

    def step(self, lr):
        """Counts a local step; at a restart (collective) runs the outer update with
        the base learning rate `lr`. True if it restarted."""
        return self._op.step(float(lr))

    def restart(self, lr):
        """Runs the outer update now, without counting a step (collective)."""
        self._op.restart(float(lr))


def BMUF(period, block_momentum, block_lr=1.0, nesterov=True, name=None):
    """BMUF (Chen and Huo, 2016) as a SlowMo op: block momentum eta = slow_momentum,
    block learning rate zeta = slow_lr; nesterov=True is BMUF's Nesterov block
    momentum (each block starts from W + eta * Delta, and its block gradient is
    measured from there)."""
    return SlowMo(period, slow_lr=block_lr, slow_momentum=block_momentum, nesterov=nesterov,
                  name=name)


def device_kernels_available():
    """Whether this build can run the restart ops on GPU buffers."""
    return bool(_C.restart_device_kernels_registered())
