"""braid: collective communication for data-parallel training.

The framework-neutral API. Tensors are any C-contiguous host array that supports
the buffer protocol (numpy) or ``__dlpack__``; outputs are numpy arrays unless the
caller supplies the output array.
"""

import atexit as _atexit
import itertools as _itertools
import os as _os
import sys as _sys
import threading as _threading

import numpy as _np

from ._errors import (  # noqa: F401
    BraidAbortedError,
    BraidBackendError,
    BraidDuplicateNameError,
    BraidError,
    BraidInternalError,
    BraidInvalidArgument,
    BraidMismatchError,
    BraidNotInitializedError,
    BraidOutOfMemoryError,
    BraidTimeoutError,
)


def _load_extension():
    # Open MPI loads its components with dlopen; they need libmpi's symbols to be
    # global, which an extension module's dependencies are not by default.
    flags = _sys.getdlopenflags()
    _sys.setdlopenflags(flags | _os.RTLD_GLOBAL)
    try:
        from . import _C
    finally:
        _sys.setdlopenflags(flags)
    return _C


_C = _load_extension()

Sum, Average, Min, Max, Product = 0, 1, 2, 3, 4

__version__ = _C.build_info()["version"]

mpi_built = _C.mpi_built
mpi_enabled = _C.mpi_enabled
nccl_built = _C.nccl_built
cuda_built = _C.cuda_built
config_vars = _C.config_vars
build_info = _C.build_info
is_initialized = _C.is_initialized
rank = _C.rank
size = _C.size
local_rank = _C.local_rank
local_size = _C.local_size
cross_rank = _C.cross_rank
cross_size = _C.cross_size
barrier = _C.barrier


def stats():
    """This process's communication counters: for each collective kind ("allreduce",
    "allgather", "broadcast", "barrier", "sparse_allreduce", "sparse_allgather",
    "neighbor_allreduce", "neighbor_exchange") {"count": collectives run, "bytes": this
    rank's payload bytes}, since start-up or reset_stats(); the sparse kinds count
    values in "bytes" and indices in "index_bytes". "neighbor_sent_bytes" lists the
    bytes the neighbour collectives sent to each peer rank (index: the peer). A fused
    group counts once; negotiation traffic is not counted (docs/stats.md)."""
    return _C.stats()


def placement():
    """Where this rank runs, as braid applied it at init (docs/placement.md): a dict
    with "host", "local_rank", "gpu" (the CUDA ordinal placement chose for this rank,
    -1 without GPUs; pass it to torch.cuda.set_device), "gpu_pci_bus_id", "binding"
    ("cores", "numa" or "none"), "cpus" (the process's CPUs, os indexes; empty when
    nothing was bound), "coordinator_cpus" (the coordinator thread's core; empty: as the process), "numa_node" (where
    braid's host buffers are placed, -1: anywhere), "nic" (the closest network
    interface), "note" (why the rules' first choice was not taken) and
    "fusion_buffer_numa_nodes" (the NUMA nodes holding the fusion buffer's touched
    pages)."""
    return _C.placement()


def reset_stats():
    """Sets the communication counters to zero (this process only)."""
    _C.reset_stats()


_counter = _itertools.count()
_counter_lock = _threading.Lock()


def _name(kind, name):
    # Unnamed operations are numbered in submission order, which must then be the
    # same on every rank.
    if name is not None:
        return str(name)
    with _counter_lock:
        return "%s.noname.%d" % (kind, next(_counter))


def _comm_address(comm):
    if comm is None or isinstance(comm, int):
        return comm
    from mpi4py import MPI  # only needed for an mpi4py communicator

    return MPI._addressof(comm)


def init(comm=None):
    """Starts braid on MPI_COMM_WORLD, or on `comm` (an mpi4py communicator or the
    address of an MPI_Comm). Collective. A second call while running does nothing."""
    _C.init(_comm_address(comm))


def shutdown():
    """Stops braid (collective); pending operations fail with BraidAbortedError."""
    _C.shutdown()


_atexit.register(_C.shutdown)


class Handle:
    """An operation in flight; pass it to synchronize() or poll()."""

    __slots__ = ("_h", "_gather", "_sparse_gather")

    def __init__(self, h, gather=False, sparse_gather=False):
        self._h = h
        self._gather = gather
        self._sparse_gather = sparse_gather


def poll(handle):
    """True once the operation has finished (successfully or not)."""
    return handle._h.poll()


def synchronize(handle):
    """Waits for the operation and returns its output; raises BraidError on failure."""
    out = handle._h.result()
    if handle._sparse_gather:
        indices, values, pairs = out
        return _host_array(indices), _host_array(values), list(pairs)
    if not handle._gather:
        return out
    out = _host_array(out)
    rows = getattr(handle, "_rows", None)
    if rows is not None and rows != sorted(rows):
        if not isinstance(out, _np.ndarray):
            raise BraidInvalidArgument(
                "neighbor_exchange: a GPU result comes in ascending rank order; pass recv_from "
                "sorted")
        out = out[rows]
    return out


def _host_array(out):
    # A GPU result has no buffer protocol: hand it over as it is (DLPack).
    try:
        return _np.asarray(out)
    except BufferError:
        return out
    except Exception as e:  # noqa: BLE001  (the binding raises BraidInvalidArgument)
        if isinstance(e, BraidError):
            return out
        raise


def _empty_like(tensor):
    if isinstance(tensor, _np.ndarray):
        return _np.empty(tensor.shape, tensor.dtype)
    for method in ("clone", "copy"):
        if hasattr(tensor, method):
            return getattr(tensor, method)()
    raise BraidInvalidArgument(
        "cannot allocate an output like a %s: pass a numpy array or allreduce_ in place"
        % type(tensor).__name__
    )


def allreduce_async(tensor, name=None, op=Average, prescale_factor=1.0, postscale_factor=1.0,
                    output=None):
    """Starts an out-of-place allreduce; synchronize() returns the reduced array."""
    if output is None:
        output = _empty_like(tensor)
    h = _C.allreduce_async(_name("allreduce", name), tensor, output, op, prescale_factor,
                           postscale_factor)
    return Handle(h)


def allreduce(tensor, name=None, op=Average, prescale_factor=1.0, postscale_factor=1.0):
    return synchronize(allreduce_async(tensor, name, op, prescale_factor, postscale_factor))


def allreduce_async_(tensor, name=None, op=Average, prescale_factor=1.0, postscale_factor=1.0):
    """Starts an in-place allreduce of `tensor`."""
    h = _C.allreduce_async(_name("allreduce", name), tensor, None, op, prescale_factor,
                           postscale_factor)
    return Handle(h)


def allreduce_(tensor, name=None, op=Average, prescale_factor=1.0, postscale_factor=1.0):
    return synchronize(allreduce_async_(tensor, name, op, prescale_factor, postscale_factor))


def allgather_async(tensor, name=None):
    """Starts an allgather along the first dimension (which may differ by rank)."""
    return Handle(_C.allgather_async(_name("allgather", name), tensor), gather=True)


def allgather(tensor, name=None):
    return synchronize(allgather_async(tensor, name))


def broadcast_async_(tensor, root_rank, name=None):
    """Starts an in-place broadcast of `tensor` from `root_rank`."""
    return Handle(_C.broadcast_async(_name("broadcast", name), tensor, root_rank))


def broadcast_(tensor, root_rank, name=None):
    return synchronize(broadcast_async_(tensor, root_rank, name))


def broadcast_async(tensor, root_rank, name=None):
    """Starts an out-of-place broadcast: `tensor` is left as it is."""
    if isinstance(tensor, _np.ndarray):
        out = _np.array(tensor, order="C", copy=True)
    else:
        out = _empty_like(tensor)  # a copy (clone) for other arrays
    return broadcast_async_(out, root_rank, name)


def broadcast(tensor, root_rank, name=None):
    return synchronize(broadcast_async(tensor, root_rank, name))


def sparse_allreduce_async(indices, values, dense, name=None, op=Average, dense_fallback=True):
    """Starts a sparse allreduce: `dense` (written, any shape [length, ...]) becomes the
    sum (op=Sum) or average (op=Average) over ranks of every rank's pairs, each pair an
    index into dense's first dimension (`indices`: k int32 or int64) and a row
    (`values`: shape [k] + dense.shape[1:]). k may differ between ranks; repeated
    indices add up. With `dense_fallback` the ranks run a dense allreduce instead when
    their pairs outweigh it (the same sums). synchronize() returns `dense`
    (docs/sparse.md)."""
    h = _C.sparse_allreduce_async(_name("sparse_allreduce", name), indices, values, dense, op,
                                  bool(dense_fallback))
    return Handle(h)


def sparse_allreduce(indices, values, dense, name=None, op=Average, dense_fallback=True):
    return synchronize(sparse_allreduce_async(indices, values, dense, name, op, dense_fallback))


def sparse_allgather_async(indices, values, dense_shape, name=None):
    """Starts a sparse allgather: every rank's (index, value) pairs, in rank order.
    `dense_shape` is the shape the indices address (its first dimension bounds them).
    synchronize() returns (indices, values, pairs per rank) as numpy arrays (host) or
    DLPack-capable arrays (GPU)."""
    h = _C.sparse_allgather_async(_name("sparse_allgather", name), indices, values,
                                  [int(d) for d in dense_shape])
    return Handle(h, sparse_gather=True)


def sparse_allgather(indices, values, dense_shape, name=None):
    return synchronize(sparse_allgather_async(indices, values, dense_shape, name))


def _ranks(ranks, what):
    out = [int(r) for r in ranks]
    if len(set(out)) != len(out):
        raise BraidInvalidArgument("%s names a rank twice: %s" % (what, out))
    return out


def neighbor_allreduce_async(tensor, send_to, recv_from, self_weight=None, recv_weights=None,
                             name=None, output=None):
    """Starts one gossip (mixing) step: `output` (None: a new array like `tensor`;
    pass `tensor` itself to mix in place) becomes
    self_weight * tensor + sum over j of recv_weights[j] * (rank j's tensor), for the
    ranks j in `recv_from`; `send_to` are the ranks that mix this rank's tensor in.
    Across ranks the lists must form one graph (rank i lists j in send_to exactly when
    j lists i in recv_from), else every rank fails with BraidMismatchError.
    `recv_weights`: a dict {rank: weight} or a list in recv_from's order; by default
    every tensor counts equally (1 / (len(recv_from) + 1)), and `self_weight`
    defaults to what is left of 1. The graph may change from call to call
    (docs/gossip.md). synchronize() returns the output."""
    recv = _ranks(recv_from, "recv_from")
    send = sorted(_ranks(send_to, "send_to"))
    if recv_weights is None:
        weights = {r: 1.0 / (len(recv) + 1) for r in recv}
    elif isinstance(recv_weights, dict):
        if sorted(int(r) for r in recv_weights) != sorted(recv):
            raise BraidInvalidArgument("recv_weights names ranks %s, recv_from %s"
                                       % (sorted(recv_weights), sorted(recv)))
        weights = {int(r): float(w) for r, w in recv_weights.items()}
    else:
        weights = [float(w) for w in recv_weights]
        if len(weights) != len(recv):
            raise BraidInvalidArgument("%d recv_weights for %d ranks in recv_from"
                                       % (len(weights), len(recv)))
        weights = dict(zip(recv, weights))
    if self_weight is None:
        self_weight = 1.0 - sum(weights.values())
    order = sorted(recv)
    if output is None:
        output = _empty_like(tensor)
    h = _C.neighbor_allreduce_async(_name("neighbor_allreduce", name), tensor, output, send,
                                    order, float(self_weight), [weights[r] for r in order])
    return Handle(h)


def neighbor_allreduce(tensor, send_to, recv_from, self_weight=None, recv_weights=None,
                       name=None, output=None):
    return synchronize(neighbor_allreduce_async(tensor, send_to, recv_from, self_weight,
                                                recv_weights, name, output))


def neighbor_exchange_async(tensor, send_to, recv_from, name=None):
    """Starts a neighbour exchange: sends `tensor` to the ranks in `send_to` and
    receives the tensors of the ranks in `recv_from` (the graph must be consistent
    across ranks, as for neighbor_allreduce). synchronize() returns them stacked,
    shape [len(recv_from)] + tensor.shape, row k from recv_from[k] (in the order
    given), as a numpy array (host) or a DLPack-capable array (GPU)."""
    recv = _ranks(recv_from, "recv_from")
    order = sorted(recv)
    h = _C.neighbor_exchange_async(_name("neighbor_exchange", name), tensor,
                                   sorted(_ranks(send_to, "send_to")), order)
    return _ExchangeHandle(h, [order.index(r) for r in recv])


class _ExchangeHandle(Handle):
    """A neighbour exchange in flight; its rows are put back in recv_from's order."""

    __slots__ = ("_rows",)

    def __init__(self, h, rows):
        super().__init__(h, gather=True)
        self._rows = rows


def neighbor_exchange(tensor, send_to, recv_from, name=None):
    return synchronize(neighbor_exchange_async(tensor, send_to, recv_from, name))


from . import ops  # noqa: E402,F401  (after _C and _name, which it uses)
