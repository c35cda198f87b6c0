"""What Horovod's framework bindings have in common, for braid.torch and
braid.tensorflow: the process set, the reduce ops, operation names and the rank
queries."""

import warnings

import braid as _braid

# Reduce operations, as braid's engine numbers them.
Sum, Average, Min, Max, Product = (_braid.Sum, _braid.Average, _braid.Min, _braid.Max,
                                   _braid.Product)
Adasum = "Adasum"  # accepted as a value, refused when used (see resolve_op)

NOT_INITIALIZED = "braid has not been initialized; use hvd.init()."


class _GlobalProcessSet:
    """The only process set braid has: every rank."""

    def __repr__(self):
        return "global_process_set"


global_process_set = _GlobalProcessSet()


def check_process_set(process_set):
    if process_set is not global_process_set and process_set is not None:
        raise NotImplementedError("braid supports only the global process set "
                                  "(process_set=global_process_set)")


def resolve_op(op, average, what="allreduce"):
    """The reduce op from Horovod's `op` and deprecated `average` arguments."""
    if average is not None:
        if op is not None:
            raise ValueError("The op parameter supersedes average; please provide only one.")
        warnings.warn("Parameter `average` has been replaced with `op` and will be removed",
                      DeprecationWarning, stacklevel=3)
        return Average if average else Sum
    if op is None:
        return Average
    if op == Adasum:
        raise NotImplementedError("braid does not implement Adasum; use op=hvd.Average "
                                  "or hvd.Sum")
    if op not in (Sum, Average, Min, Max, Product):
        raise ValueError("%s: unknown reduce op %r" % (what, op))
    return op


def op_name(kind, name):
    """The engine's name for a collective: the kind as prefix, so an allreduce and a
    broadcast may share a user-visible name; unnamed ones are numbered."""
    if name is None:
        return _braid._name(kind, None)
    return "%s.%s" % (kind, name)


def group_names(kind, name, count):
    if name is None:
        return [op_name(kind, None) for _ in range(count)]
    return ["%s.%s.%d" % (kind, name, i) for i in range(count)]


def check_root(root_rank):
    size = _braid.size()
    if size > 0 and not 0 <= int(root_rank) < size:
        raise ValueError("broadcast: root_rank %d is not a rank (size %d)" % (root_rank, size))


def init(comm=None, process_sets=None, what="init"):
    """Starts braid on every rank (collective). `comm`: an mpi4py communicator, or
    None for MPI_COMM_WORLD; a list of world ranks is not supported."""
    if process_sets is not None:
        raise NotImplementedError("braid supports only the global process set")
    if isinstance(comm, (list, tuple)):
        raise NotImplementedError("%s: a list of ranks is not supported; pass an mpi4py "
                                  "communicator" % what)
    _braid.init(comm)


def _query(fn):
    def query():
        value = fn()
        if value < 0:
            raise ValueError(NOT_INITIALIZED)
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
    if not _braid.is_initialized():
        raise ValueError(NOT_INITIALIZED)
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
