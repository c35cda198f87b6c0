"""Python objects between ranks, with numpy and pickle only: what braid.tensorflow's
broadcast_object and allgather_object are, and what the test harness uses whatever
framework a run loaded. (braid.torch's use torch.save, which also stores tensors.)"""

import pickle

import numpy as np

import braid as _braid


def _dumps(obj):
    return np.frombuffer(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), np.uint8)


def broadcast_object(obj, root_rank=0, name=None):
    """Returns rank `root_rank`'s `obj` (anything pickle can store) on every rank."""
    # The default name must not depend on `obj`: only the root needs to pass one.
    name = "broadcast" if name is None else name
    root = _braid.rank() == root_rank
    payload = _dumps(obj) if root else np.empty(0, np.uint8)
    length = _braid.broadcast(np.array([payload.size], np.int64), root_rank,
                              name="pyobject.%s.length" % name)
    # The root's payload is read-only (a view of the pickle): the broadcast writes.
    data = payload.copy() if root else np.empty(int(length[0]), np.uint8)
    if data.size:
        _braid.broadcast_(data, root_rank, name="pyobject.%s.data" % name)
    return obj if root else pickle.loads(data.tobytes())


def allgather_object(obj, name=None):
    """Returns the list of every rank's `obj`, in rank order."""
    name = "allgather" if name is None else name
    payload = _dumps(obj)
    lengths = _braid.allgather(np.array([payload.size], np.int64),
                               name="pyobject.%s.lengths" % name)
    data = _braid.allgather(payload, name="pyobject.%s.data" % name).tobytes()
    out, offset = [], 0
    for n in lengths.tolist():
        out.append(pickle.loads(data[offset:offset + n]))
        offset += n
    return out
