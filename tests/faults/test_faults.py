"""Whole-job faults: what a braid job does when a rank dies, raises, freezes, never
submits a tensor, or is given bad settings. Each test starts its own job with
braidrun, bounded in time, and checks how the job ended: the exit code, the
messages, how long it took, and that no rank process is left behind.

Run with plain pytest (not under braidrun): each test starts its own mpirun.
"""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("mpirun") is None or "OMPI_COMM_WORLD_SIZE" in os.environ,
    reason="needs mpirun and must not itself run under mpirun")

# The exit status of every rank when the watchdog ends a job (core/watchdog.h).
WATCHDOG_EXIT = 124

# Each job script starts with this: it records its pid so that the test can check
# that no rank outlives the job, and loads braid.
PRELUDE = textwrap.dedent("""\
    import os, signal, sys, time
    import numpy as np
    import braid
    with open(os.path.join(os.environ["FAULT_PID_DIR"], str(os.getpid())), "w"):
        pass
    braid.init()
    rank, size = braid.rank(), braid.size()
    """)


class Job:
    """One finished job: exit code, combined output, seconds it ran."""

    def __init__(self, returncode, output, seconds, pids):
        self.returncode, self.output, self.seconds, self.pids = returncode, output, seconds, pids

    def __repr__(self):
        return f"exit {self.returncode} after {self.seconds:.1f} s\n{self.output[-4000:]}"


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead already; only its parent has not collected it.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_job(tmp_path, body, np=2, env=None, timeout=90):
    """Runs PRELUDE + body on `np` ranks with braidrun; returns the Job."""
    script = tmp_path / "job.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    full = {k: v for k, v in os.environ.items() if not k.startswith("BRAID_")}
    full.update({"FAULT_PID_DIR": str(pid_dir), "OMP_NUM_THREADS": "1",
                 "BRAID_STALL_TIMEOUT_SECONDS": "60"})
    full.update(env or {})
    braidrun = shutil.which("braidrun") or "braidrun"
    start = time.monotonic()
    done = subprocess.run([braidrun, "-np", str(np), sys.executable, str(script)], env=full,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    seconds = time.monotonic() - start
    pids = [int(p) for p in os.listdir(pid_dir)]
    return Job(done.returncode, done.stdout, seconds, pids)


def assert_nothing_left(job):
    """No rank process outlives the job (given a moment for the kernel to reap)."""
    deadline = time.monotonic() + 5
    while any(alive(p) for p in job.pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in job.pids if alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"ranks still running after the job ended: {left}\n{job!r}"


# A stream of allreduces in which rank 1 does something at step 20.
STREAM = """\
    for step in range(100000):
        if rank == 1 and step == 20:
            {fault}
        x = np.full(4096, float(rank), dtype=np.float32)
        braid.allreduce(x, name="stream", op=braid.Sum)
        if step == 25 and rank == 0:
            print("STEP25", flush=True)
    """


def test_a_killed_rank_ends_the_job_within_30_seconds(tmp_path):
    job = run_job(tmp_path, STREAM.format(fault="os.kill(os.getpid(), signal.SIGKILL)"), np=3)
    assert job.returncode != 0, job
    assert job.seconds < 30, job
    assert len(job.pids) == 3, job
    assert_nothing_left(job)


def test_a_rank_that_raises_ends_the_job_within_30_seconds(tmp_path):
    job = run_job(tmp_path, STREAM.format(fault="raise RuntimeError('boom on rank 1')"))
    assert job.returncode != 0, job
    assert job.seconds < 30, job
    assert "RuntimeError: boom on rank 1" in job.output, job
    assert_nothing_left(job)


def test_a_frozen_rank_is_reported_and_the_job_ends(tmp_path):
    # A stopped rank never dies, so only braid can end the job: its watchdog,
    # after the stall timeout, on every rank.
    job = run_job(tmp_path, STREAM.format(fault="os.kill(os.getpid(), signal.SIGSTOP)"),
                  env={"BRAID_STALL_TIMEOUT_SECONDS": "3"})
    assert job.returncode == WATCHDOG_EXIT, job
    assert "rank 0 of 2 has waited" in job.output, job
    assert "longer than BRAID_STALL_TIMEOUT_SECONDS" in job.output, job
    assert job.seconds < 30, job
    assert_nothing_left(job)


def test_a_tensor_one_rank_never_submits_times_out_by_name(tmp_path):
    body = """\
        if rank == 0:
            try:
                braid.allreduce(np.ones(8, np.float32), name="lonely.grad")
                print("UNEXPECTED: completed", flush=True)
            except braid.BraidTimeoutError as e:
                print(f"TIMEOUT: {e}", flush=True)  # one write: ranks interleave writes
        else:
            time.sleep(5)  # busy elsewhere past the timeout; its engine runs on
        braid.barrier()  # the job goes on afterwards
        braid.shutdown()
        """
    job = run_job(tmp_path, body, env={"BRAID_STALL_TIMEOUT_SECONDS": "3",
                                       "BRAID_STALL_WARNING_SECONDS": "1"})
    assert job.returncode == 0, job
    # First a warning naming the tensor and the missing rank, then the error.
    warning = job.output.find("Missing: rank 1: [lonely.grad]")
    error = job.output.find("TIMEOUT: Stall timeout: 'lonely.grad' was submitted by ranks [0] "
                            "but not by ranks [1]")
    assert warning >= 0 and error >= 0, job
    assert job.seconds < 30, job
    assert_nothing_left(job)


def test_a_bad_value_fails_init_on_every_rank_with_its_name(tmp_path):
    body = """\
        print("UNEXPECTED: init succeeded", flush=True)
        """
    job = run_job(tmp_path, body, env={"BRAID_CYCLE_TIME_MS": "fast"})
    assert job.returncode != 0, job
    assert job.output.count("BRAID_CYCLE_TIME_MS='fast' is not a number") == 2, job
    assert "UNEXPECTED" not in job.output, job
    assert job.seconds < 30, job
    assert_nothing_left(job)


def test_a_rank_that_cannot_start_fails_init_everywhere(tmp_path, monkeypatch):
    # Only rank 1 is given a timeline it cannot write; the prelude's init must
    # fail on both ranks with its reason, and neither may be left waiting.
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""\
        import os, sys
        if os.environ.get("OMPI_COMM_WORLD_RANK") == "1":
            os.environ["BRAID_TIMELINE"] = "/nonexistent-dir/timeline%r.json"
        import braid
        try:
            braid.init()
            print("UNEXPECTED: init succeeded", flush=True)
        except braid.BraidError as e:
            print("INIT FAILED:", e, flush=True)
            sys.exit(3)
        """))
    full = {k: v for k, v in os.environ.items() if not k.startswith("BRAID_")}
    full["BRAID_STALL_TIMEOUT_SECONDS"] = "60"
    start = time.monotonic()
    done = subprocess.run([shutil.which("braidrun") or "braidrun", "-np", "2", sys.executable,
                           str(script)], env=full, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=90)
    assert done.returncode != 0, done.stdout
    assert done.stdout.count("INIT FAILED: rank 1: ") == 2, done.stdout
    assert "/nonexistent-dir/timeline1.json" in done.stdout, done.stdout
    assert "UNEXPECTED" not in done.stdout, done.stdout
    assert time.monotonic() - start < 30, done.stdout


def test_a_misspelled_variable_is_named_once_with_the_right_one(tmp_path):
    body = """\
        braid.allreduce(np.ones(4, np.float32), name="w")
        braid.shutdown()
        braid.init()  # a second engine in the same process warns no more
        braid.allreduce(np.ones(4, np.float32), name="w")
        """
    job = run_job(tmp_path, body, env={"BRAID_FUSION_THRESHOLD": "1048576"})
    assert job.returncode == 0, job
    line = ("BRAID_FUSION_THRESHOLD is not a braid variable; did you mean "
            "BRAID_FUSION_THRESHOLD_BYTES?")
    assert job.output.count(line) == 1, job
    assert_nothing_left(job)


def test_an_op_after_shutdown_is_an_invalid_argument_not_a_crash(tmp_path):
    body = """\
        import torch
        import braid.torch as hvd
        braid.shutdown()
        for call in (lambda: braid.allreduce(np.ones(3, np.float32), name="late"),
                     lambda: braid.allgather(np.ones((2, 3), np.float32), name="late.g"),
                     lambda: braid.broadcast(np.ones(3, np.float32), 0, name="late.b"),
                     lambda: hvd.allreduce(torch.ones(3), name="late.t")):
            try:
                call()
                print("UNEXPECTED: no error", flush=True)
            except braid.BraidInvalidArgument as e:
                assert isinstance(e, ValueError)  # as Horovod raises
                print(f"REFUSED: {e}", flush=True)  # one write: ranks interleave writes
        """
    job = run_job(tmp_path, body)
    assert job.returncode == 0, job
    assert job.output.count("REFUSED: braid is not initialized") == 8, job
    assert "UNEXPECTED" not in job.output, job
