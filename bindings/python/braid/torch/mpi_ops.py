"""Horovod's PyTorch collectives on braid's engine.

Tensors reach the engine through DLPack, so nothing here is compiled against torch.
Every operation is keyed by a name; unnamed operations are numbered in the order
they are submitted, which must then be the same on every rank (as in Horovod).
Names get the collective as prefix ("allreduce.NAME"), so an allreduce and a
broadcast may share a user-visible name.
"""

import torch

import braid as _braid

from . import sparse as _sparse
from .compression import Compression

_C = _braid._C

from braid import _horovod
from braid._horovod import (Adasum, Average, Max, Min, Product, Sum,  # noqa: F401
                            global_process_set)

_check_process_set = _horovod.check_process_set
_resolve_op = _horovod.resolve_op
_op_name = _horovod.op_name
_group_names = _horovod.group_names
_check_root = _horovod.check_root


class Handle:
    """An operation in flight; pass it to synchronize() or poll()."""

    __slots__ = ("_parts", "_finish", "_output", "_done")

    def __init__(self, parts, finish, output=None):
        self._parts = parts  # braid._C handles
        self._finish = finish  # the parts' results -> the output; None: `output` as it is
        self._output = output
        self._done = False


# The handle of a single allreduce of a dense host tensor (the per-call path): the
# binding's own handle, whose result() is the output tensor. It saves a Python object
# per operation (and the garbage collector's visits to it).
_FastHandle = _C.Handle


def poll(handle):
    """True once the operation has finished; synchronize() then does not block."""
    if type(handle) is _FastHandle:
        return handle.poll()
    return all(p.poll() for p in handle._parts)


def synchronize(handle):
    """Waits for the operation and returns its output (a list for grouped ops)."""
    if type(handle) is _FastHandle:
        return handle.result()
    if not handle._done:
        if handle._finish is None:
            for p in handle._parts:
                p.wait()
        else:
            handle._output = handle._finish([p.result() for p in handle._parts])
        handle._done = True
        handle._parts = ()  # the engine is done with the buffers
    return handle._output


def _stream_of(tensor):
    """The stream a CUDA tensor is being produced on (the current stream of its
    device), as the integer cudaStream_t the engine orders its work after; 0 for
    host tensors."""
    if tensor.is_cuda:
        return torch.cuda.current_stream(tensor.device).cuda_stream
    return 0


def _engine_input(tensor):
    """A detached, contiguous tensor the engine can read through DLPack."""
    t = tensor.detach()
    return t if t.is_contiguous() else t.contiguous()


_to_dlpack = torch.utils.dlpack.to_dlpack


def _exported(staged):
    """A contiguous tensor as the binding takes it: on the host, torch's DLPack capsule
    made directly (Tensor.__dlpack__ and __dlpack_device__ are Python, several us a
    call); on a GPU the tensor (the binding exports it without syncing its stream)."""
    return staged if staged.is_cuda else _to_dlpack(staged)


def _submit_allreduce(tensor, output, name, op, prescale, postscale):
    """Reduces `tensor` into `output` (None: in place). Returns (part, writeback):
    writeback copies a staged result into a non-contiguous `tensor`."""
    staged = _engine_input(tensor)
    out = None if output is None else _exported(output)  # a fresh contiguous tensor
    part = _C.allreduce_async(name, _exported(staged), out, op, prescale, postscale,
                              _stream_of(tensor))
    if output is not None or not _needs_copy(staged, tensor):
        return part, None
    return part, lambda: _copy_into(tensor, staged)


def _needs_copy(staged, target):
    return staged.data_ptr() != target.data_ptr()


def _copy_into(target, staged):
    with torch.no_grad():
        target.copy_(staged)


def _allreduce_handle(tensors, outputs, names, op, prescale, postscale, group):
    parts, writebacks = [], []
    for tensor, output, name in zip(tensors, outputs, names):
        part, writeback = _submit_allreduce(tensor, output, name, op, prescale, postscale)
        parts.append(part)
        if writeback is not None:
            writebacks.append(writeback)
    results = [t if o is None else o for t, o in zip(tensors, outputs)]
    output = results if group else results[0]
    if not writebacks:
        return Handle(parts, None, output)

    def finish(_):
        for w in writebacks:
            w()
        return output

    return Handle(parts, finish)


def _allreduce_one(tensor, output, name, op, prescale, postscale):
    """_allreduce_handle for one tensor, without its lists (the per-call path)."""
    part, writeback = _submit_allreduce(tensor, output, name, op, prescale, postscale)
    result = tensor if output is None else output
    if writeback is None:
        return Handle((part,), None, result)
    return Handle((part,), lambda _: (writeback(), result)[1])


def allreduce_async(tensor, average=None, name=None, op=None, prescale_factor=1.0,
                    postscale_factor=1.0, process_set=global_process_set):
    """Starts an allreduce of `tensor` into a new tensor; the input is left as it is.
    A torch.sparse_coo tensor goes to sparse_allreduce_async (op Sum or Average, no
    scale factors)."""
    _check_process_set(process_set)
    op = _resolve_op(op, average)
    if tensor.is_sparse:
        _sparse.check_op(op, prescale_factor, postscale_factor, "allreduce")
        return _sparse_allreduce_handle(tensor, name, op)
    output = torch.empty_like(tensor, memory_format=torch.contiguous_format)
    name = _op_name("allreduce", name)
    if tensor.is_cuda or not tensor.is_contiguous():
        return _allreduce_one(tensor, output, name, op, prescale_factor, postscale_factor)
    return _C.allreduce_async(name, _to_dlpack(tensor), _to_dlpack(output), op,
                              prescale_factor, postscale_factor, 0, output)


def allreduce_async_(tensor, average=None, name=None, op=None, prescale_factor=1.0,
                     postscale_factor=1.0, process_set=global_process_set):
    """Starts an in-place allreduce of `tensor`."""
    if process_set is not global_process_set:
        _check_process_set(process_set)
    op = Average if op is None and average is None else _resolve_op(op, average)
    if tensor.is_sparse:
        _check_not_sparse(tensor, "allreduce_async_")
    name = _op_name("allreduce", name)
    if tensor.is_cuda or not tensor.is_contiguous():
        return _allreduce_one(tensor, None, name, op, prescale_factor, postscale_factor)
    # The per-call path (a dense host tensor, as gradients are): the tensor's memory
    # goes to the engine as it is; the capsule holds the storage, not the autograd
    # graph, so no detach() is needed.
    return _C.allreduce_async(name, _to_dlpack(tensor), None, op, prescale_factor,
                              postscale_factor, 0, tensor)


class _AllreduceFunction(torch.autograd.Function):
    """y = allreduce(x); the gradient is the same allreduce of the upstream gradient."""

    @staticmethod
    def forward(ctx, tensor, name, op, prescale, postscale):
        ctx.op, ctx.prescale, ctx.postscale = op, prescale, postscale
        return synchronize(allreduce_async(tensor, name=name, op=op, prescale_factor=prescale,
                                           postscale_factor=postscale))

    @staticmethod
    def backward(ctx, grad_output):
        grad = synchronize(allreduce_async(grad_output.contiguous(), op=ctx.op,
                                           prescale_factor=ctx.prescale,
                                           postscale_factor=ctx.postscale))
        return grad, None, None, None, None


def allreduce(tensor, average=None, name=None, compression=Compression.none, op=None,
              prescale_factor=1.0, postscale_factor=1.0, process_set=global_process_set):
    """Averages (or sums, ...) `tensor` over all ranks; differentiable. A
    torch.sparse_coo tensor gives sparse_allreduce's result (not differentiable)."""
    _check_process_set(process_set)
    op = _resolve_op(op, average)
    compressed, ctx = compression.compress(tensor)
    if tensor.is_sparse:
        _sparse.check_op(op, prescale_factor, postscale_factor, "allreduce")
        reduced = synchronize(_sparse_allreduce_handle(compressed, name, op))
        return compression.decompress(reduced, ctx)
    reduced = _AllreduceFunction.apply(compressed, name, op, prescale_factor, postscale_factor)
    return compression.decompress(reduced, ctx)


def allreduce_(tensor, average=None, name=None, op=None, prescale_factor=1.0,
               postscale_factor=1.0, process_set=global_process_set):
    """Allreduces `tensor` in place and returns it."""
    return synchronize(allreduce_async_(tensor, average, name, op, prescale_factor,
                                        postscale_factor, process_set))


def _check_not_sparse(tensor, what):
    if tensor.is_sparse:
        raise ValueError("%s: in-place and grouped allreduces take dense tensors; reduce a "
                         "torch.sparse_coo tensor with allreduce, allreduce_async or "
                         "sparse_allreduce" % what)


def _sparse_allreduce_handle(tensor, name, op):
    _sparse.check_sparse(tensor, "sparse_allreduce")
    part, finish = _sparse.submit(tensor, _op_name("sparse_allreduce", name), op,
                                  _stream_of(tensor))
    return Handle([part], finish)


def sparse_allreduce_async(tensor, name=None, op=Average, process_set=global_process_set):
    """Starts the allreduce of a torch.sparse_coo tensor (any sparse_dim, float16,
    bfloat16, float32 or float64 values); op is Sum or Average. synchronize() returns
    a coalesced sparse tensor of the same shape, dtype and device whose dense form is
    the sum (average) over ranks of every rank's tensor, and whose rows are the union
    of the rows the ranks had: a row some rank had is in the result also where the
    values add up to zero, as a single process would have had it (what
    torch.optim.SparseAdam needs). The ranks' tensors must have the same shape and
    dtype; repeated indices add up."""
    _check_process_set(process_set)
    op = _resolve_op(op, None, "sparse_allreduce")
    _sparse.check_op(op)
    return _sparse_allreduce_handle(tensor, name, op)


def sparse_allreduce(tensor, name=None, op=Average, process_set=global_process_set):
    """The blocking form of sparse_allreduce_async: returns the reduced sparse tensor."""
    return synchronize(sparse_allreduce_async(tensor, name, op, process_set))


def grouped_allreduce_async(tensors, average=None, name=None, op=None, prescale_factor=1.0,
                            postscale_factor=1.0, process_set=global_process_set):
    """Starts allreduces of a list of tensors, submitted together so they fuse;
    synchronize() returns the list of reduced tensors."""
    _check_process_set(process_set)
    op = _resolve_op(op, average)
    for t in tensors:
        _check_not_sparse(t, "grouped_allreduce")
    outputs = [torch.empty_like(t, memory_format=torch.contiguous_format) for t in tensors]
    return _allreduce_handle(list(tensors), outputs, _group_names("allreduce", name,
                                                                  len(tensors)),
                             op, prescale_factor, postscale_factor, group=True)


def grouped_allreduce_async_(tensors, average=None, name=None, op=None, prescale_factor=1.0,
                             postscale_factor=1.0, process_set=global_process_set):
    """The in-place form of grouped_allreduce_async."""
    _check_process_set(process_set)
    op = _resolve_op(op, average)
    for t in tensors:
        _check_not_sparse(t, "grouped_allreduce")
    return _allreduce_handle(list(tensors), [None] * len(tensors),
                             _group_names("allreduce", name, len(tensors)), op,
                             prescale_factor, postscale_factor, group=True)


class _GroupedAllreduceFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, name, op, prescale, postscale, *tensors):
        ctx.op, ctx.prescale, ctx.postscale = op, prescale, postscale
        return tuple(synchronize(grouped_allreduce_async(
            list(tensors), name=name, op=op, prescale_factor=prescale,
            postscale_factor=postscale)))

    @staticmethod
    def backward(ctx, *grads):
        reduced = synchronize(grouped_allreduce_async(
            [g.contiguous() for g in grads], op=ctx.op, prescale_factor=ctx.prescale,
            postscale_factor=ctx.postscale))
        return (None, None, None, None) + tuple(reduced)


def grouped_allreduce(tensors, average=None, name=None, compression=Compression.none, op=None,
                      prescale_factor=1.0, postscale_factor=1.0,
                      process_set=global_process_set):
    """Allreduces a list of tensors together; differentiable. Returns a list."""
    _check_process_set(process_set)
    op = _resolve_op(op, average)
    compressed, ctxs = zip(*[compression.compress(t) for t in tensors]) if tensors else ((), ())
    reduced = _GroupedAllreduceFunction.apply(name, op, prescale_factor, postscale_factor,
                                              *compressed)
    return [compression.decompress(t, c) for t, c in zip(reduced, ctxs)]


def grouped_allreduce_(tensors, average=None, name=None, op=None, prescale_factor=1.0,
                       postscale_factor=1.0, process_set=global_process_set):
    """Allreduces a list of tensors in place; returns them."""
    return synchronize(grouped_allreduce_async_(tensors, average, name, op, prescale_factor,
                                                postscale_factor, process_set))


def _gathered(result):
    # The engine owns the gathered buffer; the tensor keeps it alive through DLPack.
    return torch.from_dlpack(result)


def _allgather_handle(tensors, names, group):
    parts = [_C.allgather_async(n, _engine_input(t), _stream_of(t))
             for t, n in zip(tensors, names)]

    def finish(results):
        out = [_gathered(r) for r in results]
        return out if group else out[0]

    return Handle(parts, finish)


def allgather_async(tensor, name=None, process_set=global_process_set):
    """Starts concatenating every rank's `tensor` along dimension 0 (whose size may
    differ by rank)."""
    _check_process_set(process_set)
    _check_gatherable(tensor)
    return _allgather_handle([tensor], [_op_name("allgather", name)], group=False)


def _check_gatherable(tensor):
    if tensor.dim() == 0:
        raise ValueError("allgather needs a tensor with at least one dimension "
                         "(it concatenates along dimension 0)")


def grouped_allgather_async(tensors, name=None, process_set=global_process_set):
    """Starts allgathers of a list of tensors; synchronize() returns a list."""
    _check_process_set(process_set)
    for t in tensors:
        _check_gatherable(t)
    return _allgather_handle(list(tensors), _group_names("allgather", name, len(tensors)),
                             group=True)


class _AllgatherFunction(torch.autograd.Function):
    """y = concat over ranks of x_r; this rank's gradient is its slice of the
    upstream gradient averaged over ranks (Horovod's definition)."""

    @staticmethod
    def forward(ctx, tensor, name):
        ctx.first_dim = tensor.shape[0]
        return synchronize(allgather_async(tensor, name=name))

    @staticmethod
    def backward(ctx, grad_output):
        averaged = synchronize(allreduce_async(grad_output.contiguous(), op=Average))
        dims = synchronize(allgather_async(torch.tensor([ctx.first_dim], dtype=torch.int64)))
        offset = int(dims[:_braid.rank()].sum())
        return averaged.narrow(0, offset, ctx.first_dim), None


def allgather(tensor, name=None, process_set=global_process_set):
    """Concatenates every rank's `tensor` along dimension 0; differentiable."""
    _check_process_set(process_set)
    _check_gatherable(tensor)
    return _AllgatherFunction.apply(tensor, name)


def grouped_allgather(tensors, name=None, process_set=global_process_set):
    """Allgathers a list of tensors; returns a list."""
    return synchronize(grouped_allgather_async(tensors, name, process_set))


def broadcast_async_(tensor, root_rank, name=None, process_set=global_process_set):
    """Starts an in-place broadcast of `tensor` from `root_rank`."""
    _check_process_set(process_set)
    _check_root(root_rank)
    staged = _engine_input(tensor)
    part = _C.broadcast_async(_op_name("broadcast", name), staged, int(root_rank),
                              _stream_of(tensor))

    def finish(_):
        if _needs_copy(staged, tensor):
            _copy_into(tensor, staged)
        return tensor

    return Handle([part], finish)


def broadcast_async(tensor, root_rank, name=None, process_set=global_process_set):
    """Starts a broadcast from `root_rank` into a new tensor; the input is left as it is."""
    _check_process_set(process_set)
    _check_root(root_rank)
    output = tensor.detach().clone(memory_format=torch.contiguous_format)
    part = _C.broadcast_async(_op_name("broadcast", name), output, int(root_rank),
                              _stream_of(tensor))
    return Handle([part], lambda _: output)


class _BroadcastFunction(torch.autograd.Function):
    """y = x on root; the root's gradient is every rank's upstream gradient averaged,
    the other ranks' is zero (Horovod's definition)."""

    @staticmethod
    def forward(ctx, tensor, root_rank, name):
        ctx.root_rank = root_rank
        return synchronize(broadcast_async(tensor, root_rank, name))

    @staticmethod
    def backward(ctx, grad_output):
        averaged = synchronize(allreduce_async(grad_output.contiguous(), op=Average))
        if _braid.rank() != ctx.root_rank:
            averaged.zero_()
        return averaged, None, None


def broadcast(tensor, root_rank, name=None, process_set=global_process_set):
    """Returns rank `root_rank`'s `tensor` on every rank; differentiable."""
    _check_process_set(process_set)
    return _BroadcastFunction.apply(tensor, root_rank, name)


def broadcast_(tensor, root_rank, name=None, process_set=global_process_set):
    """Overwrites `tensor` with rank `root_rank`'s, in place; returns it."""
    return synchronize(broadcast_async_(tensor, root_rank, name, process_set))


def join(device=-1):
    """Marks this rank as out of data: until every rank has joined, it takes part in
    the other ranks' allreduces with zeros. Blocks until all ranks have joined and
    returns the rank that joined last (the same value on every rank)."""
    del device  # host memory only in this build
    return int(_C.join_async().result())


def barrier(process_set=global_process_set):
    """Blocks until every rank has called barrier()."""
    _check_process_set(process_set)
    _C.barrier()
