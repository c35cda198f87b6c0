"""braid's framework-neutral API on numpy arrays. Run under MPI, e.g.
mpirun -np 3 python3 -m pytest -q tests/python/test_basic.py
Expected values are computed here from rank and size."""

import os
import threading
import time

import numpy as np
import pytest

# A rank that diverges turns into an error on every rank instead of a hang.
os.environ.setdefault("BRAID_STALL_TIMEOUT_SECONDS", "60")

import braid  # noqa: E402

DTYPES = [np.uint8, np.int8, np.int32, np.int64, np.float16, np.float32, np.float64]
SHAPES = [(5,), (3, 4), (2, 3, 2)]


def test_ops_before_init_raise_not_initialized():
    # Another module of the same run may have started braid already (every rank
    # runs the same modules in the same order, so every rank stops it here).
    if braid.is_initialized():
        braid.shutdown()
    assert not braid.is_initialized()
    assert braid.rank() == -1 and braid.size() == -1
    with pytest.raises(braid.BraidNotInitializedError, match="not initialized"):
        braid.allreduce(np.ones(3, np.float32), name="before.init")
    with pytest.raises(braid.BraidError):
        braid.barrier()


@pytest.fixture(scope="module")
def world():
    braid.init()
    yield braid.rank(), braid.size()


def base(shape, dtype, high=3):
    return (np.arange(int(np.prod(shape))) % high + 1).reshape(shape).astype(dtype)


def test_init_rank_size(world):
    rank, size = world
    assert braid.is_initialized()
    assert 0 <= rank < size
    if "OMPI_COMM_WORLD_SIZE" in os.environ:
        assert size == int(os.environ["OMPI_COMM_WORLD_SIZE"])
        assert rank == int(os.environ["OMPI_COMM_WORLD_RANK"])
    assert 0 <= braid.local_rank() < braid.local_size() <= size
    assert 0 <= braid.cross_rank() < braid.cross_size() <= size
    ranks = braid.allgather(np.array([rank], np.int32), name="ranks")
    np.testing.assert_array_equal(ranks, np.arange(size))


def test_build_info_and_config_vars():
    info = braid.build_info()
    assert set(info) >= {"mpi", "cuda", "nccl", "hwloc"} and info["mpi"] is True
    assert braid.mpi_built() and braid.mpi_enabled()
    assert braid.nccl_built() == info["nccl"] and braid.cuda_built() == info["cuda"]
    names = [v["name"] for v in braid.config_vars()]
    assert "BRAID_CYCLE_TIME_MS" in names
    for v in braid.config_vars():
        assert set(v) == {"name", "type", "default", "accepted", "help"}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "%dd" % len(s))
def test_allreduce_ops(world, dtype, shape):
    rank, size = world
    b = base(shape, dtype, high=2)
    x = (b * (rank + 1)).astype(dtype)
    key = "%s.%d" % (np.dtype(dtype).name, len(shape))
    got = braid.allreduce(x, name="sum." + key, op=braid.Sum)
    assert got.dtype == x.dtype and got.shape == x.shape
    np.testing.assert_array_equal(got, (b * (size * (size + 1) // 2)).astype(dtype))
    np.testing.assert_array_equal(x, (b * (rank + 1)).astype(dtype))  # out of place
    np.testing.assert_array_equal(braid.allreduce(x, name="min." + key, op=braid.Min), b)
    np.testing.assert_array_equal(braid.allreduce(x, name="max." + key, op=braid.Max),
                                  (b * size).astype(dtype))
    factorial = int(np.prod(np.arange(1, size + 1)))
    np.testing.assert_array_equal(braid.allreduce(x, name="prod." + key, op=braid.Product),
                                  (b.astype(np.int64) ** size * factorial).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_allreduce_average_and_scaling(world, dtype):
    rank, size = world
    x = np.full((4, 3), rank + 1, dtype)
    avg = braid.allreduce(x, name="avg.%s" % np.dtype(dtype).name)  # Average by default
    np.testing.assert_allclose(avg, np.full((4, 3), (size + 1) / 2), rtol=1e-3)
    scaled = braid.allreduce(x, name="scaled.%s" % np.dtype(dtype).name, op=braid.Sum,
                             prescale_factor=2.0, postscale_factor=0.5)
    np.testing.assert_allclose(scaled, np.full((4, 3), size * (size + 1) / 2), rtol=1e-3)


def test_allreduce_in_place(world):
    rank, size = world
    x = np.full(7, rank + 1, np.float32)
    out = braid.allreduce_(x, name="inplace", op=braid.Sum)
    assert out is x
    np.testing.assert_array_equal(x, np.full(7, size * (size + 1) / 2))


def test_many_async_handles_outstanding(world):
    rank, size = world
    arrays = [np.full(i + 1, rank + i, np.float64) for i in range(64)]
    handles = [braid.allreduce_async(a, name="many.%d" % i, op=braid.Sum)
               for i, a in enumerate(arrays)]
    del arrays  # the handles keep the inputs alive
    for i, h in reversed(list(enumerate(handles))):
        expected = sum(r + i for r in range(size))
        np.testing.assert_array_equal(braid.synchronize(h), np.full(i + 1, expected))
        assert braid.poll(h)


def test_allgather_variable_first_dim(world):
    rank, size = world
    x = np.full((rank + 1, 3), rank, np.int64)
    got = braid.allgather(x, name="gather.var")
    expected = np.concatenate([np.full((r + 1, 3), r, np.int64) for r in range(size)])
    np.testing.assert_array_equal(got, expected)
    empty = braid.allgather(np.zeros((0, 2), np.float32), name="gather.empty")
    assert empty.shape == (0, 2)


def test_broadcast_from_every_root(world):
    rank, size = world
    for root in range(size):
        x = np.full((2, 5), rank * 10 + 1, np.float32)
        braid.broadcast_(x, root, name="bcast.%d" % root)
        np.testing.assert_array_equal(x, np.full((2, 5), root * 10 + 1))
        y = np.full(3, rank, np.int32)
        z = braid.broadcast(y, root, name="bcast.copy.%d" % root)
        np.testing.assert_array_equal(z, np.full(3, root))
        np.testing.assert_array_equal(y, np.full(3, rank))


class DLPackOnly:
    """An array reachable only through __dlpack__ (as a torch tensor is)."""

    def __init__(self, array):
        self.array = array

    def __dlpack__(self, stream=None):
        return self.array.__dlpack__()

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


def test_dlpack_input(world):
    rank, size = world
    x = np.full(6, rank + 1, np.float32)
    braid.synchronize(braid.allreduce_async_(DLPackOnly(x), name="dlpack", op=braid.Sum))
    np.testing.assert_array_equal(x, np.full(6, size * (size + 1) / 2))


def test_mismatched_shape_same_error_everywhere(world):
    rank, size = world
    if size < 2:
        pytest.skip("needs two ranks")
    with pytest.raises(braid.BraidMismatchError) as err:
        braid.allreduce(np.ones(rank + 1, np.float32), name="mismatch")
    msg = str(err.value).encode()
    assert b"mismatch" in msg
    lengths = braid.allgather(np.array([len(msg)], np.int64), name="mismatch.len")
    padded = np.zeros(int(lengths.max()), np.uint8)
    padded[: len(msg)] = np.frombuffer(msg, np.uint8)
    every = braid.allgather(padded[None, :], name="mismatch.msg")
    for row in every:
        assert bytes(row).rstrip(b"\0") == msg
    # The engine is still usable afterwards.
    ok = braid.allreduce(np.ones(2, np.float32), name="after.mismatch", op=braid.Sum)
    np.testing.assert_array_equal(ok, np.full(2, size))


def test_invalid_arguments(world):
    with pytest.raises(braid.BraidInvalidArgument) as err:
        braid.allreduce(np.ones((4, 4), np.float32)[:, ::2], name="strided")
    assert isinstance(err.value, ValueError) and "contiguous" in str(err.value)
    with pytest.raises(ValueError, match="unsupported"):
        braid.allreduce(np.ones(3, np.complex64), name="complex")
    with pytest.raises(braid.BraidInvalidArgument):
        braid.allreduce_(np.ones(3, np.float32), name="badop", op=17)


def test_barrier(world):
    braid.barrier()
    braid.barrier()


def test_dropped_handle_keeps_its_arrays(world):
    rank, size = world
    h = braid.allreduce_async_(np.full(1 << 16, 1.0), name="dropped", op=braid.Sum)
    del h  # the array has no other reference; the engine must still be able to write it
    braid.barrier()
    ok = braid.allreduce(np.ones(3), name="after.dropped", op=braid.Sum)
    np.testing.assert_array_equal(ok, np.full(3, size))


def test_shutdown_aborts_pending_and_reinit_works(world):
    rank, size = world
    # Submitted on rank 0 only, so it cannot finish (with one rank there is no other).
    lonely = rank == 0 and size > 1
    pending = braid.allreduce_async(np.ones(4), name="only.rank0") if lonely else None
    # Shutting down on one rank stops the engine on every rank: without the barrier
    # a rank that reached shutdown() first could stop rank 0's engine before rank 0
    # submitted, and rank 0 would then be refused at submission instead.
    braid.barrier()
    braid.shutdown()
    assert not braid.is_initialized()
    if pending is not None:
        with pytest.raises(braid.BraidAbortedError):
            braid.synchronize(pending)
    with pytest.raises(braid.BraidNotInitializedError):
        braid.allreduce(np.ones(2), name="after.shutdown")
    braid.init()
    assert braid.is_initialized() and braid.size() == size
    ok = braid.allreduce(np.ones(2), name="after.reinit", op=braid.Sum)
    np.testing.assert_array_equal(ok, np.full(2, size))


def test_shutdown_on_another_rank_stops_this_one(world):
    """braid.shutdown() on any rank stops the engine on every rank (as in Horovod): a
    rank still working finds braid uninitialized, its next operation is refused
    with an error that says why and what to do, and init() starts it again."""
    rank, size = world
    if size < 2:
        pytest.skip("needs a second rank")
    braid.barrier()
    if rank != 0:
        braid.shutdown()
    else:
        deadline = time.monotonic() + 60
        while braid.is_initialized() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not braid.is_initialized(), "another rank's shutdown did not stop this one"
        with pytest.raises(braid.BraidAbortedError, match="shut down .*init again"):
            braid.allreduce_async(np.ones(4), name="after.remote.shutdown")
        braid.shutdown()  # nothing left to stop
    braid.init()
    ok = braid.allreduce(np.ones(2), name="after.remote.reinit", op=braid.Sum)
    np.testing.assert_array_equal(ok, np.full(2, size))


def test_allgather_output_through_dlpack(world):
    rank, size = world
    h = braid.allgather_async(np.full((2, 3), rank, np.float32), name="gather.dlpack")
    out = h._h.result()  # the braid-owned output; numpy reads it through __dlpack__
    del h
    got = np.from_dlpack(out)
    del out  # the array keeps the pooled buffer alive
    expected = np.repeat(np.arange(size, dtype=np.float32), 2)[:, None] * np.ones(3, np.float32)
    np.testing.assert_array_equal(got, expected)


def test_wait_releases_the_gil(world):
    rank, size = world
    if size < 2:
        pytest.skip("needs a rank that submits late")
    if rank != 0:
        time.sleep(0.5)  # rank 0's waiter blocks meanwhile
        braid.allreduce(np.ones(2), name="gil", op=braid.Sum)
        return
    h = braid.allreduce_async(np.ones(2), name="gil", op=braid.Sum)
    waiter = threading.Thread(target=braid.synchronize, args=(h,))
    waiter.start()
    time.sleep(0.05)  # let the waiter block in wait()
    spins, deadline = 0, time.monotonic() + 0.2
    while waiter.is_alive() and time.monotonic() < deadline:
        spins += 1  # pure Python: runs only while the waiter does not hold the GIL
    assert waiter.is_alive() and spins > 1000
    waiter.join()
    np.testing.assert_array_equal(braid.synchronize(h), np.full(2, size))
