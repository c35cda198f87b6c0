"""braid.torch.GMC / MDSGD / DGC against a reference written here from the equations
(numpy, float64), which simulates all N ranks in one process: every rank's gradient
is a deterministic function of the shared parameters, the rank and the step; each
rank's top-k is found by sorting; every rank's error memory and momentum is tracked.
Every rank runs its optimizer on its own gradient and compares the parameters (the
same on every rank) with the reference after every step.

Also: GMC with density 1 is heavy-ball momentum SGD on the averaged gradient
(torch.optim.SGD through DistributedOptimizer); an LR scheduler and gradient
clipping; a parameter without a gradient in some steps; state_dict round trips in
the middle of a run resume bit-exactly; DGC's warm-up of the density; the bytes in
braid.stats().

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/test_torch_sparse_optim.py.
"""

import copy
import io
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import braid  # noqa: E402
import restart_reference as lin  # noqa: E402  (the linear model's batches and gradient)

pytestmark = pytest.mark.skipif(not hasattr(braid.ops, "GMC"),
                                reason="braid.ops.GMC is not built yet")

LR, BETA = 0.05, 0.9
TOL = 1e-10  # float64; only the order of the additions differs
EXTRA_SHAPE = (2, 3)  # a 2-D parameter besides the linear layer's W and b


# ---- the model: lin's linear layer plus a parameter `extra` with a linear loss ----

def extra_coef(rank, step):
    return np.random.default_rng(5000 + 31 * step + rank).standard_normal(EXTRA_SHAPE)


def start():
    """[W, b, extra] at the start, the same on every rank."""
    extra = np.random.default_rng(11).standard_normal(EXTRA_SHAPE) * 0.3
    return lin.start() + [extra]


def always(step):
    return True


def odd_steps(step):
    return step % 2 == 1


def grad(w, rank, step, extra_used=always):
    """Rank `rank`'s gradient at step `step` (from 1): lin's, and for `extra` the
    coefficients of its linear loss, or zero in a step where it is not used."""
    g = lin.grad(w[:2], rank, step)
    g.append(extra_coef(rank, step) if extra_used(step) else np.zeros(EXTRA_SHAPE))
    return g


class Extra(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(EXTRA_SHAPE, dtype=torch.float64))


class Net(torch.nn.Module):
    """Parameters in the reference's order: W, b, extra."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(lin.IN, lin.OUT).double()
        self.tail = Extra()
        w0, b0, e0 = start()
        with torch.no_grad():
            self.lin.weight.copy_(torch.from_numpy(w0))
            self.lin.bias.copy_(torch.from_numpy(b0))
            self.extra.copy_(torch.from_numpy(e0))

    @property
    def extra(self):
        return self.tail.weight

    def loss(self, rank, step, extra_used=always):
        x, y = lin.batch(rank, step)
        out = self.lin(torch.from_numpy(x))
        loss = 0.5 * ((out - torch.from_numpy(y)) ** 2).sum(1).mean()
        if extra_used(step):
            loss = loss + (self.extra * torch.from_numpy(extra_coef(rank, step))).sum()
        return loss


def backward(model, opt, rank, step, extra_used=always):
    opt.zero_grad()
    model.loss(rank, step, extra_used).backward()


# ---- the reference ----

def k_of(length, density):
    return min(length, math.ceil(density * length))


def topk_mask(flat, k):
    """The k largest |flat| (ties: the smaller index first), as a boolean mask."""
    order = np.argsort(-np.abs(flat), kind="stable")[:k]
    mask = np.zeros(flat.shape, bool)
    mask[order] = True
    return mask


def select(zs, density, scope, dense):
    """Masks of what a rank sends from each tensor of zs."""
    if scope == "global":
        flat = np.concatenate([z.reshape(-1) for z in zs])
        mask = topk_mask(flat, k_of(flat.size, density))
        out, off = [], 0
        for z in zs:
            out.append(mask[off:off + z.size].reshape(z.shape))
            off += z.size
        return out
    return [np.ones(z.shape, bool) if d else
            topk_mask(z.reshape(-1), k_of(z.size, density)).reshape(z.shape)
            for z, d in zip(zs, dense)]


def clip(g, max_norm):
    """torch.nn.utils.clip_grad_norm_ on one rank's gradient."""
    norm = math.sqrt(sum(float((a ** 2).sum()) for a in g))
    coef = min(1.0, max_norm / (norm + 1e-6))
    return [a * coef for a in g]


def reference(kind, n, steps, lr_at=lambda t: LR, density_at=lambda t: 0.25, beta=BETA,
              nesterov=False, weight_decay=0.0, scope="tensor", dense=None,
              extra_used=always, clip_norm=None, dgc_clip=0.0):
    """The parameters after each step 1..steps (the same on every rank), from the
    equations, with g' = g + weight_decay * w for each rank's gradient g (clipped
    first, as clip_grad_norm_ does, when clip_norm):
      GMC:    z = e + lr g' - beta (w_t - w_{t-1}); sent = topk(z); e = z - sent;
              w -= avg(sent)
      M-DSGD: v = beta v + g'; z = e + lr v (nesterov: lr (beta v + g')); as GMC
      DGC:    u = beta u + g'; v = v + u (nesterov: u = beta (u + g'); v = v + u + g');
              sent = topk(v); v[sent] = u[sent] = 0; w -= lr avg(sent).
              dgc_clip > 0: g' scaled by min(1, dgc_clip / sqrt(n) / ||g'||) first.
              Tensors flagged dense: momentum SGD on avg(g'), U = beta U + avg(g'),
              w -= lr U (nesterov: lr (avg(g') + beta U))."""
    w = start()
    dense = dense or [False] * len(w)
    zeros = lambda: [np.zeros_like(a) for a in w]  # noqa: E731
    e = [zeros() for _ in range(n)]  # error memory (DGC: the accumulation v)
    u = [zeros() for _ in range(n)]  # local momentum (M-DSGD, DGC)
    last = zeros()  # GMC: the last update, -(w_t - w_{t-1}); DGC: dense tensors' momentum
    out = []
    for t in range(1, steps + 1):
        lr, density = lr_at(t), density_at(t)
        sents, dense_grads = [], []
        for r in range(n):
            g = grad(w, r, t, extra_used)
            if clip_norm is not None:
                g = clip(g, clip_norm)
            g = [gk + weight_decay * wk for gk, wk in zip(g, w)]
            if dgc_clip > 0:
                norm = math.sqrt(sum(float((a ** 2).sum()) for a in g))
                coef = min(1.0, dgc_clip / math.sqrt(n) / norm) if norm > 0 else 1.0
                g = [a * coef for a in g]
            dense_grads.append(g)
            if kind == "gmc":
                z = [ek + lr * gk + beta * lk for ek, gk, lk in zip(e[r], g, last)]
            elif kind == "mdsgd":
                u[r] = [beta * uk + gk for uk, gk in zip(u[r], g)]
                d = [beta * uk + gk for uk, gk in zip(u[r], g)] if nesterov else u[r]
                z = [ek + lr * dk for ek, dk in zip(e[r], d)]
            elif nesterov:
                u[r] = [beta * (uk + gk) for uk, gk in zip(u[r], g)]
                z = [ek + uk + gk for ek, uk, gk in zip(e[r], u[r], g)]
            else:
                u[r] = [beta * uk + gk for uk, gk in zip(u[r], g)]
                z = [ek + uk for ek, uk in zip(e[r], u[r])]
            masks = select(z, density, scope, dense)
            sents.append([np.where(m, zk, 0.0) for m, zk in zip(masks, z)])
            e[r] = [np.where(m, 0.0, zk) for m, zk in zip(masks, z)]
            if kind == "dgc":
                u[r] = [np.where(m, 0.0, uk) for m, uk in zip(masks, u[r])]
        avg = [sum(s[k] for s in sents) / n for k in range(len(w))]
        update = [lr * a for a in avg] if kind == "dgc" else avg
        if kind == "dgc":
            for k, d in enumerate(dense):
                if d:
                    avg_g = sum(g[k] for g in dense_grads) / n
                    last[k] = beta * last[k] + avg_g
                    update[k] = lr * (avg_g + beta * last[k] if nesterov else last[k])
        else:
            last = update
        w = [wk - dk for wk, dk in zip(w, update)]
        out.append(w)
    return out


def assert_params(model, expected, what, tol=TOL):
    for k, (p, a) in enumerate(zip(model.parameters(), expected)):
        np.testing.assert_allclose(p.detach().numpy(), a, rtol=tol, atol=tol,
                                   err_msg="%s, parameter %d" % (what, k))


def make(hvd, kind, params, **kw):
    cls = {"gmc": hvd.GMC, "mdsgd": hvd.MDSGD, "dgc": hvd.DGC}[kind]
    kw.setdefault("lr", LR)
    kw.setdefault("momentum", BETA)
    kw.setdefault("density", 0.25)
    return cls(params, **kw)


DGC_DENSE = [False, True, False]  # DGC sends b (1-D) dense


# ---- against the reference ----

CASES = {
    "gmc": dict(kind="gmc"),
    "gmc-wd": dict(kind="gmc", weight_decay=0.01),
    "gmc-global": dict(kind="gmc", scope="global"),
    "gmc-density0.5": dict(kind="gmc", density=0.5),
    "mdsgd": dict(kind="mdsgd"),
    "mdsgd-nesterov": dict(kind="mdsgd", nesterov=True),
    "mdsgd-wd": dict(kind="mdsgd", weight_decay=0.01),
    "dgc": dict(kind="dgc"),
    "dgc-nesterov": dict(kind="dgc", nesterov=True),
    "dgc-wd": dict(kind="dgc", weight_decay=0.01),
    "dgc-clip": dict(kind="dgc", clip_norm=0.3),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference(hvd, world, case):
    rank, n = world
    kw = dict(CASES[case])
    kind = kw.pop("kind")
    density = kw.get("density", 0.25)
    ref_kw = {k: v for k, v in kw.items() if k in ("nesterov", "weight_decay", "scope")}
    if "clip_norm" in kw:
        ref_kw["dgc_clip"] = kw["clip_norm"]
    steps = 6
    expect = reference(kind, n, steps, density_at=lambda t: density,
                       dense=DGC_DENSE if kind == "dgc" else None, **ref_kw)
    model = Net()
    opt = make(hvd, kind, model.parameters(), **kw)
    for t in range(1, steps + 1):
        backward(model, opt, rank, t)
        opt.step()
        assert_params(model, expect[t - 1], "%s, step %d" % (case, t))
    assert opt.steps == steps


def test_gmc_density_one_is_heavy_ball_momentum_sgd(hvd, world):
    """GMC keeping everything: w_{t+1} = w_t - lr avg(g) + beta (w_t - w_{t-1}), which
    is torch's SGD(momentum) on the averaged gradient at a constant lr."""
    rank, n = world
    a, b = Net(), Net()
    gmc = hvd.GMC(a.parameters(), lr=LR, momentum=BETA, density=1.0)
    sgd = hvd.DistributedOptimizer(torch.optim.SGD(b.parameters(), lr=LR, momentum=BETA),
                                   named_parameters=b.named_parameters(), op=hvd.Average)
    for t in range(1, 8):
        for model, opt in ((a, gmc), (b, sgd)):
            backward(model, opt, rank, t)
            opt.step()
        assert_params(a, [p.detach().numpy() for p in b.parameters()], "step %d" % t, 1e-12)


def test_lr_scheduler_and_gradient_clipping(hvd, world):
    rank, n = world
    steps, max_norm = 6, 0.5
    expect = reference("gmc", n, steps, lr_at=lambda t: LR * 0.5 ** ((t - 1) // 2),
                       clip_norm=max_norm)
    model = Net()
    opt = hvd.GMC(model.parameters(), lr=LR, momentum=BETA, density=0.25)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for t in range(1, steps + 1):
        backward(model, opt, rank, t)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        opt.step()
        sched.step()
        assert_params(model, expect[t - 1], "step %d" % t)
    assert opt.param_groups[0]["lr"] == pytest.approx(LR * 0.5 ** 3)


@pytest.mark.parametrize("kind", ["gmc", "mdsgd", "dgc"])
def test_parameter_without_gradient_contributes_zero(hvd, world, kind):
    """`extra` gets no gradient on even steps (.grad is None after zero_grad): it
    counts as zero, and the momentum and memory it holds still move it."""
    rank, n = world
    steps = 6
    expect = reference(kind, n, steps, extra_used=odd_steps,
                       dense=DGC_DENSE if kind == "dgc" else None)
    model = Net()
    opt = make(hvd, kind, model.parameters())
    for t in range(1, steps + 1):
        backward(model, opt, rank, t, extra_used=odd_steps)
        assert (model.extra.grad is None) == (t % 2 == 0)
        opt.step()
        assert_params(model, expect[t - 1], "step %d" % t)
        if t % 2 == 0:
            assert torch.count_nonzero(model.extra.grad) == 0
    if kind == "gmc":  # moved on an even step: by the global momentum
        assert not np.array_equal(expect[4][2], expect[5][2])


def _save(opt):
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


def _run(model, opt, rank, steps, sched=None):
    for t in steps:
        backward(model, opt, rank, t)
        opt.step()
        if sched is not None:
            sched.step()
    return [p.detach().clone() for p in model.parameters()]


def _assert_equal(got, expected, what):
    for k, (g, e) in enumerate(zip(got, expected)):
        assert torch.equal(g, e), "%s: parameter %d differs by %g" % (
            what, k, float((g - e).abs().max()))


@pytest.mark.parametrize("kind", ["gmc", "mdsgd", "dgc"])
def test_state_dict_resumes_bit_exactly(hvd, world, kind):
    """Saved after 3 steps (through torch.save), loaded into a fresh model and
    optimizer (before its first step) and into the same optimizer (after steps):
    both continue exactly as the uninterrupted run."""
    rank, n = world
    warm = dict(warmup_densities=[0.5, 0.25], warmup_steps_per_stage=2) if kind == "dgc" else {}
    model = Net()
    opt = make(hvd, kind, model.parameters(), density=0.125, **warm)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    _run(model, opt, rank, range(1, 4), sched)
    saved_model = copy.deepcopy(model.state_dict())
    saved_opt, saved_sched = _save(opt), copy.deepcopy(sched.state_dict())
    assert saved_opt["braid_sparse"]["step"] == 3
    straight = _run(model, opt, rank, range(4, 8), sched)

    # A fresh optimizer: its op has no buffers yet when the state is loaded.
    fresh = Net()
    fresh.load_state_dict(saved_model)
    opt2 = make(hvd, kind, fresh.parameters(), density=0.125, **warm)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    assert opt2.steps == 3
    _assert_equal(_run(fresh, opt2, rank, range(4, 8), sched2), straight, "fresh optimizer")

    # The same optimizer, rewound: its op has buffers already.
    model.load_state_dict(saved_model)
    opt.load_state_dict(saved_opt)
    sched.load_state_dict(saved_sched)
    _assert_equal(_run(model, opt, rank, range(4, 8), sched), straight, "rewound optimizer")

    # state_dict of a loaded optimizer before its first step gives back what was loaded.
    again = make(hvd, kind, Net().parameters(), density=0.125, **warm)
    again.load_state_dict(saved_opt)
    sd = again.state_dict()["braid_sparse"]
    for g_saved, g_again in zip(saved_opt["braid_sparse"]["groups"], sd["groups"]):
        assert sorted(g_saved["state"]) == sorted(g_again["state"])
        for name in g_saved["state"]:
            assert torch.equal(g_saved["state"][name], g_again["state"][name])


def test_state_dict_holds_the_op_state(hvd, world):
    rank, n = world
    model = Net()
    opt = hvd.GMC(model.parameters(), lr=LR, density=0.25)
    assert opt.state_dict()["braid_sparse"]["groups"][0]["state"] == {}  # nothing yet
    _run(model, opt, rank, range(1, 3))
    ours = opt.state_dict()["braid_sparse"]
    assert ours["kind"] == "gmc" and ours["step"] == 2
    (group,) = ours["groups"]
    numel = sum(p.numel() for p in model.parameters())
    assert group["key"] == "float64.cpu" and group["numel"] == numel
    assert group["state"], "the op exposes no state"
    for name, t in group["state"].items():
        assert t.numel() == numel, name
    with pytest.raises(ValueError, match="mdsgd optimizer"):
        sd = opt.state_dict()
        sd["braid_sparse"]["kind"] = "mdsgd"
        hvd.GMC(Net().parameters(), lr=LR).load_state_dict(sd)


def test_dgc_warmup_schedule(hvd, world):
    rank, n = world
    densities, per_stage, final = [0.5, 0.25], 2, 0.125
    expect = reference("dgc", n, 7, dense=DGC_DENSE,
                       density_at=lambda t: ([0.5, 0.5, 0.25, 0.25] + [final] * 9)[t - 1])
    model = Net()
    opt = hvd.DGC(model.parameters(), lr=LR, momentum=BETA, density=final,
                  warmup_densities=densities, warmup_steps_per_stage=per_stage)
    assert [opt.density_at(s) for s in range(6)] == [0.5, 0.5, 0.25, 0.25, final, final]
    sparse = [p for p, d in zip(model.parameters(), DGC_DENSE) if not d]
    for t in range(1, 8):
        backward(model, opt, rank, t)
        opt.step()
        assert_params(model, expect[t - 1], "step %d" % t)
        density = opt.density_at(t - 1)
        assert opt.last_stats["pairs"] == sum(k_of(p.numel(), density) for p in sparse)


def test_exponential_warmup_is_dgc_papers(hvd):
    got = hvd.exponential_warmup(0.001)
    sparsity = [1 - d for d in got]
    assert sparsity == pytest.approx([0.75, 0.9375, 0.984, 0.996], abs=2e-3)
    opt = hvd.DGC(Net().parameters(), lr=LR, density=0.001, warmup_densities="exponential",
                  warmup_steps_per_stage=10)
    assert opt.density_at(0) == 0.25 and opt.density_at(39) == got[3]
    assert opt.density_at(40) == 0.001


@pytest.mark.parametrize("kind", ["gmc", "dgc"])
def test_stats_count_pairs(hvd, world, kind):
    """braid.stats() shows the values and indices each step sends: per rank, the
    same as the op's last_stats."""
    rank, n = world
    model = Net()
    opt = make(hvd, kind, model.parameters(), density=0.25, dense_fallback=False)
    backward(model, opt, rank, 1)
    before = braid.stats()
    opt.step()
    after = braid.stats()
    last = opt.last_stats
    sent = {k: after["sparse_allreduce"].get(k, 0) - before["sparse_allreduce"].get(k, 0)
            for k in ("bytes", "index_bytes")}
    assert sent["bytes"] == last["value_bytes"]
    assert sent["index_bytes"] == last["index_bytes"]
    dense = after["allreduce"]["bytes"] - before["allreduce"]["bytes"]
    assert dense == last["dense_bytes"]
    if kind == "dgc":  # b goes through the dense allreduce
        assert dense == 8 * model.lin.bias.numel()
    sizes = [p.numel() for p in model.parameters()]
    pairs = sum(k_of(s, 0.25) for s in sizes)
    if kind == "gmc":
        assert last["pairs"] == pairs
        assert last["value_bytes"] == 8 * pairs  # float64 values


def test_arguments_are_checked(hvd):
    model = Net()
    with pytest.raises(ValueError, match="density"):
        hvd.GMC(model.parameters(), lr=LR, density=0.0)
    with pytest.raises(ValueError, match="warmup_steps_per_stage"):
        hvd.DGC(model.parameters(), lr=LR, warmup_densities=[0.5])
    groups = [{"params": [model.lin.weight]}, {"params": [model.lin.bias, model.extra],
                                               "lr": 2 * LR}]
    opt = hvd.MDSGD(groups, lr=LR)
    with pytest.raises(ValueError, match="same lr"):
        opt.step()  # raises before any collective, on every rank alike
    with pytest.raises(NotImplementedError):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))]})


def test_threshold_selection_matches_topk_here(hvd, world):
    """DGC's sampled threshold gives exactly top-k whenever k elements reach it (on
    these small tensors they do): the same parameters as the reference."""
    rank, n = world
    expect = reference("gmc", n, 4)
    model = Net()
    opt = hvd.GMC(model.parameters(), lr=LR, momentum=BETA, density=0.25,
                  selection="threshold", sample_fraction=1.0)
    for t in range(1, 5):
        backward(model, opt, rank, t)
        opt.step()
        assert_params(model, expect[t - 1], "step %d" % t)


def test_one_op_per_dtype(hvd, world):
    """float64 and float32 parameters: two ops (two sparse allreduces), the float64
    ones as the reference has them, and one state group each in the state dict."""
    rank, n = world
    expect = reference("mdsgd", n, 3)
    model, other = Net(), torch.nn.Linear(3, 2)  # float32
    opt = hvd.MDSGD(list(model.parameters()) + list(other.parameters()), lr=LR,
                    momentum=BETA, density=0.25)
    for t in range(1, 4):
        backward(model, opt, rank, t)  # `other` gets no gradient: zeros
        opt.step()
        assert_params(model, expect[t - 1], "step %d" % t)
    groups = opt.state_dict()["braid_sparse"]["groups"]
    assert [g["key"] for g in groups] == ["float64.cpu", "float32.cpu"]
    assert groups[1]["numel"] == 3 * 2 + 2
    assert opt.last_stats["pairs"] == sum(k_of(p.numel(), 0.25) for p in model.parameters()) \
        + sum(k_of(p.numel(), 0.25) for p in other.parameters())
