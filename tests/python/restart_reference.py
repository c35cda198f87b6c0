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
    """SlowMo (Wang et al., ICLR 2020, Algorithm 1) over local momentum SGD (heavy
    ball, momentum `beta`, learning rate gamma_t = lr_at(t)). x0 is x_{t,0}, where
    outer iteration t starts on every worker, u the slow momentum. After tau local
    steps from x_{t,0}:

        u_{t+1}    = beta_slow u_t + (x_{t,0} - avg(x_{t,tau})) / gamma_t
        x_{t+1,0}  = x_{t,0} - alpha gamma_t u_{t+1}

    and with `nesterov` the slow step is a Nesterov momentum step on the same slow
    gradient: x_{t+1,0} = x_{t,0} - alpha gamma_t (beta_slow u_{t+1} + (x_{t,0} -
    avg(x_{t,tau})) / gamma_t). The base momentum is kept, reset to zero or averaged.
    Returns [(x, u) per worker] per t."""
    xs = [start() for _ in range(n)]
    us = [zeros_like(xs[0]) for _ in range(n)]
    x0, u, out = start(), zeros_like(start()), []
    for t in range(1, steps + 1):
        gamma = lr_at(t)
        for r in range(n):
            xs[r], us[r] = momentum_step(xs[r], us[r], grad(xs[r], r, t), gamma, beta, False)
        if t % tau == 0:
            slow_grad = [(a - b) / gamma for a, b in zip(x0, mean(xs))]
            u = [beta_slow * uk + gk for uk, gk in zip(u, slow_grad)]
            direction = ([beta_slow * uk + gk for uk, gk in zip(u, slow_grad)] if nesterov
                         else u)
            x0 = [a - alpha * gamma * dk for a, dk in zip(x0, direction)]
            xs = [x0] * n
            if base_state == "reset":
                us = [zeros_like(x0) for _ in range(n)]
            elif base_state == "average":
                us = [mean(us)] * n
        out.append([(xs[r], us[r]) for r in range(n)])
    return out


def bmuf_block(w, delta, block_start, xbar, eta, zeta, nesterov):
    """One block update of BMUF (Chen and Huo, ICASSP 2016) in its own terms, on
    lists of arrays. The block gradient is measured from where the block started:
    G(t) = xbar - block_start; Delta(t) = eta Delta(t-1) + zeta G(t);
    W(t) = W(t-1) + Delta(t). The next block starts from W(t) + eta Delta(t)
    (Nesterov block momentum, BMUF-NBM) or from W(t) (classic block momentum).
    Returns (W, Delta, next block start)."""
    g = [xb - st for xb, st in zip(xbar, block_start)]
    delta = [eta * d + zeta * gk for d, gk in zip(delta, g)]
    w = [wk + d for wk, d in zip(w, delta)]
    return w, delta, ([wk + eta * d for wk, d in zip(w, delta)] if nesterov else w)


def bmuf(n, steps, lr, beta, tau, eta, zeta, nesterov):
    """BMUF over local momentum SGD with a constant learning rate: every tau steps one
    bmuf_block on the average, and every worker starts the next block from its
    start. [(x, u) per worker] per t."""
    xs = [start() for _ in range(n)]
    us = [zeros_like(xs[0]) for _ in range(n)]
    w, delta, block_start, out = start(), zeros_like(start()), start(), []
    for t in range(1, steps + 1):
        for r in range(n):
            xs[r], us[r] = momentum_step(xs[r], us[r], grad(xs[r], r, t), lr, beta, False)
        if t % tau == 0:
            w, delta, block_start = bmuf_block(w, delta, block_start, mean(xs), eta, zeta,
                                               nesterov)
            xs = [block_start] * n
        out.append([(xs[r], us[r]) for r in range(n)])
    return out


# ---- least squares with a fixed data set per worker (the convergence tests) ----

LS_ROWS = 32


def ls_data(rank):
    """Worker `rank`'s fixed (inputs, targets): its own linear model plus an offset,
    so the workers disagree about the optimum."""
    g = np.random.default_rng(500 + rank)
    X = g.standard_normal((LS_ROWS, IN))
    W = g.standard_normal((OUT, IN))
    return X, X @ W.T + 0.1 * g.standard_normal((LS_ROWS, OUT)) + rank


def ls_loss(x, n):
    """The global least-squares loss of x = [W, b]: the mean of the n workers' losses
    0.5 * mean_j ||W x_j + b - y_j||^2."""
    W, b = x
    return float(np.mean([0.5 * ((X @ W.T + b - Y) ** 2).sum(1).mean()
                          for X, Y in (ls_data(r) for r in range(n))]))


def ls_min_loss(n):
    """The smallest global loss, from the normal equations of all the workers' rows."""
    X = np.vstack([ls_data(r)[0] for r in range(n)])
    Y = np.vstack([ls_data(r)[1] for r in range(n)])
    A = np.hstack([X, np.ones((len(X), 1))])
    sol = np.linalg.lstsq(A, Y, rcond=None)[0]
    return ls_loss([sol[:IN].T, sol[IN]], n)


def ls_grad(x, rank):
    W, b = x
    X, Y = ls_data(rank)
    E = X @ W.T + b - Y
    return [E.T @ X / len(X), E.mean(0)]


def bmuf_least_squares(n, blocks, tau, lr, eta, zeta, nesterov, measure_from="start"):
    """BMUF on the least-squares problem: every worker takes tau full-batch gradient
    steps (learning rate lr) from the block's start, then one bmuf_block. Returns the
    global loss at the start of each block (blocks + 1 values). measure_from="w"
    measures the block gradient from W(t-1) instead of the block's start: a misreading
    of the paper that counts Nesterov's look-ahead twice, kept to show that it
    diverges."""
    w, delta, block_start = start(), zeros_like(start()), start()
    losses = [ls_loss(block_start, n)]
    for _ in range(blocks):
        xs = []
        for r in range(n):
            x = block_start
            for _ in range(tau):
                x = [xk - lr * gk for xk, gk in zip(x, ls_grad(x, r))]
            xs.append(x)
        origin = block_start if measure_from == "start" else w
        w, delta, block_start = bmuf_block(w, delta, origin, mean(xs), eta, zeta, nesterov)
        losses.append(ls_loss(block_start, n))
    return losses
