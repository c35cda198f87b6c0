"""Command-line parsing and up-front validation for braidrun.

Every mistake the launcher can see before starting processes is reported here as a
one-line argparse error (exit code 2), so a typo never costs an mpirun start-up or a
rank failing later at engine init.
"""

import argparse
import os

LOG_LEVELS = ("trace", "debug", "info", "warning", "error", "fatal")

EPILOG = """\
Everything after the options is the command each rank runs. Options are turned into
BRAID_* environment variables and exported to every rank with mpirun -x; run
`braidrun --help-env` for the full list. Pass extra mpirun options with
--mpi-args="--bind-to none" (use '=' when the value starts with '-').
"""


def _number(kind, minimum, strict):
    """Returns an argparse type accepting numbers of `kind` above (or at) `minimum`."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"'{text}' is not {'an integer' if kind is int else 'a number'}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
        if value < minimum or (strict and value == minimum):
            relation = "greater than" if strict else "at least"
            raise argparse.ArgumentTypeError(f"'{text}' must be {relation} {minimum}")
        return value

    return parse


def _log_level(text):
    if text.lower() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a log level; expected one of {'|'.join(LOG_LEVELS)}")
    return text.lower()


def _add_launch_options(p):
    p.add_argument("-np", "--num-proc", dest="np", type=_number(int, 0, True),
                   metavar="N", help="number of ranks to start")
    hosts = p.add_mutually_exclusive_group()
    hosts.add_argument("-H", "--hosts", dest="hosts", metavar="HOST:SLOTS,...",
                       help="hosts and slot counts, e.g. node1:4,node2:4")
    hosts.add_argument("--hostfile", metavar="FILE", help="an Open MPI hostfile")
    p.add_argument("--oversubscribe", action="store_true",
                   help="allow more ranks than slots (cores) on a host")
    p.add_argument("--mpi-args", default="", metavar="ARGS",
                   help="extra mpirun arguments, split like a shell would")
    p.add_argument("-x", dest="exports", action="append", default=[],
                   metavar="VAR[=VALUE]", help="export VAR to every rank (repeatable)")
    p.add_argument("--verbose", action="store_true",
                   help="print the mpirun command line before running it")


def _add_tuning_options(p):
    # Lower bounds only: the exact ranges live in the engine's config registry
    # (core/config.cc), which rejects an out-of-range value at init with its range.
    p.add_argument("--fusion-threshold-mb", type=_number(int, 0, False), metavar="MB",
                   help="fusion buffer size in MiB (BRAID_FUSION_THRESHOLD_BYTES)")
    p.add_argument("--cycle-time-ms", type=_number(float, 0, True), metavar="MS",
                   help="negotiation cycle time (BRAID_CYCLE_TIME_MS)")
    p.add_argument("--cache-capacity", type=_number(int, 0, False), metavar="N",
                   help="response cache entries, 0 disables it (BRAID_CACHE_CAPACITY)")
    p.add_argument("--stall-check-warning-time-seconds", type=_number(float, 0, True),
                   metavar="S", help="stall warning delay (BRAID_STALL_WARNING_SECONDS)")
    p.add_argument("--stall-check-shutdown-time-seconds", type=_number(float, 0, False),
                   metavar="S", help="stall timeout, 0 disables it "
                   "(BRAID_STALL_TIMEOUT_SECONDS)")
    p.add_argument("--log-level", type=_log_level, metavar="LEVEL",
                   help=f"{'|'.join(LOG_LEVELS)} (BRAID_LOG_LEVEL)")
    p.add_argument("--bind", choices=BIND_MODES, metavar="MODE",
                   help=f"{'|'.join(BIND_MODES)}: where ranks run (BRAID_BIND, docs/placement.md)")
    p.add_argument("--topology-file", metavar="FILE",
                   help="plan placement from this hwloc XML file (BRAID_TOPOLOGY_FILE)")
    p.add_argument("--timeline-filename", metavar="FILE",
                   help="Chrome-trace timeline path, %%r becomes the rank (BRAID_TIMELINE)")


BIND_MODES = ("auto", "none", "cores", "numa")


def make_parser():
    p = argparse.ArgumentParser(
        prog="braidrun", description="Start a braid job with Open MPI's mpirun.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_launch_options(p)
    _add_tuning_options(p)
    p.add_argument("--help-env", action="store_true",
                   help="list every BRAID_* variable with its type, default and range")
    p.add_argument("--print-placement", action="store_true",
                   help="print where each rank would run (GPU, CPUs, coordinator core, "
                   "NUMA node) and exit without starting the job")
    p.add_argument("--check-build", action="store_true",
                   help="show which backends and frameworks this install supports")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND",
                   help="the program (and its arguments) every rank runs")
    return p


def parse_args(argv):
    """Parses and validates argv; exits with status 2 and a one-line message on error."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.help_env or args.check_build:
        return args
    if args.np is None:
        parser.error("-np N is required")
    if args.print_placement:
        return args
    if not args.command:
        parser.error("no COMMAND given: say what each rank should run, "
                     "e.g. braidrun -np 2 python3 train.py")
    if args.hostfile is not None and not os.path.isfile(args.hostfile):
        parser.error(f"hostfile '{args.hostfile}' does not exist")
    if args.hosts is not None:
        _check_hosts(parser, args.hosts)
    for entry in args.exports:
        if not entry.split("=", 1)[0]:
            parser.error(f"-x '{entry}' has no variable name")
    return args


def _check_hosts(parser, hosts):
    for item in hosts.split(","):
        name, _, slots = item.partition(":")
        if not name or (slots and not (slots.isdigit() and int(slots) > 0)):
            parser.error(f"bad host entry '{item}' in -H; expected HOST or HOST:SLOTS")
