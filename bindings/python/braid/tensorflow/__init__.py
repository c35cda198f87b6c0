"""braid.tensorflow: Horovod's TensorFlow 2 API on braid.

A Horovod script switches by changing one line::

    import braid.tensorflow as hvd

Tensors cross into the engine through DLPack and this package is plain Python: one
build of braid serves every TensorFlow 2 release. Eager tensors go straight to the
engine; inside tf.function the collectives run as tf.py_function nodes (see
docs/tensorflow.md for what that costs). Keras 3 users import braid.tensorflow.keras.
"""

try:
    import tensorflow as _tf
except ImportError as _e:  # pragma: no cover - exercised by tests/python/test_tf_missing.py
    raise ImportError(
        "braid.tensorflow needs TensorFlow 2 (import tensorflow failed: %s); install it "
        "with `pip install braid[tensorflow]` or `pip install tensorflow-cpu`" % _e) from _e

if not hasattr(_tf, "experimental") or not hasattr(_tf.experimental, "dlpack"):
    raise ImportError("braid.tensorflow needs TensorFlow 2.2 or later (tf.experimental.dlpack); "
                      "this is TensorFlow %s" % getattr(_tf, "__version__", "?"))

import braid as _braid  # noqa: E402
from braid import _horovod  # noqa: E402
from braid._errors import (  # noqa: F401,E402
    BraidAbortedError,
    BraidError,
    BraidInvalidArgument,
    BraidMismatchError,
    BraidNotInitializedError,
    BraidTimeoutError,
)
from braid._horovod import (  # noqa: F401,E402
    Adasum,
    Average,
    Max,
    Min,
    Product,
    Sum,
    ccl_built,
    cross_rank,
    cross_size,
    cuda_built,
    ddl_built,
    global_process_set,
    gloo_built,
    gloo_enabled,
    local_rank,
    local_size,
    mpi_built,
    mpi_enabled,
    mpi_threads_supported,
    nccl_built,
    rank,
    rocm_built,
    size,
)

from .compression import Compression  # noqa: F401,E402
from .functions import allgather_object, broadcast_object, broadcast_variables  # noqa: F401,E402
from .gradient_tape import DistributedGradientTape  # noqa: F401,E402
from .mpi_ops import (  # noqa: F401,E402
    allgather,
    allreduce,
    barrier,
    broadcast,
    grouped_allgather,
    grouped_allreduce,
    grouped_broadcast,
    join,
    local_rank_op,
    local_size_op,
    rank_op,
    size_op,
)

# What Horovod scripts catch when a collective fails.
HorovodInternalError = BraidError


def init(comm=None, process_sets=None):
    """Starts braid on every rank (collective). `comm`: an mpi4py communicator, or
    None for MPI_COMM_WORLD."""
    _horovod.init(comm, process_sets, "braid.tensorflow.init")


shutdown = _braid.shutdown
is_initialized = _braid.is_initialized
