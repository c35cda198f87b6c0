"""braid.ops.DecentralizedSGD: decentralized momentum SGD on flat buffers (Yu, Jin,
Yang, ICML 2019, Algorithm 2). Imported into braid.ops; see its docstring."""

import braid as _braid

_C = _braid._C

_TOPOLOGIES = ("ring", "torus", "exponential", "one_peer_exponential", "complete", "base")


def _graph(topology, size, max_degree):
    """The gossip graph of `size` ranks: a topology name, or a mixing matrix W (n x n:
    numpy, torch CPU, nested lists) or a list of them (W_t = matrices[t mod len])."""
    if isinstance(topology, str):
        if topology not in _TOPOLOGIES:
            raise _braid.BraidInvalidArgument(
                "unknown topology %r: use one of %s or mixing matrices"
                % (topology, ", ".join(_TOPOLOGIES)))
        return _C.GossipGraph(topology, int(size), int(max_degree))
    import numpy

    if hasattr(topology, "detach"):  # a torch tensor
        topology = topology.detach().cpu().numpy()
    if isinstance(topology, (list, tuple)):
        topology = [w.detach().cpu().numpy() if hasattr(w, "detach") else w for w in topology]
    arr = numpy.asarray(topology, dtype=numpy.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2]:
        raise _braid.BraidInvalidArgument(
            "a mixing matrix must be n x n (or a list of such), not of shape %s" % (arr.shape,))
    if arr.shape[1] != size:
        raise _braid.BraidInvalidArgument(
            "the mixing matrices are %d x %d, but the world has %d ranks"
            % (arr.shape[1], arr.shape[1], size))
    return _C.GossipGraph.from_matrices([w.tolist() for w in arr])


def _default_stream(tensors, stream):
    if stream is not None:
        return int(stream)
    for t in tensors:
        if type(t).__module__.startswith("torch") and t.is_cuda:
            import torch

            return torch.cuda.current_stream(t.device).cuda_stream
    return 0


class DecentralizedSGD:
    """Decentralized momentum SGD (Yu, Jin, Yang, ICML 2019, Algorithm 2). Each
    step(lr) every rank i takes a local momentum step, u~ = momentum * u + g and
    x~ = x - lr * u~ (nesterov=True, Option II: x~ = x - lr * (momentum * u~ + g)),
    with g + weight_decay * x for g, then mixes with its neighbours in the gossip
    graph: x = sum_j W_t[i][j] x~_j and, with mix_momentum, u = sum_j W_t[i][j] u~_j
    (else u stays u~). W_t is the graph's mixing matrix at step t = step_count
    before the step; momentum=0 is D-PSGD. Every average_period-th step the ranks
    average x and u exactly (one allreduce) instead of mixing.

    topology: "ring", "torus", "exponential", "one_peer_exponential", "complete",
    "base" (Base-(max_degree + 1)), or a doubly stochastic n x n mixing matrix W
    (numpy, torch CPU, nested lists) or a list of them used in turn. A mixing step
    is ONE neighbour allreduce of x and u packed together (named after the op; one
    name per phase of a time-varying graph). Every rank must create the same ops in
    the same order (unnamed ops are numbered) and step them together. An op is
    used by one thread at a time."""

    __slots__ = ("_op", "_graph")

    def __init__(self, name=None, topology="ring", momentum=0.9, nesterov=False,
                 mix_momentum=True, average_period=0, weight_decay=0.0, max_degree=1):
        size, rank = _braid.size(), _braid.rank()
        self._graph = _graph(topology, size, max_degree)
        op_name = _braid._name("gossip.dsgd", None if name is None else name)
        self._op = _C.decentralized_sgd(op_name, self._graph, int(rank), int(size),
                                        float(momentum), bool(nesterov), bool(mix_momentum),
                                        int(average_period), float(weight_decay))

    def set_buffers(self, params, grads=(), momentum=(), stream=None):
        """Registers the parameters x (updated in place), their gradients g (read by
        step) and the momentum buffers u (updated in place): C-contiguous float32 or
        float64 arrays (DLPack or the buffer protocol: torch CPU/CUDA, numpy), one
        dtype on one device; grads and momentum empty or one per parameter of the
        same size. step() needs grads, and momentum unless momentum=0; mix() needs
        neither. The arrays stay referenced until replaced. `stream`: the
        cudaStream_t (an int) GPU arrays are produced on (default: torch's current
        stream)."""
        params, grads, momentum = list(params), list(grads), list(momentum)
        self._op.set_buffers(params, grads, momentum, _default_stream(params, stream))

    def step(self, lr):
        """One step with learning rate `lr`: the local momentum step, then the mixing
        step with W_t (or the exact average every average_period-th step). Collective."""
        self._op.step(float(lr))

    def mix(self):
        """The communication of one step alone, for a framework whose optimizer took
        the local step: mixes x (and u) with W_t, or averages; counts the step."""
        self._op.mix()

    def consensus(self):
        """Replaces x (and u) by their exact average over the ranks now, without
        counting a step (e.g. before evaluating or saving). Collective."""
        self._op.consensus()

    def consensus_distance(self):
        """sqrt((1/n) sum_i ||x_i - xbar||^2) of the parameters, the same on every
        rank; nothing changes. Collective."""
        return self._op.consensus_distance()

    @property
    def step_count(self):
        """Steps counted so far (settable, e.g. from a checkpoint): the next step
        mixes with W_step_count."""
        return self._op.step_count

    @step_count.setter
    def step_count(self, value):
        self._op.step_count = int(value)

    @property
    def graph(self):
        """The gossip graph (braid.ops.gossip_graph's type): weights, matrix(step),
        period, spectral_gap()."""
        return self._graph

    @property
    def name(self):
        """The name of the op's mixing requests."""
        return self._op.name

    @property
    def mixed_count(self):
        """Elements of one mixing request: x, and u when it is mixed."""
        return self._op.mixed_count
