"""`braidrun --print-placement`: where each rank of a job would run, without
starting it.

The rules live in the engine (core/topology); this only asks the compiled
extension to apply them to this machine's topology, or to the one named by
--topology-file / BRAID_TOPOLOGY_FILE, for the ranks each host gets.
"""

import os
import sys

from . import info

NO_HWLOC = ("braidrun: error: this build of braid has no hwloc, so it cannot place "
            "ranks; install hwloc (Debian/Ubuntu: apt-get install libhwloc-dev) and "
            "rebuild braid")


def _hostfile_slots(path):
    hosts = []
    with open(path) as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            slots = 1
            for word in words[1:]:
                key, _, value = word.partition("=")
                if key in ("slots", "max_slots") and value.isdigit():
                    slots = int(value)
                    break
            hosts.append((words[0], slots))
    return hosts


def ranks_per_host(args):
    """[(host, local ranks)] as Open MPI maps -np ranks by slot: each host is filled
    to its slot count in order; without a host list every rank is local."""
    if args.hosts is not None:
        hosts = []
        for item in args.hosts.split(","):
            name, _, slots = item.partition(":")
            hosts.append((name, int(slots) if slots else 1))
    elif args.hostfile is not None:
        hosts = _hostfile_slots(args.hostfile)
    else:
        return [("localhost", args.np)]
    out, left = [], args.np
    for name, slots in hosts:
        if left <= 0:
            break
        take = min(slots, left)
        out.append((name, take))
        left -= take
    if left > 0 and out:  # oversubscribed: mpirun wraps round the hosts
        name, count = out[0]
        out[0] = (name, count + left)
    return out


def print_placement(args, out=sys.stdout):
    ext, error = info.load_extension()
    if ext is None:
        print(info.NOT_BUILT.format(error=error), file=sys.stderr)
        return 1
    if not ext.topology_supported():
        print(NO_HWLOC, file=sys.stderr)
        return 1
    source = args.topology_file or os.environ.get("BRAID_TOPOLOGY_FILE", "")
    bind = args.bind or ""
    for host, local_size in ranks_per_host(args):
        try:
            plan = ext.plan_placement(local_size, source, bind)
        except Exception as err:  # the engine's message names the bad value
            print(f"braidrun: error: {err}", file=sys.stderr)
            return 2
        if host != "localhost":
            print(f"# {host}: {local_size} rank(s), planned on the topology below")
        print(plan["table"], end="", file=out)
    return 0
