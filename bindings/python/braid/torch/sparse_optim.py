"""Sparse communication with error feedback as torch optimizers: GMC, M-DSGD and DGC.

Each is a drop-in for a torch optimizer (a ``torch.optim.Optimizer``, so LR
schedulers and gradient clipping work) whose ``step()`` both exchanges the gradient
information and updates the parameters. It runs braid's C++ op (``braid.ops.GMC``,
``MDSGD`` or ``DGC``) on the parameters' and gradients' own memory: each rank keeps
its error memory (and momentum), sends the top-k entries of it as (index, value)
pairs in one sparse allreduce, and every rank subtracts the same average.

Usage::

    model = Net()
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    optimizer = hvd.GMC(model.parameters(), lr=0.04, momentum=0.9, density=0.01)
    for x, y in batches:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()          # collective: exchange and update

Do **not** also wrap it in ``hvd.DistributedOptimizer``: the gradients must reach
``step()`` as each rank computed them (the sparse exchange is the averaging).

- The learning rate is read from ``param_groups[0]['lr']`` at every step (LR
  schedulers work); every param group must have the same lr. The other
  hyperparameters (momentum, density, weight decay, ...) are fixed at construction.
- A parameter that gets no gradient in a step (``.grad`` is None) contributes a zero
  gradient: it is given a zero ``.grad``. With GMC and DGC such a parameter can
  still move, by the momentum and error memory it holds from earlier steps.
- Clipping the gradients before ``step()`` (``torch.nn.utils.clip_grad_norm_``)
  works: it only changes ``.grad``.
- ``state_dict()`` / ``load_state_dict()`` carry the op's state (error memory,
  momentum, GMC's last update) and the step count, so a checkpoint resumes
  bit-exactly. The error memory (and M-DSGD's and DGC's momentum) is each rank's
  own: for an exact resume every rank saves and loads its own state dict (e.g.
  ``"ckpt.rank%d.pt" % hvd.rank()``). Loading rank 0's on every rank (or
  ``hvd.broadcast_optimizer_state``, which does that) gives every rank rank 0's
  memory; harmless at the start, where it is zero.
- One op (and one sparse allreduce per step) per group of parameters of one dtype
  and device, in param_groups order. Parameters must be contiguous.

Every rank must create the same optimizers over the same parameters in the same
order and call ``step()`` equally often. See docs/gmc.md, docs/mdsgd.md, docs/dgc.md.
"""

import itertools
import warnings

import torch

from braid import ops as _ops

from ._device_groups import key_name as _key_name, stream_of as _stream

_counter = itertools.count()
_STATE_KEY = "braid_sparse"


def _to_torch(x):
    """A torch view of an array the op returns (torch, DLPack or numpy), sharing memory."""
    if isinstance(x, torch.Tensor):
        return x
    if hasattr(x, "__dlpack__"):
        return torch.from_dlpack(x)
    return torch.as_tensor(x)


def exponential_warmup(final_density, stages=4, start=0.25):
    """DGC's warm-up densities: `stages` densities falling geometrically from `start`
    towards `final_density` (the paper's 75%, 93.75%, 98.4%, 99.6% sparsity before
    99.9%: exponential_warmup(0.001) = [0.25, 0.063, 0.0158, 0.0040])."""
    if stages < 1:
        return []
    ratio = (float(final_density) / start) ** (1.0 / stages)
    return [start * ratio ** i for i in range(stages)]


class _SparseOptimizer(torch.optim.Optimizer):
    """The shared part: param groups, one braid op per (dtype, device), the warm-up of
    the density, and the state dict."""

    _kind = None  # "gmc", "mdsgd", "dgc"

    def __init__(self, params, defaults, warmup_densities, warmup_steps_per_stage, name):
        if not 0.0 < defaults["density"] <= 1.0:
            raise ValueError("%s: density must be in (0, 1], got %r"
                             % (type(self).__name__, defaults["density"]))
        if defaults["lr"] < 0.0:
            raise ValueError("%s: lr must be >= 0, got %r" % (type(self).__name__, defaults["lr"]))
        self._warmup = self._check_warmup(defaults["density"], warmup_densities,
                                          warmup_steps_per_stage)
        self._steps_per_stage = int(warmup_steps_per_stage or 0)
        self._ops = None
        super().__init__(params, defaults)
        self._groups = self._group_params()
        if name is None:
            name = "%s.%d" % (self._kind, next(_counter))
        self._base = "torch.%s" % name
        self._ops = [self._make_op(self._op_name(key)) for key, _ in self._groups]
        self._pending = None  # state loaded before the op has its buffers
        self._registered = False  # set_buffers has run (the op holds its state)

    # --- construction ---

    def _check_warmup(self, density, densities, steps_per_stage):
        who = type(self).__name__
        if densities is None:
            return []
        if isinstance(densities, str):
            if densities != "exponential":
                raise ValueError("%s: warmup_densities must be None, 'exponential' or a list "
                                 "of densities, not %r" % (who, densities))
            densities = exponential_warmup(density)
        densities = [float(d) for d in densities]
        if any(not 0.0 < d <= 1.0 for d in densities):
            raise ValueError("%s: every warm-up density must be in (0, 1], got %s"
                             % (who, densities))
        if densities and not steps_per_stage or (steps_per_stage or 0) < 0:
            raise ValueError("%s: warmup_densities needs warmup_steps_per_stage >= 1 (e.g. "
                             "the steps of one epoch)" % who)
        return densities

    def _group_params(self):
        """[(key, [params])]: the parameters by (dtype, device), in param_groups order."""
        groups = {}
        seen = set()
        for group in self.param_groups:
            for p in group["params"]:
                if id(p) in seen:
                    continue
                seen.add(id(p))
                if not p.dtype.is_floating_point:
                    raise ValueError("%s: parameters must be floating point, got %s"
                                     % (type(self).__name__, p.dtype))
                groups.setdefault((p.dtype, p.device), []).append(p)
        if not groups:
            raise ValueError("%s: no parameters" % type(self).__name__)
        return list(groups.items())

    def _op_name(self, key):
        return "%s.%s" % (self._base, _key_name(key))

    def _make_op(self, name):
        raise NotImplementedError

    def add_param_group(self, param_group):
        if self._ops is not None:
            raise NotImplementedError("%s: give every param group to the constructor; groups "
                                      "cannot be added later" % type(self).__name__)
        super().add_param_group(param_group)

    # --- the step ---

    @property
    def steps(self):
        """Steps taken so far (the op's step count)."""
        return self._ops[0].step_count

    def density_at(self, step):
        """The density used at step `step` (counted from 0): the warm-up's, then the
        final one."""
        if self._warmup and self._steps_per_stage > 0:
            stage = step // self._steps_per_stage
            if stage < len(self._warmup):
                return self._warmup[stage]
        return self.defaults["density"]

    def _lr(self):
        lr = float(self.param_groups[0]["lr"])
        for index, group in enumerate(self.param_groups[1:], 1):
            if float(group["lr"]) != lr:
                raise ValueError("%s: every param group must have the same lr (group 0 has "
                                 "%g, group %d has %g)" % (type(self).__name__, lr, index,
                                                           float(group["lr"])))
        return lr

    def _dense_flags(self, params):
        return None

    def _register(self, key, params, op):
        grads = []
        for p in params:
            if not p.is_contiguous():
                raise ValueError("%s: parameters must be contiguous (a parameter of shape %s "
                                 "is not); call .contiguous() on the model's parameters "
                                 "before building the optimizer" % (type(self).__name__,
                                                                    tuple(p.shape)))
            if p.grad is None:  # no gradient this step: contribute zeros
                p.grad = torch.zeros_like(p, memory_format=torch.contiguous_format)
            elif p.grad.is_sparse:
                raise ValueError("%s: sparse gradients are not supported (use "
                                 "sparse=False in the embedding)" % type(self).__name__)
            elif not p.grad.is_contiguous():
                p.grad = p.grad.contiguous()
            grads.append(p.grad.detach())
        op.set_buffers([p.detach() for p in params], grads, self._dense_flags(params),
                       _stream(key))

    @torch.no_grad()
    def step(self, closure=None):
        """Exchanges the gradients and updates the parameters (collective)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        lr = self._lr()
        density = self.density_at(self.steps)
        final = density == self.defaults["density"]
        for (key, params), op in zip(self._groups, self._ops):
            self._register(key, params, op)
        self._registered = True
        if self._pending is not None:
            self._restore(self._pending)
            self._pending = None
        for op in self._ops:
            if final:
                op.step(lr)
            else:
                op.step(lr, density=density)
        return loss

    @property
    def last_stats(self):
        """What the last step sent from this rank, summed over the ops: pairs,
        value_bytes, index_bytes, dense_bytes."""
        total = {}
        for op in self._ops:
            for k, v in dict(op.last_stats).items():
                total[k] = total.get(k, 0) + v
        return total

    # --- checkpoints ---

    def _op_state(self, op):
        if not self._registered:  # the op allocates its state at set_buffers
            return {}
        return {name: _to_torch(v) for name, v in dict(op.state()).items()}

    def state_dict(self):
        """torch's state dict (param_groups), plus this optimizer's under
        "braid_sparse": the step count and, per op, its flat state (copies)."""
        sd = super().state_dict()
        if self._pending is not None:
            groups = self._pending
        else:
            groups = [{name: t.detach().clone() for name, t in self._op_state(op).items()}
                      for op in self._ops]
        sd[_STATE_KEY] = {
            "kind": self._kind,
            "step": self.steps,
            "groups": [{"key": _key_name(key), "numel": sum(p.numel() for p in params),
                        "state": state}
                       for (key, params), state in zip(self._groups, groups)],
        }
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        ours = state_dict.pop(_STATE_KEY, None)
        super().load_state_dict(state_dict)
        who = type(self).__name__
        if ours is None:
            warnings.warn("%s.load_state_dict: no '%s' entry; the error memory and momentum "
                          "start at zero and the step count at 0" % (who, _STATE_KEY))
            ours = {"kind": self._kind, "step": 0, "groups": [{} for _ in self._ops]}
        if ours.get("kind") != self._kind:
            raise ValueError("%s.load_state_dict: the state is a %s optimizer's"
                             % (who, ours.get("kind")))
        groups = ours["groups"]
        if len(groups) != len(self._groups):
            raise ValueError("%s.load_state_dict: the state has %d groups of parameters "
                             "(dtype, device), this optimizer %d" % (who, len(groups),
                                                                      len(self._groups)))
        for (key, params), saved in zip(self._groups, groups):
            numel = sum(p.numel() for p in params)
            if saved and saved.get("numel", numel) != numel:
                raise ValueError("%s.load_state_dict: group %s has %d elements in the state, "
                                 "%d here" % (who, _key_name(key), saved["numel"], numel))
        for op in self._ops:
            op.step_count = int(ours["step"])
        self._pending = [dict(g.get("state", {})) if g else {} for g in groups]
        if self._registered:
            # The ops have their buffers: restore now (state_dict() reads them back).
            self._restore(self._pending)
            self._pending = None

    def _restore(self, groups):
        for op, saved in zip(self._ops, groups):
            live = self._op_state(op)
            for name, target in live.items():
                source = saved.get(name)
                if source is None:
                    target.zero_()
                    continue
                target.copy_(source.reshape(target.shape).to(target.device, target.dtype))
            unknown = sorted(set(saved) - set(live))
            if unknown:
                raise ValueError("%s.load_state_dict: state %s is not this op's (it keeps %s)"
                                 % (type(self).__name__, unknown, sorted(live)))


class GMC(_SparseOptimizer):
    """Global momentum compression (GMC): each rank r, with its error memory e_r,

        z_r = e_r + lr * g_r - momentum * (w_t - w_{t-1})
        sent_r = topk(z_r);  e_r = z_r - sent_r;  w_{t+1} = w_t - avg_r(sent_r)

    The momentum is global: w_t - w_{t-1}, the update every rank applied. With
    density 1 this is heavy-ball momentum SGD on the averaged gradient (torch's
    SGD(momentum) at a constant lr). weight_decay adds weight_decay * w to each
    gradient. selection: "topk" (exact), "threshold" (DGC's sampled threshold, with
    sample_fraction and seed) or "randomk" (indices from seed, the same on every
    rank); scope: "tensor" (k per parameter) or "global" (one k
    over the group). dense_fallback: send a dense allreduce when the pairs would be
    larger (docs/sparse.md). docs/gmc.md."""

    _kind = "gmc"

    def __init__(self, params, lr, momentum=0.9, density=0.01, weight_decay=0.0,
                 selection="topk", scope="tensor", sample_fraction=0.01, seed=0,
                 dense_fallback=True, warmup_densities=None, warmup_steps_per_stage=None,
                 name=None):
        defaults = dict(lr=lr, momentum=momentum, density=density, weight_decay=weight_decay,
                        selection=selection, scope=scope, sample_fraction=sample_fraction,
                        seed=seed, dense_fallback=dense_fallback)
        super().__init__(params, defaults, warmup_densities, warmup_steps_per_stage, name)

    def _make_op(self, name):
        d = self.defaults
        return _ops.GMC(d["density"], momentum=d["momentum"], weight_decay=d["weight_decay"],
                        selection=d["selection"], scope=d["scope"],
                        sample_fraction=d["sample_fraction"], seed=d["seed"],
                        dense_fallback=d["dense_fallback"], name=name)


class MDSGD(_SparseOptimizer):
    """Momentum distributed SGD with top-k and error memory (M-DSGD): each rank r,

        v_r = momentum * v_r + g_r;  z_r = e_r + lr * v_r   (nesterov: lr * (momentum * v_r + g_r))
        sent_r = topk(z_r);  e_r = z_r - sent_r;  w -= avg_r(sent_r)

    The momentum is local (each rank's own gradients). Parameters as GMC's.
    docs/mdsgd.md."""

    _kind = "mdsgd"

    def __init__(self, params, lr, momentum=0.9, density=0.01, nesterov=False,
                 weight_decay=0.0, selection="topk", scope="tensor", sample_fraction=0.01,
                 seed=0, dense_fallback=True, warmup_densities=None,
                 warmup_steps_per_stage=None, name=None):
        defaults = dict(lr=lr, momentum=momentum, density=density, nesterov=nesterov,
                        weight_decay=weight_decay, selection=selection, scope=scope,
                        sample_fraction=sample_fraction, seed=seed,
                        dense_fallback=dense_fallback)
        super().__init__(params, defaults, warmup_densities, warmup_steps_per_stage, name)

    def _make_op(self, name):
        d = self.defaults
        return _ops.MDSGD(d["density"], momentum=d["momentum"], nesterov=d["nesterov"],
                          weight_decay=d["weight_decay"], selection=d["selection"],
                          scope=d["scope"], sample_fraction=d["sample_fraction"], seed=d["seed"],
                          dense_fallback=d["dense_fallback"], name=name)


class DGC(_SparseOptimizer):
    """Deep gradient compression (DGC): momentum correction and factor masking,

        u_r = momentum * u_r + g_r;  v_r = v_r + u_r
        sent_r = topk(v_r);  v_r[sent] = u_r[sent] = 0;  w -= lr * avg_r(sent_r)

    Parameters with one dimension or fewer (biases, norms) are sent dense. clip_norm
    > 0: local gradient clipping (docs/dgc.md). warmup_densities: the densities of
    the first stages, each held for warmup_steps_per_stage steps (e.g. one epoch),
    before `density`; "exponential" is the paper's 75%, 93.75%, 98.4%, 99.6%
    sparsity (exponential_warmup(density)). Selection "topk" by default; "threshold"
    is the paper's sampled threshold. docs/dgc.md."""

    _kind = "dgc"

    def __init__(self, params, lr, momentum=0.9, density=0.01, nesterov=False,
                 weight_decay=0.0, clip_norm=0.0, selection="topk", scope="tensor",
                 sample_fraction=0.01, seed=0, dense_fallback=True, warmup_densities=None,
                 warmup_steps_per_stage=None, name=None):
        defaults = dict(lr=lr, momentum=momentum, density=density, nesterov=nesterov,
                        weight_decay=weight_decay, clip_norm=clip_norm, selection=selection,
                        scope=scope, sample_fraction=sample_fraction, seed=seed,
                        dense_fallback=dense_fallback)
        super().__init__(params, defaults, warmup_densities, warmup_steps_per_stage, name)

    def _make_op(self, name):
        d = self.defaults
        return _ops.DGC(d["density"], momentum=d["momentum"], nesterov=d["nesterov"],
                        weight_decay=d["weight_decay"], clip_norm=d["clip_norm"],
                        selection=d["selection"], scope=d["scope"],
                        sample_fraction=d["sample_fraction"], seed=d["seed"],
                        dense_fallback=d["dense_fallback"], name=name)

    def _dense_flags(self, params):
        return [p.dim() <= 1 for p in params]
