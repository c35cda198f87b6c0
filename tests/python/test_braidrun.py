"""Tests of braidrun: the mpirun line it builds, its flag errors, and real launches.

These run in one process (not under braidrun); the launch tests start mpirun with
two ranks, which fit on the two cores of the smallest supported machine.
"""

import glob
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYDIR = os.path.join(ROOT, "bindings", "python")
RUNNER_DIR = os.path.join(PYDIR, "braid", "runner")


def _load_runner():
    """Imports the source tree's runner under a private name.

    Going through `braid` would run the package's __init__, which needs the compiled
    extension; the launcher's own logic is pure Python and is tested without it.
    """
    spec = importlib.util.spec_from_file_location(
        "_braidrun_under_test", os.path.join(RUNNER_DIR, "__init__.py"),
        submodule_search_locations=[RUNNER_DIR])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


runner = _load_runner()
build_mpirun_command = runner.build_mpirun_command
cli = sys.modules["_braidrun_under_test.cli"]
info = sys.modules["_braidrun_under_test.info"]
launch = sys.modules["_braidrun_under_test.launch"]

HAVE_MPIRUN = shutil.which("mpirun") is not None
needs_mpirun = pytest.mark.skipif(not HAVE_MPIRUN, reason="mpirun (openmpi-bin) not installed")


def extension_files():
    """The built braid._C and the libraries next to it, from the first sys.path entry
    holding them, without importing braid; [] when braid is not built."""
    for entry in sys.path:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            found = glob.glob(os.path.join(entry or ".", "braid", "_C" + suffix))
            if found:
                folder = os.path.dirname(found[0])
                return found + glob.glob(os.path.join(folder, "lib*.so*"))
    return []


def make_tree(root, with_extension=False):
    """A stand-in `braid` package holding only the source runner (and, if asked, the
    built extension), so `python3 -m braid.runner` runs this checkout's launcher
    whether or not the full package imports here. It is a regular package so that no
    installed `braid` directory merges into it and lends it an extension."""
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
    args = cli.parse_args(argv)
    return build_mpirun_command(args, environ or {}, cpu_count, euid)


def braidrun(tree, *argv, env=None, timeout=60, no_site=False):
    """Runs `python3 -m braid.runner argv` with `tree` first on PYTHONPATH.

    no_site (-S) skips site-packages and the import hooks an editable install puts
    there, which would otherwise find the built extension from any `braid` package.
    """
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


# ---- the mpirun line --------------------------------------------------------------

def test_minimal_non_root():
    assert command(["-np", "2", "python3", "train.py"]) == [
        "mpirun", "-np", "2", "python3", "train.py"]


def test_root_adds_allow_run_as_root():
    cmd = command(["-np", "2", "python3", "train.py"], euid=0)
    assert cmd[:4] == ["mpirun", "-np", "2", "--allow-run-as-root"]


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
        "BRAID_FUSION_THRESHOLD_BYTES": str(32 * 1048576),
        "BRAID_CYCLE_TIME_MS": "2.5",
        "BRAID_CACHE_CAPACITY": "0",
        "BRAID_STALL_WARNING_SECONDS": "30.0",
        "BRAID_STALL_TIMEOUT_SECONDS": "120.0",
        "BRAID_LOG_LEVEL": "debug",
        "BRAID_TIMELINE": "/tmp/tl-%r.json",
    }
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
                   "-x", "PATH", "-x", "FOO=bar", "-x", "OMP_NUM_THREADS", "x"]


def test_user_export_wins_over_inherited_name():
    cmd = command(["-np", "2", "-x", "BRAID_LOG_LEVEL=trace", "x"],
                  {"BRAID_LOG_LEVEL": "info"})
    assert cmd.count("BRAID_LOG_LEVEL") == 0 and "BRAID_LOG_LEVEL=trace" in cmd


def test_hosts_and_hostfile(tmp_path):
    assert command(["-np", "4", "-H", "n1:2,n2:2", "x"])[3:5] == ["-H", "n1:2,n2:2"]
    hostfile = tmp_path / "hosts"
    hostfile.write_text("n1 slots=2\n")
    cmd = command(["-np", "2", "--hostfile", str(hostfile), "x"])
    assert cmd[3:5] == ["--hostfile", str(hostfile)]


def test_mpi_args_split_and_command_last():
    cmd = command(["-np", "2", "--mpi-args=--bind-to none --mca btl 'self,tcp'",
                   "python3", "train.py", "--lr", "0.1", "-x", "y"])
    assert cmd[-11:] == ["--bind-to", "none", "--mca", "btl", "self,tcp",
                         "python3", "train.py", "--lr", "0.1", "-x", "y"]


def test_verbose_line_is_shell_quoted():
    args = cli.parse_args(["-np", "2", "--log-level", "info", "python3", "-c", "a b"])
    line = launch.verbose_line(build_mpirun_command(args, {}, 8, 1000), args)
    assert line == "BRAID_LOG_LEVEL=info mpirun -np 2 -x BRAID_LOG_LEVEL python3 -c 'a b'"


def test_exit_code_of_signalled_child():
    assert launch.exit_code(-15) == 143 and launch.exit_code(3) == 3


# ---- flag errors ------------------------------------------------------------------

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
])
def test_bad_flags_exit_2_with_one_line_message(tree, argv, message):
    result = braidrun(tree, *argv)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("braidrun: error:")


def test_missing_mpirun_names_open_mpi(tree, tmp_path):
    result = braidrun(tree, "-np", "2", "python3", "-c", "pass",
                      env={"PATH": str(tmp_path)})
    assert result.returncode == 2
    assert "Open MPI" in result.stderr and "openmpi-bin" in result.stderr


# ---- --help-env and --check-build -------------------------------------------------

def test_env_help_formatting():
    text = info.format_env_help([{"name": "BRAID_X", "type": "int", "default": "1",
                                  "accepted": "[0, 2]", "help": "An example."}])
    assert "BRAID_X" in text and "int" in text and "[0, 2]" in text and "An example." in text


def test_build_check_without_extension():
    text = info.format_build_check(None, {"torch": True, "tensorflow": False})
    assert "[X] PyTorch" in text and "[ ] TensorFlow" in text and "not built" in text


def test_check_build_and_help_env_without_extension(tree):
    result = braidrun(tree, "--check-build", no_site=True)
    assert result.returncode == 0
    assert "PyTorch" in result.stdout and "TensorFlow" in result.stdout
    assert "not built" in result.stdout
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
    for name in ("BRAID_FUSION_THRESHOLD_BYTES", "BRAID_CYCLE_TIME_MS", "BRAID_LOG_LEVEL",
                 "BRAID_TIMELINE", "trace|debug|info|warning|error|fatal"):
        assert name in result.stdout


@pytest.mark.skipif(not package_importable(), reason="the braid package does not import here")
def test_runs_through_the_real_package():
    result = braidrun(PYDIR, "--check-build")
    assert result.returncode == 0, result.stderr
    assert "[X] MPI" in result.stdout


# ---- real launches ----------------------------------------------------------------

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
    assert result.returncode != 0
    assert time.monotonic() - start < 15


@needs_mpirun
def test_sigterm_is_forwarded_and_reported(tree, tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = tree + os.pathsep + env.get("PYTHONPATH", "")
    marker = tmp_path / "started"
    code = f"import time; open({str(marker)!r}, 'a').close(); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-m", "braid.runner", "-np", "2",
                             sys.executable, "-c", code], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        start = time.monotonic()
        proc.terminate()
        assert proc.wait(timeout=15) == 128 + 15
        assert time.monotonic() - start < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
