"""Decentralized momentum SGD on top of ``torch.optim.SGD``: Algorithm 2 of Yu, Jin
and Yang (ICML 2019). Every step each rank takes its local SGD step (heavy ball, or
Nesterov with ``nesterov=True``: their Options I and II), then mixes its parameters
AND its momentum buffers with its neighbours in a gossip graph, through one
neighbour allreduce per group of parameters of one dtype and device:
x_i <- sum_j W_ij x_j, u_i <- sum_j W_ij u_j. There is no global collective.
``momentum=0`` gives D-PSGD; ``mix_momentum=False`` mixes the parameters only (what
most other libraries do), for comparison.

Usage::

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    optimizer = hvd.DecentralizedOptimizer(optimizer, topology="exponential")
    for x, y in batches:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()         # local step, then one exchange with the neighbours
    optimizer.consensus()        # the exact average, before evaluating or saving

Each rank's model differs from the others' between consensus() calls;
consensus_distance() measures by how much. The topology is a name ("ring",
"torus", "exponential", "one_peer_exponential", "complete", "base") or a mixing
matrix W (or a list of them, used in turn), doubly stochastic (docs/gossip.md).
"""

import itertools
import math
import warnings

import torch

from braid import ops as _ops

from ._device_groups import WrappingOptimizer as _WrappingOptimizer
from ._device_groups import key_name as _key_name, stream_of as _stream

_counter = itertools.count()
_STATE_KEY = "braid_decentralized"
_TOPOLOGIES = ("ring", "torus", "exponential", "one_peer_exponential", "complete", "base")


def _check_sgd(optimizer):
    if not isinstance(optimizer, torch.optim.SGD):
        raise ValueError("DecentralizedOptimizer wraps torch.optim.SGD (its momentum buffer is "
                         "the u of the algorithm), not %s" % type(optimizer).__name__)
    for group in optimizer.param_groups:
        if group.get("dampening", 0) != 0:
            raise ValueError("DecentralizedOptimizer: dampening must be 0 (u = beta u + g)")
        if group.get("maximize", False):
            raise ValueError("DecentralizedOptimizer: maximize=True is not supported")


def _matrices(topology):
    """A W or a list of them as nested lists of floats (row-major)."""
    if isinstance(topology, torch.Tensor) or hasattr(topology, "shape"):
        topology = [topology]
    out = []
    for w in topology:
        t = torch.as_tensor(w, dtype=torch.float64)
        if t.dim() != 2 or t.shape[0] != t.shape[1]:
            raise ValueError("a mixing matrix must be square, not of shape %s" % tuple(t.shape))
        out.append(t.numpy())
    return out


class DecentralizedOptimizer(_WrappingOptimizer):
    """Wraps `optimizer` (torch.optim.SGD, momentum >= 0) so that every step() is a
    step of decentralized momentum SGD over `topology`.

    mix_momentum: mix the momentum buffers along with the parameters (True, the
    algorithm); False mixes the parameters alone.
    average_period: every that many steps the ranks average exactly (one allreduce)
    instead of mixing; 0 never.
    max_degree: the Base-(k+1) graph's k (topology "base")."""

    def __init__(self, optimizer, topology="ring", mix_momentum=True, average_period=0,
                 max_degree=1, name=None):
        if isinstance(optimizer, DecentralizedOptimizer):
            raise ValueError("the optimizer is already wrapped")
        _check_sgd(optimizer)
        self.optimizer = optimizer
        self.mix_momentum = bool(mix_momentum)
        groups = {}
        for group in optimizer.param_groups:
            for p in group["params"]:
                groups.setdefault((p.dtype, p.device), []).append((p, group))
        if not groups:
            raise ValueError("the optimizer has no parameters")
        self._groups = list(groups.items())
        base = "torch.decentralized.%d" % next(_counter) if name is None else "torch." + name
        if isinstance(topology, str):
            if topology not in _TOPOLOGIES:
                raise ValueError("unknown topology %r: use one of %s or a mixing matrix"
                                 % (topology, ", ".join(_TOPOLOGIES)))
            graph = dict(topology=topology)
        else:
            graph = dict(topology=_matrices(topology))
        self._ops = [_ops.DecentralizedSGD("%s.%s" % (base, _key_name(key)),
                                           mix_momentum=self.mix_momentum,
                                           average_period=int(average_period),
                                           max_degree=int(max_degree), **graph)
                     for key, _ in self._groups]

    @property
    def steps(self):
        """Steps taken so far: the next one mixes with W_steps."""
        return self._ops[0].step_count

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.optimizer.step()
        for (key, members), op in zip(self._groups, self._ops):
            self._register(key, members, op)
            op.mix()
        return loss

    def _momentum_buffers(self, members):
        """Every parameter's momentum buffer, created as zeros where SGD has none yet
        (no gradient so far): every rank mixes the same buffers."""
        out = []
        for p, group in members:
            if group.get("momentum", 0) == 0:
                return []
            state = self.optimizer.state[p]
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.contiguous_format)
            out.append(state["momentum_buffer"])
        return out

    def _register(self, key, members, op):
        params = [p.detach() for p, _ in members]
        momentum = self._momentum_buffers(members) if self.mix_momentum else []
        op.set_buffers(params, [], momentum, _stream(key))

    def consensus(self):
        """Replaces every rank's parameters (and momentum) by their exact average
        (collective), without counting a step: before evaluating or saving."""
        for (key, members), op in zip(self._groups, self._ops):
            params = [p.detach() for p, _ in members]
            op.set_buffers(params, [], self._momentum_buffers(members), _stream(key))
            op.consensus()

    def consensus_distance(self):
        """sqrt((1/n) sum_i ||x_i - xbar||^2) over every parameter, the same on every
        rank (collective); nothing changes."""
        total = 0.0
        for (key, members), op in zip(self._groups, self._ops):
            op.set_buffers([p.detach() for p, _ in members], [], [], _stream(key))
            total += op.consensus_distance() ** 2
        return math.sqrt(total)

    def state_dict(self):
        """The wrapped optimizer's state dict plus the step counter, under
        "braid_decentralized" (the graph's phase of a time-varying topology)."""
        sd = self.optimizer.state_dict()
        sd[_STATE_KEY] = {"step": self.steps}
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        ours = state_dict.pop(_STATE_KEY, None)
        self.optimizer.load_state_dict(state_dict)
        if ours is None:
            warnings.warn("DecentralizedOptimizer.load_state_dict: no '%s' entry; the step "
                          "counter starts at 0" % _STATE_KEY)
            ours = {"step": 0}
        for op in self._ops:
            op.step_count = int(ours["step"])
