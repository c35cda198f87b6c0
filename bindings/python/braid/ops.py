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

The selection kernels of the sparse methods work on one flat array (float16,
bfloat16, float32 or float64; any C-contiguous shape is read as flat) in host
memory or on a GPU, and are local (no communication):

- ``topk(x, k)``: exact top-k by magnitude;
- ``threshold_topk(x, k, sample_fraction, seed)``: DGC's sampled threshold;
- ``random_k(x, k, seed)``: k indices from the seed alone;
- ``segmented_topk(x, offsets, k | density | global_k)``: per tensor of a fused
  buffer, or one k over all of it;
- ``error_feedback(memory, grad, a, d, b)``: memory += a * grad + b * d, in place;
- ``extract_sent(memory, indices)``: the sent values, zeroed in the memory.

A selection returns ``(indices, values)`` with the indices ascending and the
values x[indices] (signed). |x| orders the elements, NaN above +-inf above every
number, ties by the smaller index, the same on the host and on a GPU. Outputs are
allocated like x (torch or numpy) unless given; indices are int32 when every index
fits, else int64 (``index_dtype`` chooses). On a GPU the work is queued on
``stream`` (default: torch's current stream). See docs/selection.md.

The sparse training ops send, each step, a few (index, value) pairs of an error
memory through ONE sparse allreduce and update the parameters in place:

- ``GMC(density, momentum, ...)``: global momentum compression;
- ``MDSGD(density, momentum, nesterov, ...)``: top-k with memory and local momentum;
- ``DGC(density, momentum, nesterov, clip_norm, ...)``: deep gradient compression.

``op.set_buffers(params, grads, dense=None)``, then ``op.step(lr, density=None)``
on every rank together; ``op.state()`` gives the state as flat arrays that alias
the op's buffers (for checkpoints), ``op.last_stats`` what the last step sent. See
docs/gmc.md, docs/mdsgd.md and docs/dgc.md.

Decentralized training over a gossip graph (``gossip_graph``: ring, torus,
exponential, one-peer exponential, complete, Base-(k+1), user W; docs/gossip_graphs.md):

- ``DecentralizedSGD(name, topology, momentum, nesterov, mix_momentum,
  average_period, weight_decay, max_degree)``: decentralized momentum SGD (Yu, Jin,
  Yang, ICML 2019, Algorithm 2; D-PSGD with momentum=0). ``set_buffers(params,
  grads, momentum)``, then ``step(lr)`` (local momentum step, then ONE neighbour
  allreduce mixing x and u with W_t) or ``mix()`` after a framework's own step;
  ``consensus()`` and ``consensus_distance()``. See docs/decentralized_sgd.md.
"""

import collections as _collections

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


# --- selection kernels (ops/compress) ---------------------------------------------

ThresholdInfo = _collections.namedtuple("ThresholdInfo",
                                        ["selected", "candidates", "rounds", "threshold"])
ThresholdInfo.__doc__ = """What threshold_topk did: entries written (min(k, candidates)),
elements at or above the final threshold, counting rounds, and the threshold."""

_INT32_MAX = 2**31 - 1


def _is_torch(x):
    return type(x).__module__.startswith("torch")


def _numel(x):
    if _is_torch(x):
        return x.numel()
    return int(x.size)


def _int_dtype(x, n, index_dtype):
    name = index_dtype
    if name is None:
        name = "int32" if n - 1 <= _INT32_MAX else "int64"
    name = str(name).replace("torch.", "")
    if name not in ("int32", "int64"):
        raise ValueError("index_dtype must be int32 or int64, not %r" % (index_dtype,))
    if _is_torch(x):
        import torch
        return getattr(torch, name)
    import numpy
    return numpy.dtype(name)


def _empty(x, count, dtype):
    if _is_torch(x):
        import torch
        return torch.empty(count, dtype=dtype, device=x.device)
    import numpy
    return numpy.empty(count, dtype=dtype)


def _stream(x, stream):
    if stream is not None:
        return int(stream)
    if _is_torch(x) and x.is_cuda:
        import torch
        return torch.cuda.current_stream(x.device).cuda_stream
    return 0


def _threads(num_threads):
    return 0 if num_threads is None else int(num_threads)


def _outputs(x, k, indices_out, values_out, index_dtype):
    if indices_out is None:
        indices_out = _empty(x, k, _int_dtype(x, _numel(x), index_dtype))
    if values_out is None:
        values_out = _empty(x, k, x.dtype)
    return indices_out, values_out


def topk(x, k, indices_out=None, values_out=None, index_dtype=None, num_threads=None,
         stream=None):
    """Exact top-k of |x|: (indices ascending, x[indices]). 0 <= k <= x's size."""
    k = int(k)
    indices_out, values_out = _outputs(x, k, indices_out, values_out, index_dtype)
    _C.compress_topk(x, k, indices_out, values_out, _threads(num_threads), _stream(x, stream))
    return indices_out, values_out


def threshold_topk(x, k, sample_fraction=0.01, seed=0, max_rounds=10, indices_out=None,
                   values_out=None, index_dtype=None, num_threads=None, stream=None):
    """DGC's selection: the threshold of a sample (sample_fraction of x at positions
    drawn from `seed`), adapted x1.3 / x0.8 for at most max_rounds counting rounds,
    then trimmed to k. Returns (indices, values, ThresholdInfo); the entries are the
    first min(k, candidates) of the exact top-k order (fewer than k only when the
    rounds ran out below k; the arrays returned are cut to that length). On a GPU
    the host waits for each round's count."""
    k = int(k)
    indices_out, values_out = _outputs(x, k, indices_out, values_out, index_dtype)
    info = ThresholdInfo(*_C.compress_threshold_topk(
        x, k, indices_out, values_out, float(sample_fraction), int(seed), int(max_rounds),
        _threads(num_threads), _stream(x, stream)))
    return indices_out[:info.selected], values_out[:info.selected], info


def random_k(x, k, seed, indices_out=None, values_out=None, index_dtype=None, stream=None):
    """k distinct indices drawn from `seed` alone (the same on every rank), ascending,
    and x at them. On a GPU the indices are drawn on the host and copied (the host
    waits for the copy)."""
    k = int(k)
    indices_out, values_out = _outputs(x, k, indices_out, values_out, index_dtype)
    _C.compress_random_k(x, k, int(seed), indices_out, values_out, _stream(x, stream))
    return indices_out, values_out


def k_for_density(offsets, density):
    """Per-tensor k: min(len, ceil(density * len)) for each segment of `offsets`."""
    return _C.compress_k_for_density([int(o) for o in offsets], float(density))


def segmented_topk(x, offsets, k=None, density=None, global_k=None, indices_out=None,
                   values_out=None, index_dtype=None, num_threads=None, stream=None):
    """Top-k of a fused buffer whose tensors start at offsets[i] (offsets[0] = 0,
    offsets[-1] = x's size). Exactly one of: k (a list, one k per tensor), density
    (per-tensor k = ceil(density * len)) or global_k (one k over the whole buffer).
    Returns (indices, values, counts): indices into the fused buffer, ascending;
    counts[i] entries fall in tensor i."""
    if sum(a is not None for a in (k, density, global_k)) != 1:
        raise ValueError("give exactly one of k, density and global_k")
    offsets = [int(o) for o in offsets]
    if density is not None:
        k = k_for_density(offsets, density)
    ks = [] if k is None else [int(v) for v in k]
    total = int(global_k) if global_k is not None else sum(ks)
    indices_out, values_out = _outputs(x, total, indices_out, values_out, index_dtype)
    counts = _C.compress_segmented_topk(x, offsets, ks, -1 if global_k is None else total,
                                        indices_out, values_out, _threads(num_threads),
                                        _stream(x, stream))
    return indices_out, values_out, counts


def error_feedback(memory, grad, a=1.0, d=None, b=1.0, num_threads=None, stream=None):
    """The error memory's fused pass, in place: memory = memory + a * grad + b * d
    (d may be None). Returns memory."""
    _C.compress_error_feedback(memory, grad, d, float(a), float(b), _threads(num_threads),
                               _stream(memory, stream))
    return memory


def extract_sent(memory, indices, values_out=None, stream=None):
    """The sent step: values = memory[indices]; memory[indices] = 0. Indices must be
    distinct (every selection here gives such). Returns the values."""
    if values_out is None:
        values_out = _empty(memory, _numel(indices), memory.dtype)
    _C.compress_extract_sent(memory, indices, values_out, _stream(memory, stream))
    return values_out


def compress_device_kernels_available():
    """Whether this build can run the selection kernels on GPU arrays."""
    return bool(_C.compress_device_kernels_registered())


# --- sparse training ops: M-DSGD, GMC, DGC (ops/compress/sparse_methods.h) -------

def _sparse_name(kind, name):
    return _braid._name("sparse." + kind, None if name is None else "sparse.%s" % name)


class _SparseOp:
    """A sparse training op on a list of parameters and their gradients. Each
    step(lr) is collective: every rank builds what it may send in its error memory,
    selects the top entries (per tensor or globally; exact top-k, DGC's sampled
    threshold or random-k with a seed shared by every rank), sends them through ONE
    sparse allreduce (average) and moves the parameters in place by the averaged
    update. Every rank must create the same ops in the same order (unnamed ops are
    numbered), register tensors of the same sizes and step them together. An op is
    used by one thread at a time."""

    __slots__ = ("_op",)

    def __init__(self, method, kind, density, momentum, nesterov, weight_decay, clip_norm,
                 selection, scope, sample_fraction, seed, dense_fallback, name):
        self._op = _C.sparse_op(method, _sparse_name(kind, name), float(density),
                                float(momentum), bool(nesterov), float(weight_decay),
                                float(clip_norm), str(selection), str(scope),
                                float(sample_fraction), int(seed), bool(dense_fallback))

    def set_buffers(self, params, grads, dense=None, stream=0):
        """Registers the parameters (updated in place) and their gradients (read each
        step): C-contiguous float32 or float64 arrays (DLPack or the buffer protocol),
        one dtype on one device, pairwise the same sizes. `dense`: None or one bool per
        tensor (True: that tensor is sent whole through a dense allreduce). The op's
        state is (re)allocated zeroed when the total size, dtype or device changes and
        kept otherwise; arrays from state() stay valid until such a change. The arrays
        stay referenced until replaced. `stream`: the cudaStream_t (an int) GPU arrays
        are produced on."""
        flags = None if dense is None else [bool(d) for d in dense]
        self._op.set_buffers(list(params), list(grads), flags, int(stream))

    def step(self, lr, density=None):
        """One collective step with learning rate `lr`; `density` overrides the op's
        for this step (e.g. a warm-up schedule)."""
        self._op.step(float(lr), -1.0 if density is None else float(density), _braid.size())

    def state(self):
        """The state as a dict name -> flat array over the registered tensors (the
        sparse ones in order, then the dense-flagged ones): numpy arrays for host
        state, DLPack objects for GPU state. They ALIAS the op's buffers: writing into
        them (e.g. arr[...] = saved) restores a checkpoint."""
        out = {}
        for n in self._op.state_names():
            buf = self._op.state(n)
            if buf.is_host:
                import numpy
                out[n] = numpy.asarray(buf)
            else:
                out[n] = buf
        return out

    @property
    def step_count(self):
        """Steps taken (settable, e.g. when restoring a checkpoint; random-k's and
        the threshold sample's seeds advance with it)."""
        return self._op.step_count

    @step_count.setter
    def step_count(self, value):
        self._op.step_count = int(value)

    @property
    def last_stats(self):
        """What the last step sent from this rank: pairs, value_bytes, index_bytes and
        dense_bytes (the dense-flagged tensors' allreduce)."""
        return self._op.last_stats

    @property
    def name(self):
        """The name of the op's sparse allreduce (its dense one adds '.dense')."""
        return self._op.name


class GMC(_SparseOp):
    """GMC (global momentum compression): z = e + lr * g + momentum * U, where U =
    w_{t-1} - w_t is the op's last averaged update (state "last_update"); sent =
    topk(z); e = z - sent (state "memory"); U = avg(sent); w -= U. Weight decay is
    folded into g (g + weight_decay * w). With density 1 it is heavy-ball momentum SGD
    on the averaged gradient."""

    __slots__ = ()

    def __init__(self, density, momentum=0.9, weight_decay=0.0, selection="topk",
                 scope="tensor", sample_fraction=0.01, seed=0, dense_fallback=True, name=None):
        super().__init__("gmc", "gmc", density, momentum, False, weight_decay, 0.0, selection,
                         scope, sample_fraction, seed, dense_fallback, name)


class MDSGD(_SparseOp):
    """M-DSGD (memory-based distributed SGD with local momentum): v = momentum * v + g
    (state "momentum"); z = e + lr * v (nesterov: e + lr * (g + momentum * v)); sent =
    topk(z); e = z - sent (state "memory"); w -= avg(sent). momentum=0 is top-k SGD
    with memory."""

    __slots__ = ()

    def __init__(self, density, momentum=0.9, nesterov=False, weight_decay=0.0,
                 selection="topk", scope="tensor", sample_fraction=0.01, seed=0,
                 dense_fallback=True, name=None):
        super().__init__("mdsgd", "mdsgd", density, momentum, nesterov, weight_decay, 0.0,
                         selection, scope, sample_fraction, seed, dense_fallback, name)


class DGC(_SparseOp):
    """DGC (deep gradient compression): g clipped to a global norm of clip_norm /
    sqrt(N) when clip_norm > 0; u = momentum * u + g (state "momentum"); v = v + u
    (state "accumulation"); nesterov: u = momentum * (u + g), v = v + u + g; sent =
    topk(v); v and u zeroed where sent (momentum factor masking); w -= lr * avg(sent).
    Dense-flagged tensors: momentum SGD on the dense average of g."""

    __slots__ = ()

    def __init__(self, density, momentum=0.9, nesterov=False, weight_decay=0.0, clip_norm=0.0,
                 selection="topk", scope="tensor", sample_fraction=0.01, seed=0,
                 dense_fallback=True, name=None):
        super().__init__("dgc", "dgc", density, momentum, nesterov, weight_decay, clip_norm,
                         selection, scope, sample_fraction, seed, dense_fallback, name)


def gossip_graph(kind, size, max_degree=1):
    """The mixing matrix W of decentralized training (docs/gossip_graphs.md): kind is
    "ring", "torus", "exponential", "one_peer_exponential", "complete" or "base"
    (Base-(max_degree + 1)), for `size` ranks. The graph tells each rank its mixing
    weights at a step (``weights(rank, step)``: self_weight, send_to and recv_from as
    (rank, weight) pairs), gives the dense W (``matrix(step)``, row-major, n * n
    values), its ``period`` (time-varying graphs use W_(t mod period)) and its
    ``spectral_gap()`` (1 - ||W - J/n||_2; of the product over one period when it
    varies). Local: nothing is communicated."""
    return _C.GossipGraph(str(kind), int(size), int(max_degree))


def gossip_graph_from_matrices(matrices):
    """A user-given W (an n x n nested list), or a periodic list of them, checked to
    be nonnegative and doubly stochastic."""
    if matrices and not isinstance(matrices[0][0], (list, tuple)):
        matrices = [matrices]
    return _C.GossipGraph.from_matrices([[list(map(float, row)) for row in m] for m in matrices])


from braid._decentralized import DecentralizedSGD  # noqa: E402,F401
