"""braidrun: starts a braid job through Open MPI's mpirun.

The command line is built by pure functions (no process, no global state) so that
tests can check it exactly; `main` only adds the side effects: finding mpirun,
forwarding signals and turning mpirun's status into braidrun's exit code.
"""

import os
import shlex
import shutil
import signal
import subprocess
import sys

from . import cli, info, placement

# Flag attribute -> (BRAID_* variable, conversion of the flag's value to its text).
FLAG_VARIABLES = (
    ("fusion_threshold_mb", "BRAID_FUSION_THRESHOLD_BYTES", lambda mb: str(mb * 1048576)),
    ("cycle_time_ms", "BRAID_CYCLE_TIME_MS", repr),
    ("cache_capacity", "BRAID_CACHE_CAPACITY", str),
    ("stall_check_warning_time_seconds", "BRAID_STALL_WARNING_SECONDS", repr),
    ("stall_check_shutdown_time_seconds", "BRAID_STALL_TIMEOUT_SECONDS", repr),
    ("log_level", "BRAID_LOG_LEVEL", str),
    ("timeline_filename", "BRAID_TIMELINE", str),
    ("bind", "BRAID_BIND", str),
    ("topology_file", "BRAID_TOPOLOGY_FILE", str),
)

# Besides BRAID_*, ranks need the launcher's PATH and PYTHONPATH: on a remote host
# orted starts with a login environment that would otherwise find another python.
FORWARDED = ("PYTHONPATH", "PATH")

MPIRUN_MISSING = ("braidrun: error: 'mpirun' was not found on PATH; braidrun needs "
                  "Open MPI (Debian/Ubuntu: apt-get install openmpi-bin)")


def flag_environment(args):
    """The BRAID_* variables the tuning flags set, as {name: text}."""
    env = {}
    for attr, name, convert in FLAG_VARIABLES:
        value = getattr(args, attr)
        if value is not None:
            env[name] = convert(value)
    return env


def needs_oversubscribe(args, cpu_count):
    """Whether mpirun must be told to oversubscribe.

    Without a host list Open MPI gives the local host one slot per core and refuses
    -np beyond that; with -H or a hostfile the user chose the slot counts.
    """
    if args.oversubscribe:
        return True
    local_only = args.hosts is None and args.hostfile is None
    return local_only and args.np > cpu_count


def exported_names(args, environ):
    """Variable names passed as `-x NAME`, in a stable order, without duplicates.

    A name the user exports explicitly with -x is left to that entry, so that
    `-x BRAID_LOG_LEVEL=debug` is not shadowed by the inherited value.
    """
    user = {entry.split("=", 1)[0] for entry in args.exports}
    names = list(flag_environment(args))
    names += sorted(n for n in environ if n.startswith("BRAID_") and n not in names)
    names += [n for n in FORWARDED if n in environ]
    return [n for n in names if n not in user]


def build_mpirun_command(args, environ, cpu_count, euid):
    """The mpirun argv for parsed `args`; pure, so it is unit-testable.

    The flag-derived BRAID_* values are not in the argv: `launch_environment` puts
    them in mpirun's environment and `-x NAME` forwards them to every rank.
    """
    cmd = ["mpirun", "-np", str(args.np)]
    if args.hosts is not None:
        cmd += ["-H", args.hosts]
    if args.hostfile is not None:
        cmd += ["--hostfile", args.hostfile]
    if euid == 0:
        cmd.append("--allow-run-as-root")
    if needs_oversubscribe(args, cpu_count):
        cmd.append("--oversubscribe")
    for name in exported_names(args, environ):
        cmd += ["-x", name]
    for entry in args.exports:
        cmd += ["-x", entry]
    mpi_args = shlex.split(args.mpi_args)
    if braid_binds(args, environ) and not any(a.lstrip("-") == "bind-to" for a in mpi_args):
        cmd += ["--bind-to", "none"]
    cmd += mpi_args
    cmd += args.command
    return cmd


def braid_binds(args, environ):
    """Whether braid places the ranks itself (BRAID_BIND is not none), in which case
    mpirun must not bind them first: braid keeps a narrower binding it finds."""
    mode = args.bind if args.bind is not None else environ.get("BRAID_BIND", "auto")
    return mode != "none"


def launch_environment(args, environ):
    """mpirun's environment: the caller's, with the flag-derived BRAID_* values on top."""
    env = dict(environ)
    env.update(flag_environment(args))
    return env


def local_core_count():
    """Cores usable here, counted the way Open MPI counts default slots (one per
    physical core, not per hardware thread), falling back to logical CPUs."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if not cpus:
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        try:
            base = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
            with open(base + "physical_package_id") as f, open(base + "core_id") as g:
                cores.add((f.read().strip(), g.read().strip()))
        except OSError:
            return len(cpus)
    return len(cores) or len(cpus)


def exit_code(returncode):
    """Shell convention: a child killed by signal N is reported as 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def run(cmd, env):
    """Runs mpirun, forwarding SIGINT/SIGTERM so that it can tear the job down.

    mpirun answers a forwarded signal by killing the ranks and exiting with 1; when
    that happens braidrun reports 128 + the signal instead, as a killed shell
    command would, so a caller can tell an interrupted job from a failed one.
    """
    child = subprocess.Popen(cmd, env=env)
    received = []

    def forward(signum, _frame):
        received.append(signum)
        if child.poll() is None:
            child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = exit_code(child.wait())
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 128 + received[0] if received and code != 0 else code


def verbose_line(cmd, args):
    """The command as a shell line that reproduces the launch, variables included."""
    prefix = [f"{k}={v}" for k, v in flag_environment(args).items()]
    return " ".join(shlex.quote(part) for part in prefix + cmd)


def main(argv=None):
    args = cli.parse_args(sys.argv[1:] if argv is None else argv)
    if args.help_env:
        return info.print_env_help()
    if args.check_build:
        return info.print_build_check()
    if args.print_placement:
        return placement.print_placement(args)
    environ = dict(os.environ)
    if shutil.which("mpirun", path=environ.get("PATH")) is None:
        print(MPIRUN_MISSING, file=sys.stderr)
        return 2
    cores = local_core_count()
    cmd = build_mpirun_command(args, environ, cores, os.geteuid())
    if needs_oversubscribe(args, cores) and not args.oversubscribe:
        print(f"braidrun: warning: -np {args.np} exceeds the {cores} "
              "local cores; oversubscribing (ranks will share cores)", file=sys.stderr)
    if args.verbose:
        print(verbose_line(cmd, args), flush=True)
    try:
        return run(cmd, launch_environment(args, environ))
    except OSError as error:  # found on PATH but not runnable (permissions, bad binary)
        print(f"braidrun: error: cannot start mpirun: {error}", file=sys.stderr)
        return 2
