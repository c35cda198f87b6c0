"""braid.ops.GMC, MDSGD and DGC on numpy arrays and torch CPU tensors, against a
numpy reference written here from the equations that simulates every rank (each
rank's gradients are a function of rank, step and index). Also: state() aliases
the op's buffers (writing into it restores a checkpoint), and the errors. Every
rank runs the same tests in order, e.g.
braidrun -np 2 python -m pytest -q tests/python/test_sparse_ops.py"""

import math
import zlib

import numpy as np
import pytest
import torch

import braid
import braid.ops as ops


@pytest.fixture(scope="module")
def world():
    braid.init()  # does nothing when another module started braid already
    yield braid.rank(), braid.size()


def grad(r, t, j, n):
    i = np.arange(n)
    return np.sin(0.37 * i + 1.3 * r + 0.71 * t + 0.13 * j) * (1.0 + (i * 7 + r) % 5)


def topk(x, k):
    """The k largest |x| (ties: the smaller index), ascending."""
    order = np.lexsort((np.arange(len(x)), -np.abs(x)))
    return np.sort(order[:k])


def k_of(density, n):
    return min(n, max(0, math.ceil(density * n)))


class Reference:
    """Every rank of M-DSGD, GMC or DGC in float64, in the op's flat layout (the
    sparse tensors in order, then the dense ones)."""

    def __init__(self, method, sizes, dense, ranks, w0, beta, nesterov=False, wd=0.0,
                 clip=0.0, scope="tensor"):
        self.method, self.n, self.beta, self.nesterov = method, ranks, beta, nesterov
        self.wd, self.clip, self.scope = wd, clip, scope
        dense = dense or [False] * len(sizes)
        self.order = [j for j in range(len(sizes)) if not dense[j]]
        self.order += [j for j in range(len(sizes)) if dense[j]]
        self.sizes, self.dense = sizes, dense
        self.offset = {}
        off = 0
        for j in self.order:
            self.offset[j] = off
            off += sizes[j]
        self.total = off
        self.sparse_total = sum(sizes[j] for j in self.order if not dense[j])
        self.w = self.flat(w0)
        self.e = [np.zeros(off) for _ in range(ranks)]
        self.a = [np.zeros(off) for _ in range(ranks)]
        self.U = np.zeros(off)

    def flat(self, tensors):
        out = np.zeros(self.total)
        for j in self.order:
            out[self.offset[j]:self.offset[j] + self.sizes[j]] = tensors[j]
        return out

    def dense_mask(self):
        m = np.zeros(self.total, dtype=bool)
        for j in self.order:
            if self.dense[j]:
                m[self.offset[j]:self.offset[j] + self.sizes[j]] = True
        return m

    def select(self, z, density):
        if self.scope == "global":
            return topk(z[:self.sparse_total], k_of(density, self.sparse_total))
        out = []
        for j in self.order:
            if not self.dense[j]:
                lo = self.offset[j]
                out.append(lo + topk(z[lo:lo + self.sizes[j]], k_of(density, self.sizes[j])))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def step(self, lr, density, grads):
        """grads[r]: rank r's list of tensors (registration order)."""
        dm = self.dense_mask()
        avg, dense_g = np.zeros(self.total), np.zeros(self.total)
        for r in range(self.n):
            gp = self.flat(grads[r]) + self.wd * self.w
            if self.clip > 0:
                limit = self.clip / math.sqrt(self.n)
                norm = np.linalg.norm(gp)
                if norm > limit:
                    gp = gp * (limit / norm)
            e, a = self.e[r], self.a[r]
            if self.method == "mdsgd":
                a[:] = self.beta * a + gp
                z = e + lr * (gp + self.beta * a if self.nesterov else a)
            elif self.method == "gmc":
                z = e + lr * gp + self.beta * self.U
            else:
                s = ~dm
                if self.nesterov:
                    a[s] = self.beta * (a[s] + gp[s])
                    e[s] = e[s] + a[s] + gp[s]
                else:
                    a[s] = self.beta * a[s] + gp[s]
                    e[s] = e[s] + a[s]
                z = e.copy()
                dense_g[dm] += gp[dm] / self.n
            chosen = self.select(z, density)
            sent = np.zeros(self.total)
            sent[chosen] = z[chosen]
            if self.method == "dgc":
                e[chosen] = 0.0
                a[chosen] = 0.0
            else:
                sent[dm] = z[dm]
                e[:] = z - sent
            avg += sent / self.n
        if self.method == "dgc":
            self.w[~dm] -= lr * avg[~dm]
            for r in range(self.n):
                self.a[r][dm] = self.beta * self.a[r][dm] + dense_g[dm]
            m = self.a[0][dm]
            self.w[dm] -= lr * (dense_g[dm] + self.beta * m if self.nesterov else m)
        else:
            self.w -= avg
            self.U = avg


def run(world, op, ref, sizes, steps, lr_of, density, density_of=None, dense=None, lib="numpy",
        dtype=np.float64, tol=1e-11):
    """Steps `op` and `ref` together; compares w, the memory and the momentum or the
    last update after every step, and that every rank holds the same w."""
    rank, size = world
    w0 = [0.5 * np.cos(0.3 * np.arange(n) + j) for j, n in enumerate(sizes)]
    if lib == "torch":
        tdt = torch.float64 if dtype == np.float64 else torch.float32
        params = [torch.tensor(w, dtype=tdt) for w in w0]
        grads = [torch.zeros(n, dtype=tdt) for n in sizes]
    else:
        params = [w.astype(dtype) for w in w0]
        grads = [np.zeros(n, dtype=dtype) for n in sizes]
    op.set_buffers(params, grads, dense=dense)
    names = {"gmc": ("memory", "last_update"), "mdsgd": ("memory", "momentum"),
             "dgc": ("accumulation", "momentum")}[ref.method]
    assert sorted(op.state()) == sorted(names)
    for t in range(1, steps + 1):
        for j, n in enumerate(sizes):
            g = grad(rank, t, j, n)
            grads[j][:] = torch.from_numpy(g) if lib == "torch" else g
        d = None if density_of is None else density_of(t)
        op.step(lr_of(t), density=d)
        ref.step(lr_of(t), density if d is None else d,
                 [[grad(r, t, j, n) for j, n in enumerate(sizes)] for r in range(size)])
        got = ref.flat([np.asarray(p, dtype=np.float64) for p in params])
        np.testing.assert_allclose(got, ref.w, rtol=tol, atol=tol, err_msg="w, step %d" % t)
        state = op.state()
        mem = ref.e[rank]
        np.testing.assert_allclose(state[names[0]], mem, rtol=tol, atol=tol)
        other = ref.U if ref.method == "gmc" else ref.a[rank]
        np.testing.assert_allclose(state[names[1]], other, rtol=tol, atol=tol)
        checks = braid.allgather(np.array([zlib.crc32(got.tobytes())], dtype=np.int64))
        assert len(set(np.asarray(checks).tolist())) == 1, "ranks differ"
    assert op.step_count == steps
    return params


@pytest.mark.parametrize("scope", ["tensor", "global"])
def test_gmc_numpy(world, scope):
    sizes = [37, 1, 100, 8]
    op = ops.GMC(0.1, momentum=0.9, weight_decay=0.01, scope=scope)
    w0 = [0.5 * np.cos(0.3 * np.arange(n) + j) for j, n in enumerate(sizes)]
    ref = Reference("gmc", sizes, None, world[1], w0, 0.9, wd=0.01, scope=scope)
    run(world, op, ref, sizes, 5, lambda t: 0.1 / t, 0.1)


@pytest.mark.parametrize("nesterov", [False, True])
def test_mdsgd_torch(world, nesterov):
    sizes = [50, 3, 20]
    op = ops.MDSGD(0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.001)
    w0 = [0.5 * np.cos(0.3 * np.arange(n) + j) for j, n in enumerate(sizes)]
    ref = Reference("mdsgd", sizes, None, world[1], w0, 0.9, nesterov=nesterov, wd=0.001)
    run(world, op, ref, sizes, 5, lambda t: 0.05, 0.1, lib="torch")


def test_gmc_torch_float32(world):
    sizes = [200, 30]
    op = ops.GMC(0.05, momentum=0.5)
    w0 = [0.5 * np.cos(0.3 * np.arange(n) + j) for j, n in enumerate(sizes)]
    ref = Reference("gmc", sizes, None, world[1], w0, 0.5)
    run(world, op, ref, sizes, 3, lambda t: 0.1, 0.05, lib="torch", dtype=np.float32, tol=2e-5)


@pytest.mark.parametrize("nesterov", [False, True])
def test_dgc_dense_clip_warmup(world, nesterov):
    sizes = [60, 5, 100]
    dense = [False, True, False]
    op = ops.DGC(0.01, momentum=0.9, nesterov=nesterov, weight_decay=0.001, clip_norm=1.0)
    w0 = [0.5 * np.cos(0.3 * np.arange(n) + j) for j, n in enumerate(sizes)]
    ref = Reference("dgc", sizes, dense, world[1], w0, 0.9, nesterov=nesterov, wd=0.001,
                    clip=1.0)
    warmup = [0.25, 0.0625, 0.015625]
    run(world, op, ref, sizes, 5, lambda t: 0.1, 0.01, density_of=lambda t: warmup[min(t, 3) - 1],
        dense=dense)


def test_density_one_gmc_is_heavy_ball(world):
    rank, size = world
    w = np.linspace(-1, 1, 40)
    g = np.zeros(40)
    op = ops.GMC(1.0, momentum=0.8)
    op.set_buffers([w], [g])
    W, prev = w.copy(), w.copy()
    for t in range(1, 5):
        g[:] = grad(rank, t, 0, 40)
        op.step(0.1)
        avg = np.mean([grad(r, t, 0, 40) for r in range(size)], axis=0)
        W, prev = W - 0.1 * avg + 0.8 * (W - prev), W
        np.testing.assert_allclose(w, W, rtol=1e-12, atol=1e-12)


def test_state_aliases_and_restores(world):
    rank, _ = world

    def steps(op, w, g, ts):
        for t in ts:
            g[:] = grad(rank, t, 0, 64)
            op.step(0.1)

    w, g = np.linspace(-1, 1, 64), np.zeros(64)
    a = ops.MDSGD(0.1, selection="randomk", seed=7)
    a.set_buffers([w], [g])
    steps(a, w, g, [1, 2])
    saved = {k: v.copy() for k, v in a.state().items()}
    saved_w = w.copy()
    steps(a, w, g, [3, 4])
    w2, g2 = saved_w.copy(), np.zeros(64)
    b = ops.MDSGD(0.1, selection="randomk", seed=7)
    b.set_buffers([w2], [g2])
    state = b.state()
    for k, v in saved.items():
        state[k][...] = v  # writing into the arrays restores the op's state
    b.step_count = 2
    steps(b, w2, g2, [3, 4])
    np.testing.assert_array_equal(w2, w)
    for k, v in a.state().items():
        np.testing.assert_array_equal(b.state()[k], v)
    mem = b.state()["memory"]
    mem[0] = 42.0
    assert b.state()["memory"][0] == 42.0


def test_stats_and_names(world):
    w, g = np.zeros(100), np.ones(100)
    op = ops.DGC(0.1, name="named_dgc")
    assert op.name == "sparse.named_dgc"
    op.set_buffers([w], [g])
    op.step(0.1)
    assert op.last_stats == {"pairs": 10, "value_bytes": 80, "index_bytes": 40,
                             "dense_bytes": 0}


def test_errors(world):
    op = ops.GMC(0.1)
    with pytest.raises(braid.BraidInvalidArgument, match="float32"):
        op.set_buffers([np.zeros(4)], [np.zeros(4, dtype=np.float32)])
    with pytest.raises(braid.BraidInvalidArgument, match="elements"):
        op.set_buffers([np.zeros(4)], [np.zeros(5)])
    with pytest.raises(braid.BraidInvalidArgument, match="gradients"):
        op.set_buffers([np.zeros(4), np.zeros(2)], [np.zeros(4)])
    with pytest.raises(braid.BraidInvalidArgument, match="dense flags"):
        op.set_buffers([np.zeros(4)], [np.zeros(4)], dense=[True, False])
    with pytest.raises(braid.BraidInvalidArgument, match="int32"):
        op.set_buffers([np.zeros(4, dtype=np.int32)], [np.zeros(4, dtype=np.int32)])
    with pytest.raises(braid.BraidInvalidArgument, match="no buffers"):
        op.step(0.1)
    with pytest.raises(braid.BraidInvalidArgument, match="selection"):
        ops.MDSGD(0.1, selection="largest")
    with pytest.raises(braid.BraidInvalidArgument, match="scope"):
        ops.DGC(0.1, scope="layer")
    with pytest.raises(braid.BraidInvalidArgument, match="density"):
        ops.GMC(1.5)
    op.set_buffers([np.zeros(4)], [np.zeros(4)])
    with pytest.raises(braid.BraidInvalidArgument, match="density"):
        op.step(0.1, density=2.0)
    assert braid.allreduce(np.ones(3), op=braid.Sum)[0] == world[1]  # engine still fine


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU visible")
def test_gpu_matches_cpu(world):
    """The same op on CUDA tensors and on CPU tensors: the same parameters and state."""
    if not ops.compress_device_kernels_available():
        pytest.skip("this build has no CUDA kernels")
    rank, _ = world
    sizes = [300, 4, 50]
    for cls, kw in [(ops.GMC, {}), (ops.MDSGD, {"nesterov": True}),
                    (ops.DGC, {"nesterov": True})]:
        sides = []
        for device in ("cpu", "cuda"):
            w = [torch.tensor(0.5 * np.cos(0.3 * np.arange(n) + j), dtype=torch.float32,
                              device=device) for j, n in enumerate(sizes)]
            g = [torch.zeros(n, dtype=torch.float32, device=device) for n in sizes]
            op = cls(0.05, weight_decay=0.001, **kw)
            op.set_buffers(w, g, dense=[False, True, False])
            sides.append((w, g, op))
        for t in range(1, 4):
            for w, g, op in sides:
                for j, n in enumerate(sizes):
                    g[j].copy_(torch.from_numpy(grad(rank, t, j, n)))
                op.step(0.1)
            torch.cuda.synchronize()
            (wc, _, oc), (wg, _, og) = sides
            for a, b in zip(wc, wg):
                assert torch.equal(a, b.cpu()), "w differs at step %d" % t
            sc, sg = oc.state(), og.state()
            for k in sc:
                got = torch.utils.dlpack.from_dlpack(sg[k]).cpu()
                assert torch.equal(torch.from_numpy(sc[k]), got), k
