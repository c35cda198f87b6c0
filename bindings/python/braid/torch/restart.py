"""Restart every I steps on top of an ordinary torch optimizer.

- ``LocalSGD``: local SGD; with ``warmup_steps`` post-local SGD (synchronous gradient
  averaging first). ``average_state`` chooses which optimizer state a restart
  averages along with the parameters: none, the momentum, or all of it.
- ``PRSGDMomentum``: PR-SGD-Momentum (Yu, Jin, Yang, ICML 2019), local SGD that
  averages the parameters and the momentum buffers at every restart. Over
  ``torch.optim.SGD(momentum=beta)`` this is Option I, with ``nesterov=True``
  Option II; with period 1 it is synchronous momentum SGD.
- ``SlowMo`` (Wang, Tantia, Ballas, Rabbat, ICLR 2020) and ``BMUF`` (Chen and Huo,
  2016): a slow momentum step on the average every period.

Usage::

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    optimizer = hvd.PRSGDMomentum(optimizer, period=8)
    for x, y in batches:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()     # a local step; every 8th also restarts

Every rank must start from the same parameters, wrap the same optimizer the same
way and call step() equally often. The algorithms run in braid's C++ restart ops
(braid.ops) on the parameters' own memory: a restart is one allreduce per group of
parameters of one dtype and device (normally a single group), and it fails on
every rank, rather than hanging, when the ranks are not at the same step.
"""

import itertools
import warnings

import torch

import braid as _braid
from braid import ops as _ops

from ._device_groups import WrappingOptimizer as _WrappingOptimizer
from ._device_groups import key_name as _key_name, stream_of as _stream
from .restart_state import (ALL as _ALL, complete_state as _complete_state,
                            state_plan as _state_plan, state_selection as _state_selection,
                            state_tensors as _state_tensors)

_counter = itertools.count()
_STATE_KEY = "braid_restart"


def _group_params(optimizer):
    """[(key, [params])]: the parameters by (dtype, device), in param_groups order."""
    groups = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            groups.setdefault((p.dtype, p.device), []).append(p)
    if not groups:
        raise ValueError("the optimizer has no parameters")
    return list(groups.items())




class _RestartOptimizer(_WrappingOptimizer):
    """An optimizer that steps the wrapped one and counts its steps in braid's restart
    ops. The param_groups, state and defaults are the wrapped optimizer's, so LR
    schedulers and gradient clipping work on the wrapper."""

    _kind = None

    def __init__(self, optimizer, name):
        # Optimizer.__init__ is not called: the wrapped optimizer owns the state.
        if isinstance(optimizer, _RestartOptimizer):
            raise ValueError("the optimizer is already wrapped by %s" % type(optimizer).__name__)
        self.optimizer = optimizer
        self._groups = _group_params(optimizer)
        if name is None:
            name = "%s.%d" % (self._kind, next(_counter))
        self._base = "torch.%s" % name
        self._ops = []

    @property
    def local_steps(self):
        """Local steps taken so far (warm-up included)."""
        return self._ops[0].step_count

    def _op_name(self, what, key):
        return "%s.%s.%s" % (self._base, what, _key_name(key))

    @staticmethod
    def _evaluate(closure):
        if closure is None:
            return None
        with torch.enable_grad():
            return closure()

    def state_dict(self):
        """The wrapped optimizer's state dict, plus this wrapper's under
        "braid_restart": the local step counter (and SlowMo's slow buffers)."""
        sd = self.optimizer.state_dict()
        sd[_STATE_KEY] = self._restart_state()
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        ours = state_dict.pop(_STATE_KEY, None)
        self.optimizer.load_state_dict(state_dict)
        if ours is None:
            warnings.warn("%s.load_state_dict: no '%s' entry (a plain optimizer's state?); "
                          "the step counter starts at 0" % (type(self).__name__, _STATE_KEY))
            ours = {"kind": self._kind, "step": 0}
        if ours.get("kind") != self._kind:
            raise ValueError("%s.load_state_dict: the state is a %s wrapper's"
                             % (type(self).__name__, ours.get("kind")))
        self._load_restart_state(ours)

    def _restart_state(self):
        return {"kind": self._kind, "step": self.local_steps}

    def _load_restart_state(self, ours):
        for op in self._ops:
            op.step_count = int(ours["step"])


class LocalSGD(_RestartOptimizer):
    """Local SGD: `optimizer` steps locally and every `period` steps (after
    `warmup_steps`) the parameters are averaged over the ranks, in one allreduce.

    average_state: the optimizer state averaged with them at a restart: None (the
    parameters only, like torch's PeriodicModelAverager), "momentum" (the momentum
    buffers: PR-SGD-Momentum), "all" (every floating-point state tensor shaped like
    its parameter, e.g. Adam's moments) or a tuple of state names.
    warmup_steps: the first steps average the gradients instead (synchronous SGD,
    one allreduce per step): post-local SGD."""

    _kind = "local_sgd"

    def __init__(self, optimizer, period, average_state=None, warmup_steps=0, name=None):
        super().__init__(optimizer, name)
        self._plan = _state_plan(optimizer, _state_selection(average_state),
                                 type(self).__name__)
        self._ops = [_ops.LocalSGD(period, warmup_steps, name=self._op_name("params", key))
                     for key, _ in self._groups]
        # A period-1 averager is a gradient allreduce: one fused collective per step.
        self._grad_ops = [_ops.LocalSGD(1, name=self._op_name("grads", key))
                          for key, _ in self._groups] if warmup_steps > 0 else []

    @property
    def period(self):
        return self._ops[0].period

    @property
    def warmup_steps(self):
        return self._ops[0].warmup_steps

    def step(self, closure=None):
        loss = self._evaluate(closure)
        if self.local_steps < self.warmup_steps:
            self._average_gradients()
        self.optimizer.step()
        for (key, params), op in zip(self._groups, self._ops):
            if op.restart_due:
                self._register(key, params, op)
            op.step()
        return loss

    def restart(self):
        """Averages now (collective), without counting a step: e.g. before evaluating
        or saving a model in the middle of a period."""
        for (key, params), op in zip(self._groups, self._ops):
            self._register(key, params, op)
            op.restart()

    def _register(self, key, params, op):
        if self._plan:
            _complete_state(self.optimizer, params, self._plan)
        op.set_buffers([p.detach() for p in params],
                       _state_tensors(self.optimizer, params, self._plan) if self._plan else [],
                       _stream(key))

    def _average_gradients(self):
        for (key, params), op in zip(self._groups, self._grad_ops):
            grads = []
            for p in params:
                if p.grad is None:  # unused here this step: contribute zeros
                    p.grad = torch.zeros_like(p)
                if p.grad.is_sparse:
                    raise ValueError("LocalSGD warm-up: sparse gradients are not supported")
                if not p.grad.is_contiguous():
                    p.grad = p.grad.contiguous()
                grads.append(p.grad.detach())
            op.set_buffers(grads, (), _stream(key))
            op.step()

    def _load_restart_state(self, ours):
        super()._load_restart_state(ours)
        for op in self._grad_ops:
            op.step_count = min(int(ours["step"]), self.warmup_steps)


class PRSGDMomentum(LocalSGD):
    """PR-SGD-Momentum: local momentum SGD whose restart every `period` steps averages
    the parameters and the momentum buffers (one allreduce). Wrap
    torch.optim.SGD(momentum=beta) for Option I (heavy ball) or
    SGD(momentum=beta, nesterov=True) for Option II. With period 1 it is synchronous
    momentum SGD on the averaged gradient. Another optimizer, momentum 0 or dampening
    is a ValueError that names what to use instead (LocalSGD)."""

    def __init__(self, optimizer, period, warmup_steps=0, name=None):
        if not isinstance(optimizer, _RestartOptimizer):  # that one has its own message
            _check_pr_sgd_momentum(optimizer)
        super().__init__(optimizer, period, average_state="momentum",
                         warmup_steps=warmup_steps, name=name)


def _check_pr_sgd_momentum(optimizer):
    """PR-SGD-Momentum is SGD with momentum u = beta u + g: anything else would run
    as another algorithm under its name."""
    kind = type(optimizer).__name__
    if not isinstance(optimizer, torch.optim.SGD):
        raise ValueError("PRSGDMomentum averages the momentum of torch.optim.SGD(momentum=beta), "
                         "and %s is not SGD: use LocalSGD(optimizer, period) for local %s, with "
                         "average_state='all' to average its state too" % (kind, kind))
    for index, group in enumerate(optimizer.param_groups):
        if not group.get("momentum", 0):
            raise ValueError("PRSGDMomentum: param group %d has momentum 0, so there is no "
                             "momentum to average and this would be plain local SGD: use "
                             "LocalSGD(optimizer, period), or give SGD a momentum" % index)
        if group.get("dampening", 0):
            raise ValueError("PRSGDMomentum: param group %d has dampening %g, but "
                             "PR-SGD-Momentum's momentum is u = beta u + g (dampening 0): set "
                             "dampening=0, or use LocalSGD(optimizer, period, "
                             "average_state='momentum') to average the damped momentum"
                             % (index, group["dampening"]))


class SlowMo(_RestartOptimizer):
    """SlowMo: `optimizer` (any base optimizer, learning rate lr) steps locally; every
    `period` (tau) steps, with x_old where the period started on every rank,

        xbar = avg(x); d = (x_old - xbar) / lr; s = slow_momentum * s + d
        x_old = x_old - slow_lr * lr * s;  x = x_old on every rank

    (nesterov: x_old = x_old - slow_lr * lr * (slow_momentum * s + d), BMUF's
    Nesterov block momentum). With slow_momentum=0 and slow_lr=1 this is local SGD.
    lr is read from the param groups at each restart (they must agree). base_state,
    what happens to the base optimizer's state (e.g. momentum buffers) at a restart:
    "keep" (default: no extra bytes on the wire, and slow_momentum=0, slow_lr=1 is
    then exactly LocalSGD with average_state=None), "reset" (cleared, as for a fresh
    optimizer) or "average" (averaged in the same allreduce)."""

    _kind = "slowmo"

    def __init__(self, optimizer, period, slow_lr=1.0, slow_momentum=0.5, base_state="keep",
                 nesterov=False, name=None):
        if base_state not in ("keep", "reset", "average"):
            raise ValueError("SlowMo: base_state must be 'keep', 'reset' or 'average' (got %r)"
                             % (base_state,))
        super().__init__(optimizer, name)
        self.base_state = base_state
        self._plan = (_state_plan(optimizer, _ALL, type(self).__name__)
                      if base_state == "average" else {})
        self._ops = [_ops.SlowMo(period, slow_lr, slow_momentum, nesterov,
                                 name=self._op_name("params", key)) for key, _ in self._groups]
        self._slow = []
        for (dtype, device), params in self._groups:
            n = sum(p.numel() for p in params)
            self._slow.append((torch.zeros(n, dtype=dtype, device=device),
                               torch.zeros(n, dtype=dtype, device=device)))
        self._started = False  # x_old holds the starting point

    @property
    def period(self):
        return self._ops[0].period

    def step(self, closure=None):
        loss = self._evaluate(closure)
        if not self._started:
            self._start()
        self.optimizer.step()
        due = [op.restart_due for op in self._ops]
        lr = self._lr() if any(due) else 0.0
        for i, op in enumerate(self._ops):
            if due[i]:
                self._register(i, with_state=True)
            if op.step(lr) and self.base_state == "reset":
                for p in self._groups[i][1]:
                    self.optimizer.state.pop(p, None)
        return loss

    def restart(self):
        """Runs the outer step now (collective), without counting a step."""
        if not self._started:
            self._start()
        lr = self._lr()
        for i, op in enumerate(self._ops):
            self._register(i, with_state=True)
            op.restart(lr)

    def _start(self):
        """x_old = the parameters: the first period starts where the ranks start."""
        for i, op in enumerate(self._ops):
            self._register(i, with_state=False)
            op.init_slow_params()
        self._started = True

    def _register(self, i, with_state):
        key, params = self._groups[i]
        averaged = []
        if with_state and self._plan:
            _complete_state(self.optimizer, params, self._plan)
            averaged = _state_tensors(self.optimizer, params, self._plan)
        x_old, s = self._slow[i]
        self._ops[i].set_buffers([p.detach() for p in params], x_old, s, averaged, _stream(key))

    def _lr(self):
        lrs = sorted({float(g["lr"]) for g in self.param_groups})
        if len(lrs) != 1:
            raise ValueError("SlowMo needs one learning rate across the param groups (got %s)"
                             % lrs)
        return lrs[0]

    def _restart_state(self):
        state = super()._restart_state()
        state["started"] = self._started
        state["slow_params"] = [x.detach().clone() for x, _ in self._slow]
        state["slow_momentum"] = [s.detach().clone() for _, s in self._slow]
        return state

    def _load_restart_state(self, ours):
        super()._load_restart_state(ours)
        with torch.no_grad():
            for (x_old, s), x_saved, s_saved in zip(self._slow, ours["slow_params"],
                                                    ours["slow_momentum"]):
                x_old.copy_(x_saved)
                s.copy_(s_saved)
        self._started = bool(ours["started"])


class BMUF(SlowMo):
    """BMUF (Chen and Huo, 2016) as SlowMo: block momentum eta = slow_momentum (default
    1 - 1/N, the paper's choice), block learning rate zeta = slow_lr. nesterov=True
    (default) is BMUF's Nesterov block momentum: each block starts from the
    look-ahead point W + eta * Delta and its block gradient is measured from there
    (docs/slowmo.md)."""

    def __init__(self, optimizer, period, block_momentum=None, block_lr=1.0, nesterov=True,
                 base_state="keep", name=None):
        if block_momentum is None:
            block_momentum = 1.0 - 1.0 / _braid.size()
        super().__init__(optimizer, period, slow_lr=block_lr, slow_momentum=block_momentum,
                         base_state=base_state, nesterov=nesterov, name=name)
