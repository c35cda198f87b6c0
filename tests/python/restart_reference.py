"""Plain references for the restart tests: N workers simulated in one process with
numpy in float64, written from the papers' equations, independent of braid and of
torch's optimizers.

The model is a linear layer, out = W x + b, with the loss
0.5 * mean_j ||W x_j + b - y_j||^2 on worker r's batch for step t; its gradient is
written out below. Targets depend on the rank, so the workers drift apart between
restarts. A worker's state is a list of arrays [W, b] (parameters, momentum, ...).
"""

import numpy as np

IN, OUT, BATCH = 4, 3, 6


def start():
    """[W0, b0]: the same starting point on every worker."""
    g = np.random.default_rng(7)
    return [g.standard_normal((OUT, IN)) * 0.5, g.standard_normal(OUT) * 0.1]


def batch(rank, step):
    """Worker `rank`'s (inputs, targets) for local step `step` (counted from 1)."""
    g = np.random.default_rng(1000 + 97 * step + rank)
    return g.standard_normal((BATCH, IN)), g.standard_normal((BATCH, OUT)) + rank


def grad(x, rank, step):
    W, b = x
    X, Y = batch(rank, step)
    E = X @ W.T + b - Y
    return [E.T @ X / BATCH, E.mean(0)]


def zeros_like(x):
    return [np.zeros_like(a) for a in x]


def mean(states):
    """The exact average over the workers of a list of states."""
    return [sum(s[k] for s in states) / len(states) for k in range(len(states[0]))]


def momentum_step(x, u, g, lr, beta, nesterov):
    """PR-SGD-Momentum's local step: u = beta u + g; Option I: x -= lr u;
    Option II (Nesterov): x -= lr (beta u + g)."""
    u = [beta * uk + gk for uk, gk in zip(u, g)]
    d = [beta * uk + gk for uk, gk in zip(u, g)] if nesterov else u
    return [xk - lr * dk for xk, dk in zip(x, d)], u


def local_momentum_sgd(n, steps, lr, beta, nesterov, period, average_u, warmup=0):
    """Local momentum SGD on n workers; after `warmup` steps of synchronous SGD
    (averaged gradient), every `period` steps x = avg(x) (and u = avg(u) when
    `average_u`: PR-SGD-Momentum). Returns, for t = 1..steps, [(x, u) per worker]."""
    xs = [start() for _ in range(n)]
    us = [zeros_like(xs[0]) for _ in range(n)]
    out = []
    for t in range(1, steps + 1):
        if t <= warmup:
            g = mean([grad(xs[r], r, t) for r in range(n)])
            gs = [g] * n
        else:
            gs = [grad(xs[r], r, t) for r in range(n)]
        for r in range(n):
            xs[r], us[r] = momentum_step(xs[r], us[r], gs[r], lr, beta, nesterov)
        if t > warmup and (t - warmup) % period == 0:
            xs = [mean(xs)] * n
            if average_u:
                us = [mean(us)] * n
        out.append([(xs[r], us[r]) for r in range(n)])
    return out


def sync_momentum_sgd(n, steps, lr, beta, nesterov):
    """Synchronous momentum SGD on the gradient averaged over n workers: [x per t]."""
    x, u, out = start(), zeros_like(start()), []
    for t in range(1, steps + 1):
        g = mean([grad(x, r, t) for r in range(n)])
        x, u = momentum_step(x, u, g, lr, beta, nesterov)
        out.append(x)
    return out


def local_adam(n, steps, lr, period, betas=(0.9, 0.999), eps=1e-8):
    """Local Adam; every `period` steps x, m and v are averaged (average_state="all").
    Returns [(x, m, v) per worker] after the last step."""
    b1, b2 = betas
    xs = [start() for _ in range(n)]
    ms = [zeros_like(xs[0]) for _ in range(n)]
    vs = [zeros_like(xs[0]) for _ in range(n)]
    for t in range(1, steps + 1):
        for r in range(n):
            g = grad(xs[r], r, t)
            ms[r] = [b1 * m + (1 - b1) * gk for m, gk in zip(ms[r], g)]
            vs[r] = [b2 * v + (1 - b2) * gk * gk for v, gk in zip(vs[r], g)]
            mhat = [m / (1 - b1 ** t) for m in ms[r]]
            vhat = [v / (1 - b2 ** t) for v in vs[r]]
            xs[r] = [x - lr * mh / (np.sqrt(vh) + eps) for x, mh, vh in zip(xs[r], mhat, vhat)]
        if t % period == 0:
            xs, ms, vs = [mean(xs)] * n, [mean(ms)] * n, [mean(vs)] * n
    return [(xs[r], ms[r], vs[r]) for r in range(n)]


def slowmo(n, steps, lr_at, beta, tau, alpha, beta_slow, nesterov, base_state):
    """SlowMo over local momentum SGD (heavy ball, momentum `beta`, learning rate
    lr_at(t)). Every tau steps: xbar = avg(x); s = beta_slow s + (x_old - xbar) / lr;
    x_old -= alpha lr s; x = x_old (nesterov: x_old - alpha lr beta_slow s); the base
    momentum is kept, reset to zero or averaged. Returns [(x, u) per worker] per t."""
    xs = [start() for _ in range(n)]
    us = [zeros_like(xs[0]) for _ in range(n)]
    x_old, s, out = start(), zeros_like(start()), []
    for t in range(1, steps + 1):
        lr = lr_at(t)
        for r in range(n):
            xs[r], us[r] = momentum_step(xs[r], us[r], grad(xs[r], r, t), lr, beta, False)
        if t % tau == 0:
            xbar = mean(xs)
            s = [beta_slow * sk + (xo - xb) / lr for sk, xo, xb in zip(s, x_old, xbar)]
            x_old = [xo - alpha * lr * sk for xo, sk in zip(x_old, s)]
            look = alpha * lr * beta_slow if nesterov else 0.0
            xs = [[xo - look * sk for xo, sk in zip(x_old, s)]] * n
            if base_state == "reset":
                us = [zeros_like(x_old) for _ in range(n)]
            elif base_state == "average":
                us = [mean(us)] * n
        out.append([(xs[r], us[r]) for r in range(n)])
    return out


def bmuf(n, steps, lr, beta, tau, eta, zeta, nesterov):
    """BMUF in its own terms (Chen and Huo, 2016), over local momentum SGD with a
    constant learning rate: every tau steps G = avg(x) - x_old;
    Delta = eta Delta + zeta G; x_old += Delta; the next block starts from x_old
    (classic block momentum) or x_old + eta Delta (Nesterov). [(x, u) per worker] per t."""
    xs = [start() for _ in range(n)]
    us = [zeros_like(xs[0]) for _ in range(n)]
    x_old, delta, out = start(), zeros_like(start()), []
    for t in range(1, steps + 1):
        for r in range(n):
            xs[r], us[r] = momentum_step(xs[r], us[r], grad(xs[r], r, t), lr, beta, False)
        if t % tau == 0:
            g = [xb - xo for xb, xo in zip(mean(xs), x_old)]
            delta = [eta * d + zeta * gk for d, gk in zip(delta, g)]
            x_old = [xo + d for xo, d in zip(x_old, delta)]
            xs = [[xo + (eta * d if nesterov else 0.0) for xo, d in zip(x_old, delta)]] * n
        out.append([(xs[r], us[r]) for r in range(n)])
    return out
