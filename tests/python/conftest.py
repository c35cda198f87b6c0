"""Shared pytest setup for the tests in tests/python, which run under MPI, e.g.

    braidrun -np 2 python -m pytest -q tests/python/test_torch_*.py

- Ranks other than 0 are quiet: only rank 0 prints pytest's report. A rank above 0
  still prints one line to stderr per test that fails there; at the end rank 0 lists
  the other ranks' failures (and then exits non-zero too). Every rank's exit status
  is its own pytest result, so a failure on any rank fails the job.
- The fixture `hvd` initialises braid.torch once per session (collective) and gives
  the module; the torch test modules use it. `tfhvd` does the same for
  braid.tensorflow. Nothing here imports torch, so the
  numpy-level tests (test_basic.py, test_braidrun.py) run without it.
- Tests named test_join* run after all others: join changes how every rank takes
  part in collectives, so a broken join must not take other tests down with it.
- After every test the ranks check that they ran the same one (an allgather of the
  test's id). A test whose collectives differ between ranks (a timing-dependent
  one, say) leaves the ranks a test apart; every later test would then wait out
  the stall timeout and fail. Instead the run stops at the first such test, on
  every rank, naming the test each rank was at.
"""

import importlib.util
import os
import sys
import zlib

import pytest

# A rank that diverges turns into an error on every rank instead of a hang.
os.environ.setdefault("BRAID_STALL_TIMEOUT_SECONDS", "60")
# Two ranks share two cores: one intra-op thread each.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _load_triton_before_tensorflow():
    """TensorFlow and triton (which torch loads for its compiler, e.g. on the first
    torch.optim optimizer) each bundle LLVM; triton loaded after TensorFlow aborts the
    process ("LLVM ERROR: inconsistency in registered CommandLine options"). Loaded
    in this order the two live together (docs/tensorflow.md)."""
    if "tensorflow" in sys.modules:
        return
    if importlib.util.find_spec("triton") and importlib.util.find_spec("tensorflow"):
        import triton  # noqa: F401


_load_triton_before_tensorflow()


def _launcher_rank():
    """This process's rank as the MPI launcher set it (0 when not under MPI)."""
    for var in ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"):
        if var in os.environ:
            try:
                return int(os.environ[var])
            except ValueError:
                pass
    return 0


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped, with a reason, without one)")
    if _launcher_rank() == 0:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        config.pluginmanager.unregister(reporter)


_failed_here = []  # (nodeid, phase, first line of the message) of this rank's failures
# "initialised": a fixture started braid (braid.torch or braid.tensorflow).
_session = {"initialised": False, "out_of_step": False}
_STEP_NAME = "conftest.step"


def pytest_runtest_logreport(report):
    if not report.failed:
        return
    crash = getattr(report.longrepr, "reprcrash", None)
    message = crash.message.splitlines()[0][:300] if crash is not None and crash.message else ""
    _failed_here.append((report.nodeid, report.when, message))
    rank = _launcher_rank()
    if rank == 0:
        return
    summary = " - " + message if message else ""
    sys.stderr.write("rank %d: FAILED %s (%s)%s\n" % (rank, report.nodeid, report.when, summary))
    sys.stderr.flush()


def pytest_collection_modifyitems(session, config, items):
    # Stable: every rank keeps the same order.
    items.sort(key=lambda item: item.name.startswith("test_join"))


def _out_of_step(nodeid, why):
    _session["out_of_step"] = True
    message = ("rank %d: the ranks are out of step after %s (%s); stopping the run: every "
               "later test would only wait out the stall timeout"
               % (_launcher_rank(), nodeid, why))
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    pytest.exit(message, returncode=3)


def _check_lockstep(nodeid):
    """Every rank finished the test `nodeid`, or the run stops (see the module doc)."""
    braid = sys.modules.get("braid")
    if braid is None or not braid.is_initialized() or braid.size() < 2:
        return
    import numpy as np

    mine = zlib.crc32(nodeid.encode())
    try:
        every = braid.allgather(np.array([mine], np.int64), name=_STEP_NAME)
    except braid.BraidError as e:
        _out_of_step(nodeid, "the check itself failed: %s" % str(e).splitlines()[0][:300])
    if (every != mine).any():
        _out_of_step(nodeid, "another rank finished another test")


@pytest.fixture(autouse=True)
def _lockstep(request):
    yield
    _check_lockstep(request.node.nodeid)


@pytest.fixture(scope="session")
def hvd():
    """braid.torch, initialised (collective: every rank runs the same tests)."""
    import torch

    torch.set_num_threads(1)
    import braid.torch as hvd_module

    hvd_module.init()
    _session["initialised"] = True
    yield hvd_module


@pytest.fixture(scope="session")
def tfhvd():
    """braid.tensorflow, initialised (collective). TensorFlow is required when
    BRAID_TEST_REQUIRE_TENSORFLOW=1 (the README's test command), else skipped
    without it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("BRAID_TEST_REQUIRE_TENSORFLOW") == "1":
        import tensorflow as tf
    else:
        tf = pytest.importorskip("tensorflow")
    # Ranks share two cores: one thread per op, two ops at a time.
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(2)
    except RuntimeError:  # already set: TensorFlow was used before this fixture
        pass
    import braid.tensorflow as hvd_module

    hvd_module.init()
    _session["initialised"] = True
    yield hvd_module


@pytest.fixture(scope="module")
def tf_world(tfhvd):
    """(rank, size) of this process in braid.tensorflow."""
    return tfhvd.rank(), tfhvd.size()


@pytest.fixture(scope="module")
def world(hvd):
    """(rank, size) of this process in braid.torch."""
    return hvd.rank(), hvd.size()


def pytest_sessionfinish(session, exitstatus):
    """Rank 0 lists the failures of the other ranks, and fails if any rank failed.
    Collective (every rank ran the same tests); only when a fixture started braid."""
    import braid

    if (not _session["initialised"] or not braid.is_initialized() or braid.size() < 2
            or _session["out_of_step"]):
        return
    from braid import _objects

    try:
        every = _objects.allgather_object(_failed_here, name="conftest.failures")
    except Exception as e:  # noqa: BLE001 - a diverged run must still finish
        sys.stderr.write("rank %d: could not gather failures: %s\n" % (braid.rank(), e))
        return
    others = [(r, f) for r, failed in enumerate(every) if r != braid.rank() for f in failed]
    if braid.rank() == 0 and others:
        _session["others"] = others
        if session.exitstatus == 0:
            session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    others = _session.get("others")
    if others:
        terminalreporter.write_sep("=", "failures on other ranks")
        for r, (nodeid, when, message) in others:
            terminalreporter.write_line("rank %d: FAILED %s (%s) - %s"
                                        % (r, nodeid, when, message))
