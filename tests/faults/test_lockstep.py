"""The Python suites' lockstep check (tests/python/conftest.py): a test whose
collectives differ between ranks leaves the ranks a test apart, and without the
check every later test would wait out the stall timeout and fail. With it, the
ranks meet again after that test (the check's collective has the same name after
every test), or, when the stall timeout ends the check too, the run stops there.
Either way one test fails, not every one after it.

Run with plain pytest (not under braidrun): the test starts its own job.
"""

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("mpirun") is None or "OMPI_COMM_WORLD_SIZE" in os.environ,
    reason="needs mpirun and must not itself run under mpirun")

CONFTEST = os.path.join(os.path.dirname(__file__), "..", "python", "conftest.py")

# test_uneven submits one collective more on rank EXTRA than elsewhere; without the
# check, test_after_1 and test_after_2 would each fail after the stall timeout.
SUITE = textwrap.dedent("""\
    import numpy as np
    import braid

    def test_first():
        braid.init()
        assert braid.allreduce(np.ones(2), name="first", op=braid.Sum)[0] == braid.size()

    def test_uneven():
        if braid.rank() == EXTRA:
            braid.allreduce(np.ones(2), name="only.one.rank", op=braid.Sum)

    def test_after_1():
        braid.allreduce(np.ones(2), name="after.1", op=braid.Sum)

    def test_after_2():
        braid.allreduce(np.ones(2), name="after.2", op=braid.Sum)
    """)


@pytest.mark.parametrize("extra", [0, 1], ids=["rank0-extra", "rank1-extra"])
def test_one_uneven_test_fails_alone(tmp_path, extra):
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_suite.py").write_text(SUITE.replace("EXTRA", str(extra)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAID_")}
    env.update({"OMP_NUM_THREADS": "1", "BRAID_STALL_TIMEOUT_SECONDS": "3"})
    braidrun = shutil.which("braidrun") or "braidrun"
    start = time.monotonic()
    done = subprocess.run(
        [braidrun, "-np", "2", sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider",
         "-p", "no:randomly", str(tmp_path / "test_suite.py")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=120)
    seconds = time.monotonic() - start
    out = done.stdout
    assert done.returncode != 0, out
    # Rank 0's report marks its own failures; the other ranks print one line each.
    failed = set(re.findall(r"(test_\w+) \S*FAILED", out))
    failed |= set(re.findall(r"FAILED test_suite.py::(test_\w+)", out))
    # test_uneven failed; the later tests passed (the ranks met again) or never ran
    # (the run stopped), on every rank.
    assert failed == {"test_uneven"}, out
    if "out of step after" in out:
        assert "out of step after test_suite.py::test_uneven" in out, out
    else:
        assert re.search(r"test_after_2 \S*PASSED", out), out
    # One stall timeout (3 s) or two, not one per later test, plus start-up.
    assert seconds < 60, out
