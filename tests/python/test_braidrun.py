"""Tests of braidrun: the mpirun line it builds, its flag errors, and real launches.

Run with plain pytest, not under braidrun: the launch tests start their own 2-rank
mpirun (two ranks fit the two cores of the smallest supported machine).
"""

import glob
import importlib.machinery
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

PYDIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "bindings", "python"))
RUNNER_DIR = os.path.join(PYDIR, "braid", "runner")

# The source runner, imported under a private name: going through `braid` would run
# the package's __init__, which needs the compiled extension; the launcher does not.
_spec = importlib.util.spec_from_file_location(
    "_braidrun_under_test", os.path.join(RUNNER_DIR, "__init__.py"),
    submodule_search_locations=[RUNNER_DIR])
sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sys.modules[_spec.name])
from _braidrun_under_test import build_mpirun_command, cli, info, launch  # noqa: E402

# Under an MPI job every rank would start a nested mpirun that inherits its OMPI_*
# environment, which Open MPI does not support.
needs_mpirun = pytest.mark.skipif(
    shutil.which("mpirun") is None or "OMPI_COMM_WORLD_SIZE" in os.environ,
    reason="needs mpirun (openmpi-bin) and must not itself run under mpirun")


def extension_files():
    """The built braid._C and the libraries next to it, from the first sys.path entry
    holding them, without importing braid; [] when braid is not built."""
    for entry in sys.path:
        found = [path for suffix in importlib.machinery.EXTENSION_SUFFIXES
                 for path in glob.glob(os.path.join(entry or ".", "braid", "_C" + suffix))]
        if found:
            return found + glob.glob(os.path.join(os.path.dirname(found[0]), "lib*.so*"))
    return []


def make_tree(root, with_extension=False):
    """A stand-in `braid` package: the source runner (and, if asked, the built
    extension), so `python3 -m braid.runner` runs this checkout's launcher whether or
    not the full package imports. Regular, so no installed `braid` merges into it."""
    package = root / "braid"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text('"""Stand-in braid package for braidrun tests."""\n')
    os.symlink(RUNNER_DIR, package / "runner")
    for path in extension_files() if with_extension else []:
        shutil.copy(path, package / os.path.basename(path))
    return str(root)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("tree"))


def command(argv, environ=None, cpu_count=8, euid=1000):
    return build_mpirun_command(cli.parse_args(argv), environ or {}, cpu_count, euid)


def braidrun(tree, *argv, env=None, timeout=60, no_site=False):
    """Runs `python3 -m braid.runner argv` with `tree` first on PYTHONPATH; no_site (-S)
    also skips an editable install's import hook, which finds braid._C from anywhere."""
    full = dict(os.environ if env is None else env)
    full["PYTHONPATH"] = tree + os.pathsep + full.get("PYTHONPATH", "")
    python = [sys.executable, "-S"] if no_site else [sys.executable]
    return subprocess.run(python + ["-m", "braid.runner", *argv], env=full,
                          capture_output=True, text=True, timeout=timeout)


def package_importable():
    """Whether the real `braid` package (source tree first) imports in a child."""
    env = dict(os.environ, PYTHONPATH=PYDIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", "import braid"], env=env,
                          capture_output=True, timeout=60).returncode == 0


def test_allow_run_as_root_only_for_root():
    assert command(["-np", "2", "python3", "t.py"]) == [
        "mpirun", "-np", "2", "--bind-to", "none", "python3", "t.py"]
    assert command(["-np", "2", "python3", "t.py"], euid=0) == [
        "mpirun", "-np", "2", "--allow-run-as-root", "--bind-to", "none", "python3", "t.py"]


def test_oversubscribe_only_when_asked_or_needed():
    assert "--oversubscribe" not in command(["-np", "2", "x"], cpu_count=2)
    assert "--oversubscribe" in command(["-np", "3", "x"], cpu_count=2)
    assert "--oversubscribe" in command(["-np", "1", "--oversubscribe", "x"], cpu_count=2)
    # With a host list the user chose the slots; mpirun enforces them itself.
    assert "--oversubscribe" not in command(["-np", "4", "-H", "a:2,b:2", "x"], cpu_count=2)


def test_flags_become_braid_variables_exported_with_x():
    argv = ["-np", "2", "--fusion-threshold-mb", "32", "--cycle-time-ms", "2.5",
            "--cache-capacity", "0", "--stall-check-warning-time-seconds", "30",
            "--stall-check-shutdown-time-seconds", "120", "--log-level", "DEBUG",
            "--timeline-filename", "/tmp/tl-%r.json", "x"]
    args = cli.parse_args(argv)
    assert launch.flag_environment(args) == {
        "BRAID_FUSION_THRESHOLD_BYTES": str(32 * 1048576), "BRAID_CYCLE_TIME_MS": "2.5",
        "BRAID_CACHE_CAPACITY": "0", "BRAID_STALL_WARNING_SECONDS": "30.0",
        "BRAID_STALL_TIMEOUT_SECONDS": "120.0", "BRAID_LOG_LEVEL": "debug",
        "BRAID_TIMELINE": "/tmp/tl-%r.json"}
    cmd = build_mpirun_command(args, {}, 8, 1000)
    exported = [cmd[i + 1] for i, part in enumerate(cmd) if part == "-x"]
    assert sorted(exported) == sorted(launch.flag_environment(args))
    env = launch.launch_environment(args, {"BRAID_LOG_LEVEL": "error", "HOME": "/h"})
    assert env["BRAID_LOG_LEVEL"] == "debug" and env["HOME"] == "/h"


def test_inherited_braid_path_pythonpath_and_user_exports():
    environ = {"BRAID_CACHE_CAPACITY": "5", "PATH": "/bin", "PYTHONPATH": "/p",
               "HOME": "/h", "BRAIDX": "no"}
    cmd = command(["-np", "2", "-x", "FOO=bar", "-x", "OMP_NUM_THREADS", "x"], environ)
    assert cmd == ["mpirun", "-np", "2", "-x", "BRAID_CACHE_CAPACITY", "-x", "PYTHONPATH",
                   "-x", "PATH", "-x", "FOO=bar", "-x", "OMP_NUM_THREADS", "--bind-to", "none",
                   "x"]
    # An explicit -x entry replaces the inherited variable of the same name.
    cmd = command(["-np", "2", "-x", "BRAID_LOG_LEVEL=trace", "x"], {"BRAID_LOG_LEVEL": "1"})
    assert "BRAID_LOG_LEVEL" not in cmd and "BRAID_LOG_LEVEL=trace" in cmd


def test_hosts_and_hostfile(tmp_path):
    assert command(["-np", "4", "-H", "n1:2,n2:2", "x"])[3:5] == ["-H", "n1:2,n2:2"]
    (tmp_path / "hosts").write_text("n1 slots=2\n")
    cmd = command(["-np", "2", "--hostfile", str(tmp_path / "hosts"), "x"])
    assert cmd[3:5] == ["--hostfile", str(tmp_path / "hosts")]


def test_mpi_args_split_and_command_last():
    cmd = command(["-np", "2", "--mpi-args=--bind-to none --mca btl 'self,tcp'",
                   "python3", "train.py", "--lr", "0.1", "-x", "y"])
    assert cmd[-11:] == ["--bind-to", "none", "--mca", "btl", "self,tcp",
                         "python3", "train.py", "--lr", "0.1", "-x", "y"]


def test_mpirun_binds_nothing_when_braid_binds():
    # braid places the ranks itself (BRAID_BIND auto, cores or numa): mpirun must not
    # bind them first, or braid would find a narrower binding and keep it.
    for argv, environ in ((["-np", "2", "x"], {}), (["-np", "2", "--bind", "cores", "x"], {}),
                          (["-np", "2", "x"], {"BRAID_BIND": "numa"})):
        cmd = command(argv, environ)
        assert cmd[cmd.index("--bind-to") + 1] == "none" and cmd.count("--bind-to") == 1
    # braid binds nothing: mpirun's own default (or the user's choice) stands.
    assert "--bind-to" not in command(["-np", "2", "--bind", "none", "x"])
    assert "--bind-to" not in command(["-np", "2", "x"], {"BRAID_BIND": "none"})
    cmd = command(["-np", "2", "--mpi-args=--bind-to core", "x"])
    assert cmd.count("--bind-to") == 1 and cmd[cmd.index("--bind-to") + 1] == "core"
    args = cli.parse_args(["-np", "2", "--bind", "cores", "--topology-file", "/t.xml", "x"])
    assert launch.flag_environment(args) == {"BRAID_BIND": "cores",
                                             "BRAID_TOPOLOGY_FILE": "/t.xml"}


def test_verbose_line_is_shell_quoted_and_signals_become_128_plus_n():
    args = cli.parse_args(["-np", "2", "--log-level", "info", "python3", "-c", "a b"])
    line = launch.verbose_line(build_mpirun_command(args, {}, 8, 1000), args)
    assert line == ("BRAID_LOG_LEVEL=info mpirun -np 2 -x BRAID_LOG_LEVEL --bind-to none "
                    "python3 -c 'a b'")
    assert [launch.exit_code(c) for c in (-15, 3, 0)] == [143, 3, 0]


@pytest.mark.parametrize("argv, message", [
    (["-np", "0", "x"], "must be greater than 0"),
    (["-np", "-2", "x"], "-np"),
    (["-np", "two", "x"], "is not an integer"),
    (["-np", "2", "--cycle-time-ms", "fast", "x"], "is not a number"),
    (["-np", "2", "--cycle-time-ms", "nan", "x"], "not a finite number"),
    (["-np", "2", "--fusion-threshold-mb", "-1", "x"], "must be at least 0"),
    (["-np", "2", "--cache-capacity", "1.5", "x"], "is not an integer"),
    (["-np", "2", "--log-level", "loud", "x"], "is not a log level"),
    (["-np", "2"], "no COMMAND given"),
    (["python3", "x"], "-np N is required"),
    (["-np", "2", "-H", "a:1", "--hostfile", "f", "x"], "not allowed with"),
    (["-np", "2", "--hostfile", "/nonexistent/hosts", "x"], "does not exist"),
    (["-np", "2", "-H", "a:zero", "x"], "bad host entry"),
    (["-np", "2", "--bind", "sideways", "x"], "invalid choice"),
])
def test_bad_flags_exit_2_with_one_line_message(tree, argv, message):
    result = braidrun(tree, *argv)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("braidrun: error:")


def test_missing_mpirun_names_open_mpi(tree, tmp_path):
    result = braidrun(tree, "-np", "2", "python3", "-c", "pass", env={"PATH": str(tmp_path)})
    assert result.returncode == 2
    assert "Open MPI" in result.stderr and "openmpi-bin" in result.stderr


def test_env_help_and_build_check_formatting():
    text = info.format_env_help([{"name": "BRAID_X", "type": "int", "default": "1",
                                  "accepted": "[0, 2]", "help": "An example."}])
    assert "BRAID_X" in text and "int" in text and "[0, 2]" in text and "An example." in text
    text = info.format_build_check(None, {"torch": True, "tensorflow": False})
    assert "[X] PyTorch" in text and "[ ] TensorFlow" in text and "not built" in text


def test_check_build_and_help_env_without_extension(tree):
    result = braidrun(tree, "--check-build", no_site=True)
    assert result.returncode == 0 and "not built" in result.stdout
    assert "PyTorch" in result.stdout and "TensorFlow" in result.stdout
    result = braidrun(tree, "--help-env", no_site=True)
    assert result.returncode == 1 and "not built" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not extension_files(), reason="braid._C is not built")
def test_check_build_and_help_env_with_extension(tmp_path):
    with_ext = make_tree(tmp_path, with_extension=True)
    result = braidrun(with_ext, "--check-build")
    assert result.returncode == 0, result.stderr
    assert "[X] MPI" in result.stdout and "not built" not in result.stdout
    result = braidrun(with_ext, "--help-env")
    assert result.returncode == 0, result.stderr
    assert "BRAID_CYCLE_TIME_MS" in result.stdout and "BRAID_TIMELINE" in result.stdout


@pytest.mark.skipif(not package_importable(), reason="the braid package does not import here")
def test_runs_through_the_real_package():
    result = braidrun(PYDIR, "--check-build")
    assert result.returncode == 0, result.stderr
    assert "[X] MPI" in result.stdout


@needs_mpirun
def test_two_ranks_succeed(tree):
    result = braidrun(tree, "-np", "2", sys.executable, "-c", "pass")
    assert result.returncode == 0, result.stderr


@needs_mpirun
def test_failing_rank_ends_the_job_fast(tree):
    code = ("import os,sys,time; r=int(os.environ['OMPI_COMM_WORLD_RANK']); "
            "sys.exit(3) if r==1 else time.sleep(60)")
    start = time.monotonic()
    result = braidrun(tree, "-np", "2", sys.executable, "-c", code, timeout=30)
    assert result.returncode == 3, result.stderr  # the failing rank's own code
    assert time.monotonic() - start < 15


@needs_mpirun
def test_sigterm_is_forwarded_and_reported(tree, tmp_path):
    env = dict(os.environ, PYTHONPATH=tree + os.pathsep + os.environ.get("PYTHONPATH", ""))
    marker = tmp_path / "started"
    code = f"import time; open({str(marker)!r}, 'a').close(); time.sleep(60)"
    with subprocess.Popen([sys.executable, "-m", "braid.runner", "-np", "2", sys.executable,
                           "-c", code], env=env, stderr=subprocess.DEVNULL) as proc:
        try:
            for _ in range(200):  # both ranks up: mpirun now owns them
                if marker.exists():
                    break
                time.sleep(0.1)
            start = time.monotonic()
            proc.terminate()
            assert proc.wait(timeout=15) == 128 + signal.SIGTERM  # like a killed command
            assert time.monotonic() - start < 15
        finally:
            proc.kill()
