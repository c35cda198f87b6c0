"""Model and optimizer helpers: broadcast parameters, optimizer state and arbitrary
Python objects from one rank, and gather objects from every rank."""

import io
import pickle

import torch

import braid as _braid

from .mpi_ops import allgather, broadcast_, broadcast_async_, synchronize


def broadcast_parameters(params, root_rank, prefix=None):
    """Overwrites parameters with rank `root_rank`'s, in place.

    `params` is a ``model.state_dict()``, ``model.named_parameters()`` or a list of
    (name, tensor) pairs or of tensors. Typically called once after building the
    model, so every rank starts from the same weights."""
    if isinstance(params, dict):
        items = sorted(params.items())
    elif isinstance(params, list):
        items = [p if isinstance(p, tuple) else (None, p) for p in params]
    elif hasattr(params, "__iter__") and not isinstance(params, torch.Tensor):
        items = [p if isinstance(p, tuple) else (None, p) for p in params]
    else:
        raise ValueError("broadcast_parameters: invalid params of type %s (expected a "
                         "state_dict, named_parameters() or a list of tensors)"
                         % type(params).__name__)
    handles = []
    for name, p in items:
        if not isinstance(p, torch.Tensor):
            continue  # state_dict entries such as None buffers
        if name is not None and prefix:
            name = prefix + name
        handles.append(broadcast_async_(p, root_rank, name=name))
    for h in handles:
        synchronize(h)


def _dumps(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    return buffer.getvalue()


def _loads(data):
    return torch.load(io.BytesIO(data), weights_only=False)


def _bytes_tensor(data):
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.empty(
        0, dtype=torch.uint8)


def broadcast_object(obj, root_rank=0, name=None, process_set=None):
    """Returns rank `root_rank`'s `obj` (anything torch.save can store) on every rank."""
    del process_set
    # The default name must not depend on `obj`: only the root needs to pass one.
    name = "broadcast" if name is None else name
    payload = _dumps(obj) if _braid.rank() == root_rank else b""
    length = torch.tensor([len(payload)], dtype=torch.int64)
    broadcast_(length, root_rank, name="object.%s.length" % name)
    data = _bytes_tensor(payload) if payload else torch.empty(int(length[0]), dtype=torch.uint8)
    broadcast_(data, root_rank, name="object.%s.data" % name)
    return obj if _braid.rank() == root_rank else _loads(data.numpy().tobytes())


def allgather_object(obj, name=None, process_set=None):
    """Returns the list of every rank's `obj`, in rank order."""
    del process_set
    name = "allgather" if name is None else name
    payload = _dumps(obj)
    lengths = allgather(torch.tensor([len(payload)], dtype=torch.int64),
                        name="object.%s.lengths" % name)
    data = allgather(_bytes_tensor(payload), name="object.%s.data" % name).numpy().tobytes()
    out, offset = [], 0
    for n in lengths.tolist():
        out.append(_loads(data[offset:offset + n]))
        offset += n
    return out


def broadcast_optimizer_state(optimizer, root_rank, model=None):
    """Makes every rank's optimizer state (per-parameter buffers such as momentum or
    Adam's moments, step counts, and the param_groups' hyperparameters) equal to
    rank `root_rank`'s. Parameters are matched by their position in param_groups."""
    del model
    if isinstance(optimizer, torch.optim.LBFGS):
        raise ValueError("cannot broadcast torch.optim.LBFGS state")
    state = broadcast_object(optimizer.state_dict() if _braid.rank() == root_rank else None,
                             root_rank, name="optimizer_state")
    if _braid.rank() != root_rank:
        optimizer.load_state_dict(state)
