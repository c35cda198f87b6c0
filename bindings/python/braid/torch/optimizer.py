"""DistributedOptimizer: wraps a torch optimizer so that gradients are averaged over
all ranks before each step, with Horovod's interface and behaviour.

A hook on every parameter notes when backward has produced its gradient (after
`backward_passes_per_step` passes). With overlap (GPU gradients, or cores to spare)
the hook submits the gradient's allreduce at once, so communication overlaps the
rest of the backward pass; the engine fuses the small ones. Without it (host
gradients on cores that the ranks' torch threads already fill) every allreduce is
submitted together in step() (see _overlap_default). step() waits for them and then
runs the wrapped optimizer's step.
"""

import contextlib
import os
import warnings

import torch

import braid as _braid

from . import sparse as _sparse
from .compression import Compression
from .mpi_ops import (Adasum, Average, Handle, Sum, _check_process_set, _resolve_op,
                      allreduce_async_, global_process_set, grouped_allreduce_async_,
                      sparse_allreduce_async, synchronize)

_TOO_MANY_PASSES = ("Gradients were computed more than backward_passes_per_step times "
                    "before call to step(). Increase backward_passes_per_step to "
                    "accumulate gradients locally.")
_ZERO_GRAD_RACE = ("optimizer.zero_grad() was called after loss.backward() but before "
                   "optimizer.step() or optimizer.synchronize(). This is prohibited as it "
                   "can cause a race condition.")
_STEP_AFTER_SYNC = ("optimizer.step() called without optimizer.skip_synchronize() context "
                    "after optimizer.synchronize(). This can cause training slowdown. You "
                    "may want to consider using optimizer.skip_synchronize() context if "
                    "you use optimizer.synchronize() in your code.")


def _named(optimizer, named_parameters):
    """Checks named_parameters against the optimizer's parameters; {param: name}, the
    names the gradients' allreduces carry. Without named_parameters a parameter is
    "noname.<i>", i its position in param_groups order: unique, and the same on every
    rank that builds the same optimizer."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if named_parameters is None:
        return {p: "noname.%d" % i for i, p in enumerate(params)}
    named_parameters = list(named_parameters)
    if any(not isinstance(item, tuple) for item in named_parameters):
        raise ValueError("named_parameters should be a sequence of tuples (name, parameter), "
                         "usually produced by model.named_parameters().")
    seen, dups = set(), []
    for name, _ in named_parameters:
        if name in seen and name not in dups:
            dups.append(name)
        seen.add(name)
    if dups:
        raise ValueError("Parameter names in named_parameters must be unique. "
                         "Found duplicates: %s" % ", ".join(dups))
    named_ids = {id(p) for _, p in named_parameters}
    unnamed = [id(p) for p in params if id(p) not in named_ids]
    if unnamed:
        raise ValueError("named_parameters was specified, but one or more model parameters "
                         "were not named. Python object ids: %s"
                         % ", ".join(str(i) for i in unnamed))
    return {p: name for name, p in sorted(named_parameters, key=lambda kv: kv[0])}


def _split(params, groups):
    """The allreduce units: single parameters, or tuples submitted together."""
    if groups is None or groups == 0:
        return [(p,) for p in params]
    if isinstance(groups, int):
        if groups < 0:
            raise ValueError("groups should be a non-negative integer or a list of list "
                             "of torch.Tensor.")
        n = len(params)
        bounds = [n * i // groups for i in range(groups + 1)]
        return [tuple(params[a:b]) for a, b in zip(bounds, bounds[1:]) if b > a]
    if not isinstance(groups, list):
        raise ValueError("groups should be a non-negative integer or a list of list of "
                         "torch.Tensor.")
    units, grouped = [], set()
    for group in groups:
        for p in group:
            if not isinstance(p, torch.Tensor):
                raise ValueError("groups must consist of torch.Tensor.")
            if p in grouped:
                raise ValueError("A parameter can only appear once in groups.")
            grouped.add(p)
        units.append(tuple(p for p in group if p.requires_grad))
    units = [u for u in units if u]
    return units + [(p,) for p in params if p not in grouped]


def _usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _overlap_default(params):
    """Whether the hooks submit gradients during backward (overlap=None).

    Yes for GPU parameters: the host is free while the device computes. For host
    parameters, only when the cores are not already taken by the ranks' torch
    threads (torch.get_num_threads() x local ranks < usable cores): an allreduce
    submitted during backward runs on braid's engine thread, which then competes
    with the compute threads for the same cores (and polls MPI while it waits for
    a slower rank), so the overlap costs more compute than it hides. Measured on 2
    cores, 2 ranks, one torch thread each (docs/python.md, "Per-call cost")."""
    if any(p.is_cuda for p in params):
        return True
    local = _braid.local_size()
    if local < 1:  # not initialised: Horovod's behaviour
        return True
    return torch.get_num_threads() * local < _usable_cpus()


class _DistributedOptimizer:
    """Mixed into a subclass of the wrapped optimizer's class (see DistributedOptimizer)."""

    def _setup(self, named_parameters, compression, backward_passes_per_step, op,
               gradient_predivide_factor, groups, sparse_as_dense, overlap):
        # Horovod's attribute, read by some scripts and tools: {param: name}, the one
        # source of the allreduce names below.
        self._parameter_names = _named(self, named_parameters)
        self._compression = compression
        self.backward_passes_per_step = backward_passes_per_step
        self.op = op
        self._predivide = gradient_predivide_factor
        self._sparse_as_dense = sparse_as_dense
        params = [p for g in self.param_groups for p in g["params"] if p.requires_grad]
        self._units = _split(params, groups)
        self._unit_of = {p: u for u in self._units for p in u}
        self._delay = {p: backward_passes_per_step for p in params}
        self._ready = {u: set() for u in self._units}
        self._overlap = _overlap_default(params) if overlap is None else bool(overlap)
        self._inflight = {}  # unit -> [(params, handle, [ctx per param])]
        self._waiting = set()  # units ready, to be submitted in synchronize()
        self._sparse_dim = {}  # param -> sparse_dim of the sparse gradients it had
        self._synchronized = False
        self._should_synchronize = True
        self._hook_handles = [self._register_hook(p) for p in params]

    def _register_hook(self, p):
        if hasattr(p, "register_post_accumulate_grad_hook"):
            return p.register_post_accumulate_grad_hook(lambda _: self._on_grad_ready(p))
        # Older torch: hook the gradient accumulator, which runs after accumulation.
        accumulator = p.expand_as(p).grad_fn.next_functions[0][0]
        handle = accumulator.register_hook(lambda *_: self._on_grad_ready(p))
        return (accumulator, handle)

    def _on_grad_ready(self, p):
        unit = self._unit_of[p]
        if unit in self._inflight or self._delay[p] <= 0:
            raise AssertionError(_TOO_MANY_PASSES)
        self._delay[p] -= 1
        if self._delay[p] > 0:
            return
        self._ready[unit].add(p)
        if len(self._ready[unit]) == len(unit):
            if self._overlap or p.is_cuda:
                self._submit(unit)
            else:
                self._waiting.add(unit)

    def _scales(self):
        if self.op == Average:
            return 1.0 / self._predivide, self._predivide
        return 1.0, 1.0

    def _submit(self, unit):
        grads = [self._grad(p) for p in unit]
        parts = []
        dense = [(p, g) for p, g in zip(unit, grads) if not g.is_sparse]
        for p, g in zip(unit, grads):
            if g.is_sparse:
                parts.append(((p,), self._submit_sparse(p, g), [None]))
        if dense:
            params, tensors = zip(*dense)
            pre, post = self._scales()
            compressed, ctxs = zip(*[self._compression.compress(g) for g in tensors])
            names = [self._parameter_names[p] for p in params]
            if len(params) == 1:
                handle = allreduce_async_(compressed[0], name=names[0], op=self.op,
                                          prescale_factor=pre, postscale_factor=post)
            else:
                handle = grouped_allreduce_async_(list(compressed), name="group." + names[0],
                                                  op=self.op, prescale_factor=pre,
                                                  postscale_factor=post)
            parts.append((params, handle, list(ctxs)))
        self._inflight[unit] = parts

    def _submit_sparse(self, p, grad):
        """The exchange of a sparse gradient; its result is a sparse gradient with the
        rows any rank had (see braid.torch.sparse)."""
        name = self._parameter_names[p]
        if self.op not in (Average, Sum):
            raise ValueError("DistributedOptimizer: sparse gradients are reduced with "
                             "op=Average or op=Sum only")
        if not self._sparse_as_dense:
            # The sum is scaled once: gradient_predivide_factor changes nothing here.
            return sparse_allreduce_async(grad, name=name, op=self.op)
        # Dense on the wire: the values with each row's presence mark, so the result
        # gets back the rows any rank had.
        _sparse.check_sparse(grad, "DistributedOptimizer")
        layout = _sparse.Layout(grad)
        buf = _sparse.dense_rows_of(grad, layout)
        pre, post = self._scales()
        compressed, ctx = self._compression.compress(buf)
        inner = allreduce_async_(compressed, name=name, op=self.op, prescale_factor=pre,
                                 postscale_factor=post)

        def finish(_):
            reduced = self._compression.decompress(synchronize(inner), ctx)
            return _sparse.to_sparse(reduced, layout)

        return Handle([], finish)

    def _grad(self, p):
        if p.grad is None:
            # Unused here this step, perhaps used on another rank: contribute zeros
            # (no rows, for a parameter whose gradients are sparse).
            p.grad = self._no_grad(p)
            p._braid_grad_was_none = True
        elif p.grad.is_sparse:
            self._sparse_dim[p] = p.grad.sparse_dim()
        return p.grad

    def _no_grad(self, p):
        sparse_dim = self._sparse_dim.get(p)
        if sparse_dim is None:
            return torch.zeros_like(p)
        return torch.sparse_coo_tensor(
            torch.zeros((sparse_dim, 0), dtype=torch.int64, device=p.device),
            torch.zeros((0,) + tuple(p.shape[sparse_dim:]), dtype=p.dtype, device=p.device),
            p.shape, check_invariants=False)

    def synchronize(self):
        """Waits for every gradient's allreduce (submitting those whose hooks did not
        run, e.g. unused parameters) and writes the averages into the .grad fields."""
        for unit in self._units:
            if unit not in self._inflight:
                self._submit(unit)
        for parts in list(self._inflight.values()):
            for params, handle, ctxs in parts:
                outputs = synchronize(handle)
                outputs = outputs if isinstance(outputs, list) else [outputs]
                for p, out, ctx in zip(params, outputs, ctxs):
                    self._write_grad(p, out, ctx)
        for p in self._delay:
            self._delay[p] = self.backward_passes_per_step
        for ready in self._ready.values():
            ready.clear()
        self._inflight.clear()
        self._waiting.clear()
        self._synchronized = True

    def _write_grad(self, p, out, ctx):
        grad = self._compression.decompress(out, ctx) if ctx is not None else out
        if getattr(p, "_braid_grad_was_none", False):
            del p._braid_grad_was_none
            if not p.requires_grad:  # frozen for this step on this rank: leave it alone
                p.grad = None
                return
        if grad.is_sparse or p.grad.is_sparse:
            p.grad = grad
        elif grad.data_ptr() != p.grad.data_ptr():
            with torch.no_grad():
                p.grad.copy_(grad)

    @contextlib.contextmanager
    def skip_synchronize(self):
        """Inside it, step() does not synchronize (call synchronize() yourself first)."""
        self._should_synchronize = False
        try:
            yield
        finally:
            self._should_synchronize = True

    def step(self, closure=None):
        if self._should_synchronize:
            if self._synchronized:
                warnings.warn(_STEP_AFTER_SYNC)
            self.synchronize()
        self._synchronized = False
        return super(self.__class__, self).step(closure)

    def zero_grad(self, *args, **kwargs):
        if self._inflight or self._waiting:
            raise AssertionError(_ZERO_GRAD_RACE)
        return super(self.__class__, self).zero_grad(*args, **kwargs)


def DistributedOptimizer(optimizer, named_parameters=None, compression=Compression.none,
                         backward_passes_per_step=1, op=Average, gradient_predivide_factor=1.0,
                         num_groups=0, groups=None, sparse_as_dense=False,
                         process_set=global_process_set, overlap=None):
    """Wraps `optimizer` so that step() uses gradients averaged (op) over all ranks.

    named_parameters: model.named_parameters(), to name each allreduce (unnamed
    parameters are numbered, which requires the same model on every rank).
    compression: Compression.none, .fp16 or .bf16 for the allreduce.
    backward_passes_per_step: backward passes accumulated locally per allreduce.
    gradient_predivide_factor: with op=Average, divide by this before the sum and
    by size/factor after it.
    groups: an int (split the parameters into that many allreduce groups) or a list
    of lists of parameters, each submitted as one group.
    sparse_as_dense: exchange sparse gradients as dense ones (one allreduce of the
    dense form, fused with the others); the optimizer still gets a sparse gradient.
    Either way a sparse gradient comes back sparse, with the rows any rank had
    (braid.torch.sparse_allreduce), so torch.optim.SparseAdam steps the rows a single
    process on the concatenated batch would.
    overlap (braid's own): True submits each gradient's allreduce from its hook
    during backward (Horovod's behaviour); False submits them all together in
    step() / synchronize(); None (default) overlaps for GPU parameters and for host
    parameters when the ranks' torch threads leave cores free, and otherwise
    submits in step(). The results are the same."""
    _check_process_set(process_set)
    if op == Adasum:
        raise NotImplementedError("braid does not implement Adasum; use op=hvd.Average "
                                  "or hvd.Sum")
    op = _resolve_op(op, None)
    if gradient_predivide_factor != 1.0 and op != Average:
        raise ValueError("gradient_predivide_factor not supported with op != Average")
    if backward_passes_per_step < 1:
        raise ValueError("backward_passes_per_step must be at least 1")
    if num_groups != 0:
        warnings.warn("Parameter `num_groups` has been replaced by `groups` and will be "
                      "removed", DeprecationWarning)
        groups = groups if groups is not None else num_groups
    methods = {k: v for k, v in _DistributedOptimizer.__dict__.items()
               if k not in ("__dict__", "__weakref__")}
    cls = type(optimizer.__class__.__name__, (optimizer.__class__,), methods)
    wrapped = cls.__new__(cls)
    wrapped.__dict__.update(optimizer.__dict__)  # shares param_groups and state
    wrapped._setup(named_parameters, compression, backward_passes_per_step, op,
                   gradient_predivide_factor, groups, sparse_as_dense, overlap)
    return wrapped
