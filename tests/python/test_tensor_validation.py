"""Tensors braid cannot use are refused with braid.BraidInvalidArgument naming the
tensor and the problem, before anything is enqueued on the rank, and the engine
goes on: non-contiguous arrays (numpy, and torch through braid's array API),
negative dimensions and element counts beyond int64 (from a DLPack exporter: no
framework makes such a tensor). braid.torch copies a non-contiguous tensor into a
contiguous one and writes the result back instead, in place or not.

Every rank makes the same calls, so every rank raises at once and none waits.
Run under MPI, e.g. braidrun -np 2 python -m pytest -q tests/python/test_tensor_validation.py"""

import ctypes

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import braid  # noqa: E402


def engine_usable(size):
    out = braid.allreduce(np.ones(3, np.float32), name="validation.usable", op=braid.Sum)
    np.testing.assert_array_equal(out, np.full(3, size, np.float32))


# ---------------------------------------------------------------- non-contiguous

ENTRY_POINTS = {
    "allreduce": lambda a, name: braid.allreduce(a, name=name, op=braid.Sum),
    "allreduce_": lambda a, name: braid.allreduce_(a, name=name, op=braid.Sum),
    "allgather": lambda a, name: braid.allgather(a, name=name),
    "broadcast_": lambda a, name: braid.broadcast_(a, 0, name=name),
}


def strided_arrays():
    return {
        "numpy": np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2],
        "numpy.T": np.arange(12, dtype=np.int16).reshape(3, 4).T,
        "torch": torch.arange(24, dtype=torch.float32).reshape(4, 6)[:, ::2],
        "torch.T": torch.arange(12, dtype=torch.int16).reshape(3, 4).t(),
    }


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_non_contiguous_is_refused_by_the_array_api(world, entry):
    for kind, array in strided_arrays().items():
        name = "strided.%s.%s" % (entry, kind)
        with pytest.raises(braid.BraidInvalidArgument) as err:
            ENTRY_POINTS[entry](array, name)
        assert isinstance(err.value, ValueError)
        assert name in str(err.value) and "not C-contiguous" in str(err.value), str(err.value)
    engine_usable(world[1])


def test_braid_torch_stages_non_contiguous_tensors(hvd, world):
    """In place, the result is written through the strided view; the rest of the
    base is untouched. Out of place and allgather work by value."""
    rank, size = world
    base = torch.zeros(4, 6, dtype=torch.float64)
    view = base[:, ::2]
    view.fill_(rank + 1.0)
    hvd.allreduce_(view, name="staged.allreduce_", op=hvd.Sum)
    expected = torch.zeros(4, 6, dtype=torch.float64)
    expected[:, ::2] = size * (size + 1) / 2
    assert torch.equal(base, expected)

    base = torch.full((3, 4), -1, dtype=torch.int16)
    view = base.t()
    if rank == 0:
        view.copy_(torch.arange(12, dtype=torch.int16).reshape(4, 3))
    hvd.broadcast_(view, 0, name="staged.broadcast_")
    assert torch.equal(view, torch.arange(12, dtype=torch.int16).reshape(4, 3))

    gathered = hvd.allgather(torch.arange(8, dtype=torch.int32).reshape(2, 4).t() + rank,
                             name="staged.allgather")
    expected = torch.cat([torch.arange(8, dtype=torch.int32).reshape(2, 4).t() + r
                          for r in range(size)])
    assert torch.equal(gathered, expected)


def test_empty_tensors_are_contiguous_whatever_their_strides(world):
    # torch gives the transpose of an empty (0, 3) tensor the strides (1, 3).
    empty = torch.empty(0, 3).t()
    assert tuple(empty.shape) == (3, 0)
    assert braid.allreduce_(empty, name="empty.transposed", op=braid.Sum) is empty


# ---------------------------------------------------------------- impossible shapes


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p)]


_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


class ClaimedShape:
    """A DLPack exporter of a small float32 CPU buffer that claims `shape` (a
    broken or hostile exporter: the only way to hand braid such a shape)."""

    def __init__(self, shape):
        self.storage = np.zeros(16, np.float32)
        self.shape = (ctypes.c_int64 * len(shape))(*shape)
        self.managed = DLManagedTensor()
        t = self.managed.dl_tensor
        t.data = self.storage.ctypes.data
        t.device = DLDevice(1, 0)  # kDLCPU
        t.ndim = len(shape)
        t.dtype = DLDataType(2, 32, 1)  # float32
        t.shape = self.shape
        self.capsules = []  # kept alive: they point into this object

    def __dlpack__(self, stream=None):
        capsule = _capsule_new(ctypes.addressof(self.managed), b"dltensor", None)
        self.capsules.append(capsule)
        return capsule

    def __dlpack_device__(self):
        return (1, 0)

    def copy(self):  # what braid.allreduce allocates its output with
        return ClaimedShape(tuple(self.shape))


@pytest.mark.parametrize("shape, problem", [
    ((2, -3), "dimension 1 is negative"),
    ((1 << 40, 1 << 40), "element count overflows int64"),
    ((1 << 62,), "overflow an int64 byte count"),
], ids=["negative", "elements", "bytes"])
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_impossible_shapes_are_refused(world, entry, shape, problem):
    name = "shape.%s.%d" % (entry, len(shape))
    with pytest.raises(braid.BraidInvalidArgument) as err:
        ENTRY_POINTS[entry](ClaimedShape(shape), name)
    message = str(err.value)
    assert name in message and problem in message, message
    assert str(list(shape)).replace(" ", "") in message.replace(" ", ""), message
    engine_usable(world[1])


def test_an_exporter_within_limits_is_accepted(world):
    """The same exporter with a sound shape reduces normally (the test exporter
    itself is right)."""
    rank, size = world
    t = ClaimedShape((4, 4))
    t.storage[:] = rank + 1
    braid.allreduce_(t, name="shape.sound", op=braid.Sum)
    np.testing.assert_array_equal(t.storage, np.full(16, size * (size + 1) / 2, np.float32))
