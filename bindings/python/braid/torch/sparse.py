"""Sparse (torch.sparse_coo) tensors on braid's sparse allreduce.

A sparse COO tensor of shape S = sparse_shape + dense_shape (sparse_dim sparse
dimensions, the rest dense) is carried as rows: its sparse indices become one linear
row index over prod(sparse_shape) (row-major), its values rows of prod(dense_shape)
elements. Every row gets one more element, a presence mark (1 on every rank that has
the row), so the reduced buffer tells which rows any rank had: those are the rows of
the result, also where the values summed to exactly zero. A single process on the
concatenated data would have had those rows too (autograd's sparse gradient of an
embedding lists every looked-up row), and optimizers such as torch.optim.SparseAdam
update exactly the rows a gradient has, so the distributed result steps the same rows.

The result is coalesced, its rows in ascending order, with the input's shape, dtype
and device.
"""

import torch

import braid as _braid

_C = _braid._C

_SUM, _AVERAGE = _braid.Sum, _braid.Average
_INT32_MAX = 2 ** 31 - 1
_FLOAT_TYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class Layout:
    """How a sparse tensor maps onto rows: the full shape, the sparse dimensions'
    sizes, the number of rows and the elements per row (without the presence mark)."""

    __slots__ = ("shape", "sparse_shape", "rows", "row_numel", "dtype", "device")

    def __init__(self, tensor):
        self.shape = tuple(tensor.shape)
        sparse_dim = tensor.sparse_dim()
        self.sparse_shape = self.shape[:sparse_dim]
        self.rows = _prod(self.sparse_shape)
        self.row_numel = _prod(self.shape[sparse_dim:])
        self.dtype = tensor.dtype
        self.device = tensor.device

    @property
    def index_dtype(self):
        return torch.int32 if self.rows <= _INT32_MAX else torch.int64

    def buffer(self):
        """An uninitialised [rows, row_numel + 1] buffer (values and presence mark)."""
        return torch.empty((self.rows, self.row_numel + 1), dtype=self.dtype,
                           device=self.device)


def _prod(dims):
    n = 1
    for d in dims:
        n *= int(d)
    return n


def check_sparse(tensor, what):
    if tensor.layout != torch.sparse_coo:
        raise ValueError("%s: expected a torch.sparse_coo tensor, got layout %s"
                         % (what, tensor.layout))
    if tensor.dtype not in _FLOAT_TYPES:
        raise ValueError("%s: sparse tensors must hold float16, bfloat16, float32 or float64 "
                         "values, not %s" % (what, tensor.dtype))
    if tensor.sparse_dim() < 1:
        raise ValueError("%s: the sparse tensor has no sparse dimension" % what)


def check_op(op, prescale_factor=1.0, postscale_factor=1.0, what="sparse_allreduce"):
    if op not in (_SUM, _AVERAGE):
        raise ValueError("%s: sparse tensors are reduced with op=Sum or op=Average only "
                         "(got op %r)" % (what, op))
    if prescale_factor != 1.0 or postscale_factor != 1.0:
        raise ValueError("%s: prescale_factor and postscale_factor are not supported for "
                         "sparse tensors (got %r and %r)"
                         % (what, prescale_factor, postscale_factor))


def rows_of(tensor, layout):
    """(row index [nnz], rows [nnz, row_numel + 1]) of a coalesced copy of `tensor`,
    each row ending in its presence mark 1."""
    t = tensor.detach().coalesce()
    indices, values = t.indices(), t.values()
    if len(layout.sparse_shape) == 1:
        linear = indices[0]
    else:
        linear = torch.zeros(indices.shape[1], dtype=torch.int64, device=indices.device)
        for d, size in enumerate(layout.sparse_shape):
            linear = linear * int(size) + indices[d]
    rows = torch.empty((values.shape[0], layout.row_numel + 1), dtype=layout.dtype,
                       device=layout.device)
    rows[:, :-1] = values.reshape(values.shape[0], layout.row_numel)
    rows[:, -1] = 1
    return linear.to(layout.index_dtype).contiguous(), rows


def dense_rows_of(tensor, layout):
    """The [rows, row_numel + 1] buffer of `tensor` in dense form, each row's presence
    mark 1 where `tensor` has the row, else 0: what a dense allreduce reduces when
    sparse gradients travel as dense ones."""
    linear, rows = rows_of(tensor, layout)
    buf = torch.zeros((layout.rows, layout.row_numel + 1), dtype=layout.dtype,
                      device=layout.device)
    buf.index_add_(0, linear.to(torch.int64), rows)
    return buf


def to_sparse(buf, layout):
    """The coalesced sparse tensor of a reduced [rows, row_numel + 1] buffer: the rows
    whose presence mark is nonzero, with their values."""
    present = (buf[:, -1] != 0).nonzero().squeeze(1)
    values = buf.index_select(0, present)[:, :-1]
    values = values.reshape((present.numel(),) + layout.shape[len(layout.sparse_shape):])
    if len(layout.sparse_shape) == 1:
        indices = present.unsqueeze(0)
    else:
        parts, rest = [], present
        for size in reversed(layout.sparse_shape):
            parts.append(rest % int(size))
            rest = torch.div(rest, int(size), rounding_mode="floor")
        indices = torch.stack(parts[::-1])
    return torch.sparse_coo_tensor(indices, values.contiguous(), layout.shape,
                                   dtype=layout.dtype, device=layout.device,
                                   is_coalesced=True, check_invariants=False)


def submit(tensor, name, op, stream):
    """Starts the sparse allreduce of `tensor` under the engine name `name`. Returns
    (engine handle, finish), finish turning the handle's result into the sparse
    result."""
    layout = Layout(tensor)
    indices, rows = rows_of(tensor, layout)
    buf = layout.buffer()
    part = _C.sparse_allreduce_async(name, indices, rows, buf, op, True, stream)

    def finish(_):
        return to_sparse(buf, layout)

    return part, finish
