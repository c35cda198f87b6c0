"""braid.torch: Horovod's PyTorch API on braid.

A Horovod script switches by changing one line::

    import braid.torch as hvd

Tensors cross into the engine through DLPack; this package is plain Python, so one
build of braid serves every torch version.
"""

import braid as _braid
from braid._errors import (  # noqa: F401
    BraidAbortedError,
    BraidError,
    BraidInvalidArgument,
    BraidMismatchError,
    BraidNotInitializedError,
    BraidTimeoutError,
)

from .compression import Compression  # noqa: F401
from .functions import (  # noqa: F401
    allgather_object,
    broadcast_object,
    broadcast_optimizer_state,
    broadcast_parameters,
)
from .mpi_ops import (  # noqa: F401
    Adasum,
    Average,
    Handle,
    Max,
    Min,
    Product,
    Sum,
    allgather,
    allgather_async,
    allreduce,
    allreduce_,
    allreduce_async,
    allreduce_async_,
    barrier,
    broadcast,
    broadcast_,
    broadcast_async,
    broadcast_async_,
    global_process_set,
    grouped_allgather,
    grouped_allgather_async,
    grouped_allreduce,
    grouped_allreduce_,
    grouped_allreduce_async,
    grouped_allreduce_async_,
    join,
    poll,
    sparse_allreduce,
    sparse_allreduce_async,
    synchronize,
)
from .decentralized import DecentralizedOptimizer  # noqa: F401
from .optimizer import DistributedOptimizer  # noqa: F401
from .restart import BMUF, LocalSGD, PRSGDMomentum, SlowMo  # noqa: F401
from .sparse_optim import DGC, GMC, MDSGD, exponential_warmup  # noqa: F401

# What Horovod scripts catch when a collective fails.
HorovodInternalError = BraidError

_NOT_INITIALIZED = "braid has not been initialized; use hvd.init()."


def init(comm=None, process_sets=None):
    """Starts braid on every rank (collective). `comm`: an mpi4py communicator or a
    list of world ranks is not supported; None means MPI_COMM_WORLD."""
    if process_sets is not None:
        raise NotImplementedError("braid supports only the global process set")
    if isinstance(comm, (list, tuple)):
        raise NotImplementedError("braid.torch.init: a list of ranks is not supported; "
                                  "pass an mpi4py communicator")
    _braid.init(comm)


shutdown = _braid.shutdown
is_initialized = _braid.is_initialized


def _query(fn):
    def query():
        value = fn()
        if value < 0:
            raise ValueError(_NOT_INITIALIZED)
        return value

    query.__name__ = fn.__name__
    query.__doc__ = "This rank's %s (raises ValueError before init)." % fn.__name__
    return query


size = _query(_braid.size)
rank = _query(_braid.rank)
local_size = _query(_braid.local_size)
local_rank = _query(_braid.local_rank)
cross_size = _query(_braid.cross_size)
cross_rank = _query(_braid.cross_rank)


def mpi_threads_supported():
    """True when MPI was initialised with MPI_THREAD_MULTIPLE."""
    if not is_initialized():
        raise ValueError(_NOT_INITIALIZED)
    return bool(_braid._C.mpi_threads_supported())


def mpi_built():
    return bool(_braid.mpi_built())


def mpi_enabled():
    return bool(_braid.mpi_enabled())


def nccl_built():
    return bool(_braid.nccl_built())


def cuda_built():
    return bool(_braid.cuda_built())


def gloo_built():
    return False


def gloo_enabled():
    return False


def rocm_built():
    return False


def ddl_built():
    return False


def ccl_built():
    return False
