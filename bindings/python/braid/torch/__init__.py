"""braid.torch: Horovod's PyTorch API on braid.

A Horovod script switches by changing one line::

    import braid.torch as hvd

Tensors cross into the engine through DLPack; this package is plain Python, so one
build of braid serves every torch version.
"""

import braid as _braid
from braid import _horovod
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

from braid._horovod import (ccl_built, cross_rank, cross_size, cuda_built,  # noqa: F401,E402
                            ddl_built, gloo_built, gloo_enabled, local_rank, local_size,
                            mpi_built, mpi_enabled, mpi_threads_supported, nccl_built, rank,
                            rocm_built, size)

# What Horovod scripts catch when a collective fails.
HorovodInternalError = BraidError


def init(comm=None, process_sets=None):
    """Starts braid on every rank (collective). `comm`: an mpi4py communicator or a
    list of world ranks is not supported; None means MPI_COMM_WORLD."""
    _horovod.init(comm, process_sets, "braid.torch.init")


shutdown = _braid.shutdown
is_initialized = _braid.is_initialized
