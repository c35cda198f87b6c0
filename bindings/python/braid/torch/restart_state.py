"""Which optimizer state a restart averages, and creating it where a parameter has
none yet, so that every rank registers the same buffers (braid.torch.restart).

The state a restart averages follows from the optimizer's settings alone: for each
param group the state it keeps per parameter is probed once, at wrap time, with a
step on a scratch parameter and a zero gradient. Before each restart, a parameter
that has no such state on this rank (no gradient so far, so SGD has no
momentum_buffer and Adam no moments) gets it as the optimizer would create it.
"""

import torch

ALL = "all"


def state_selection(average_state):
    """() | ("momentum_buffer",) | ALL | a tuple of state names."""
    if average_state is None or average_state in ("none", ()):
        return ()
    if average_state == "momentum":
        return ("momentum_buffer",)
    if average_state == ALL:
        return ALL
    if isinstance(average_state, str):
        return (average_state,)
    return tuple(average_state)


# The scratch parameter _fresh_state probes an optimizer with: two elements,
# so that state shaped like a parameter is told apart from scalars such as "step".
_PROBE_SHAPE = (2,)
_PROBE_ERRORS = (TypeError, ValueError, RuntimeError, KeyError, NotImplementedError)


def _own_class(optimizer):
    """The optimizer's class whose step() is the optimizer's own: braid's
    DistributedOptimizer subclasses it with a step() that communicates."""
    cls = type(optimizer)
    while "_setup" in cls.__dict__ and "synchronize" in cls.__dict__ and cls.__bases__:
        cls = cls.__bases__[0]
    return cls


def _fresh_state(optimizer, group, dtype, device):
    """The state `optimizer` keeps for a parameter of `group` after a step with a zero
    gradient, probed on a scratch parameter (nothing of the optimizer changes); None
    when it cannot be probed, e.g. an optimizer whose step needs a closure."""
    q = torch.zeros(_PROBE_SHAPE, dtype=dtype, device=device, requires_grad=True)
    hyper = {k: v for k, v in group.items() if k != "params"}
    try:
        scratch = _own_class(optimizer)([dict(hyper, params=[q])])
        q.grad = torch.zeros_like(q)
        scratch.step()
    except _PROBE_ERRORS:
        return None
    return dict(scratch.state.get(q, {}))


def _shaped_names(fresh):
    """The floating-point state entries shaped like their parameter, in a fixed order."""
    return tuple(sorted(n for n, v in fresh.items()
                        if isinstance(v, torch.Tensor) and v.is_floating_point()
                        and tuple(v.shape) == _PROBE_SHAPE))


def state_plan(optimizer, selection, who):
    """{param: (names of the state a restart averages, fresh state or None)}. The
    names follow from the optimizer's settings alone, so every rank registers the
    same buffers whatever state each rank holds so far."""
    plan, probes = {}, {}
    if not selection:
        return plan
    for index, group in enumerate(optimizer.param_groups):
        for p in group["params"]:
            key = (index, p.dtype, p.device)
            if key not in probes:
                probes[key] = _fresh_state(optimizer, group, p.dtype, p.device)
                _check_selection(optimizer, selection, probes[key], index, who)
            fresh = probes[key]
            plan[p] = (_shaped_names(fresh) if selection == ALL else selection, fresh)
    return plan


def _check_selection(optimizer, selection, fresh, index, who):
    kind = type(optimizer).__name__
    if fresh is None:
        if selection == ALL:
            raise ValueError("%s: cannot tell which state %s keeps per parameter (a step on "
                             "a scratch parameter failed), so it cannot average all of it; "
                             "name the state tensors in LocalSGD's average_state, e.g. "
                             "('exp_avg',)" % (who, kind))
        return
    if selection == ALL:
        return
    kept = _shaped_names(fresh)
    missing = [n for n in selection if n not in kept]
    if missing:
        raise ValueError("%s: average_state asks for %s, which %s (param group %d) does not "
                         "keep per parameter; it keeps %s"
                         % (who, ", ".join(repr(n) for n in missing), kind, index,
                            ", ".join(repr(n) for n in kept) or "nothing"))


def _new_state(fresh, p):
    """The state the optimizer would create for `p`: the probe's `fresh` state at
    `p`'s shape (each such entry is one constant, the probe having seen zeros), with
    the step count at 0. Without a probe: nothing besides what the caller adds."""
    out = {}
    for name, v in (fresh or {}).items():
        if isinstance(v, torch.Tensor) and tuple(v.shape) == _PROBE_SHAPE:
            out[name] = torch.empty_like(p, dtype=v.dtype).fill_(v.reshape(-1)[0])
        elif name == "step":
            out[name] = torch.zeros_like(v) if isinstance(v, torch.Tensor) else type(v)(0)
        else:
            out[name] = v.clone() if isinstance(v, torch.Tensor) else v
    return out


def complete_state(optimizer, params, plan):
    """Creates the averaged state of every parameter that has none yet (no gradient so
    far on this rank): as the optimizer would at its first step, zeros for SGD's
    momentum and Adam's moments, before a restart averages it. A parameter without
    any state gets all of it, so the optimizer's next step takes it as started."""
    for p in params:
        names, fresh = plan[p]
        state = optimizer.state.get(p)
        if state is not None and all(n in state for n in names):
            continue
        new = _new_state(fresh, p)
        if not state:
            optimizer.state[p] = state = new
        for n in names:
            if n not in state:
                state[n] = new[n] if n in new else torch.zeros_like(p)


def state_tensors(optimizer, params, plan):
    """The optimizer state a restart averages for `params`, in a fixed order (after
    complete_state)."""
    out = []
    for p in params:
        state = optimizer.state[p]
        for n in plan[p][0]:
            t = state[n]
            if not isinstance(t, torch.Tensor) or not t.is_floating_point():
                raise ValueError("average_state: %s of a parameter is %s, not a floating-point "
                                 "tensor" % (n, type(t).__name__))
            out.append(t.detach())
    return out
