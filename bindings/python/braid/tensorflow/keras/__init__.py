"""braid.tensorflow.keras: Horovod's Keras API for Keras 3 (TensorFlow backend).

    import braid.tensorflow.keras as hvd

    hvd.init()
    opt = hvd.DistributedOptimizer(keras.optimizers.SGD(0.01 * hvd.size(), momentum=0.9))
    model.compile(optimizer=opt, loss=..., metrics=[...])
    model.fit(x, y, callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0),
                               hvd.callbacks.MetricAverageCallback()])

The restart algorithms (LocalSGD, PRSGDMomentum, SlowMo, BMUF) are callbacks over
braid.ops; see braid.tensorflow.keras.restart and docs/tensorflow.md.
"""

try:
    import keras as _keras
except ImportError as _e:  # pragma: no cover
    raise ImportError("braid.tensorflow.keras needs Keras 3 (import keras failed: %s); it "
                      "comes with TensorFlow 2.16 and later" % _e) from _e

if not _keras.__version__.startswith("3."):
    raise ImportError("braid.tensorflow.keras needs Keras 3; this is Keras %s"
                      % _keras.__version__)

from braid.tensorflow import (  # noqa: F401,E402
    Adasum,
    Average,
    BraidError,
    Compression,
    HorovodInternalError,
    Max,
    Min,
    Product,
    Sum,
    allgather,
    allgather_object,
    allreduce,
    barrier,
    broadcast,
    broadcast_object,
    broadcast_variables,
    cross_rank,
    cross_size,
    global_process_set,
    grouped_allreduce,
    init,
    is_initialized,
    join,
    local_rank,
    local_size,
    mpi_threads_supported,
    rank,
    shutdown,
    size,
)

from . import callbacks  # noqa: F401,E402
from .callbacks import (  # noqa: F401,E402
    BroadcastGlobalVariablesCallback,
    LearningRateWarmupCallback,
    MetricAverageCallback,
)
from .optimizer import DistributedOptimizer  # noqa: F401,E402
from .restart import BMUF, LocalSGD, PRSGDMomentum, SlowMo  # noqa: F401,E402
