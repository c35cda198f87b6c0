"""braid.torch errors: cross-rank mismatches give the same error everywhere and
leave braid usable; bad arguments; operations before init.

Run under MPI, e.g. braidrun -np 3 python -m pytest -q tests/python/. Every rank runs
the same tests in the same order; expected values are computed here from rank and
size."""

import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

import braid  # noqa: E402
from torch_util import assert_same, needs_two  # noqa: E402

# ---------------------------------------------------------------- errors


def check_mismatch(hvd, tag, call):
    """`call` fails on every rank with a BraidMismatchError (a RuntimeError) carrying
    the same text everywhere, and braid still works afterwards. Every rank makes the
    same collective calls whatever happens, and checks only at the end."""
    size = hvd.size()
    try:
        call()
        error = None
    except Exception as e:  # noqa: BLE001 - checked below
        error = e
    messages = hvd.allgather_object(str(error), name="mismatch.msg." + tag)
    ok = hvd.allreduce(torch.ones(3), name="mismatch.after." + tag, op=hvd.Sum)
    assert error is not None, "no error raised"
    assert isinstance(error, braid.BraidMismatchError), repr(error)
    assert isinstance(error, braid.BraidError) and isinstance(error, RuntimeError)
    assert len(messages) == size
    assert all(m == messages[0] for m in messages), messages
    assert messages[0].strip()
    assert_same(ok, torch.full((3,), float(size), dtype=torch.float64), torch.float32)


def test_mismatched_allreduce_shape(hvd, world):
    needs_two(world)
    rank, size = world
    check_mismatch(hvd, "ar.shape", lambda: hvd.allreduce(torch.ones(rank + 1),
                                                          name="mm.ar.shape"))


def test_mismatched_allreduce_dtype(hvd, world):
    needs_two(world)
    rank, size = world
    dtype = torch.float32 if rank % 2 == 0 else torch.float64
    check_mismatch(hvd, "ar.dtype", lambda: hvd.allreduce(torch.ones(5, dtype=dtype),
                                                          name="mm.ar.dtype", op=hvd.Sum))


def test_mismatched_allreduce_op(hvd, world):
    needs_two(world)
    rank, size = world
    op = hvd.Sum if rank == 0 else hvd.Max
    check_mismatch(hvd, "ar.op", lambda: hvd.allreduce(torch.ones(5), name="mm.ar.op", op=op))


def test_mismatched_allgather_trailing_shape(hvd, world):
    needs_two(world)
    rank, size = world
    check_mismatch(hvd, "ag.shape", lambda: hvd.allgather(torch.ones(2, rank + 1),
                                                          name="mm.ag.shape"))


def test_mismatched_allgather_dtype(hvd, world):
    needs_two(world)
    rank, size = world
    dtype = torch.int32 if rank % 2 == 0 else torch.int64
    check_mismatch(hvd, "ag.dtype", lambda: hvd.allgather(torch.ones(2, 3, dtype=dtype),
                                                          name="mm.ag.dtype"))


def test_mismatched_broadcast_root(hvd, world):
    needs_two(world)
    rank, size = world
    check_mismatch(hvd, "bc.root", lambda: hvd.broadcast(torch.ones(4), rank,
                                                         name="mm.bc.root"))


def test_mismatched_broadcast_shape(hvd, world):
    needs_two(world)
    rank, size = world
    check_mismatch(hvd, "bc.shape", lambda: hvd.broadcast_(torch.ones(3, rank + 2), 0,
                                                           name="mm.bc.shape"))


def test_broadcast_root_out_of_range(hvd, world):
    rank, size = world
    with pytest.raises((ValueError, braid.BraidError)):
        hvd.broadcast(torch.ones(2), size, name="bc.badroot")
    hvd.barrier()


def test_unsupported_dtype_is_refused(hvd, world):
    with pytest.raises((ValueError, TypeError, braid.BraidError)):
        hvd.allreduce(torch.ones(3, dtype=torch.complex64), name="ar.complex", op=hvd.Sum)
    hvd.barrier()


BEFORE_INIT_SCRIPT = r"""
import json, sys, torch
import braid, braid.torch as hvd
out = {"is_initialized": hvd.is_initialized()}
for what, call in [
        ("allreduce", lambda: hvd.allreduce(torch.ones(3), name="before.init")),
        ("allgather", lambda: hvd.allgather(torch.ones(3), name="before.init.ag")),
        ("broadcast_", lambda: hvd.broadcast_(torch.ones(3), 0, name="before.init.bc"))]:
    try:
        call()
        out[what] = None
    except Exception as e:
        out[what] = [type(e).__name__, isinstance(e, braid.BraidNotInitializedError), str(e)]
print("RESULT " + json.dumps(out))
"""


def test_ops_before_init_raise(hvd, world):
    """In a separate process without an MPI launcher (this process is initialised)."""
    rank, size = world
    if rank != 0:
        return  # not collective: one process started from rank 0 is enough
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMPI_", "PMIX_", "PMI_", "OPAL_", "HYDRA_"))}
    proc = subprocess.run([sys.executable, "-c", BEFORE_INIT_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=120)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (proc.returncode, proc.stdout, proc.stderr[-3000:])
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["is_initialized"] is False
    for what in ("allreduce", "allgather", "broadcast_"):
        assert out[what] is not None, "%s before init did not raise" % what
        kind, not_initialized, message = out[what]
        assert not_initialized, "%s raised %s: %s" % (what, kind, message)
        assert "not initialized" in message.lower(), message
