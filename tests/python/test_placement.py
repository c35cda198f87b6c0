"""Placement at init and `braidrun --print-placement` (docs/placement.md).

Run with plain pytest, not under braidrun: each test starts its own job so that it
can set BRAID_BIND and the launcher's binding. The kernel's view of each thread's
CPUs (sched_getaffinity through /proc) is compared with what braid.placement()
reports.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROBE = os.path.join(HERE, "placement_probe.py")
GPU_SERVER = os.path.join(ROOT, "tests", "data", "topology", "two_socket_8gpu_2nic.xml")

braid = pytest.importorskip("braid")
pytestmark = [
    pytest.mark.skipif(shutil.which("mpirun") is None or "OMPI_COMM_WORLD_SIZE" in os.environ,
                       reason="needs mpirun and must not itself run under mpirun"),
    pytest.mark.skipif(not braid._C.topology_supported(),
                       reason="this build has no hwloc: placement tests skipped"),
]


def braidrun(*argv, env=None, timeout=120):
    full = dict(os.environ)
    full.update(env or {})
    full.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.run([sys.executable, "-m", "braid.runner", *argv], env=full,
                          capture_output=True, text=True, timeout=timeout)


def probe(np, *flags, env=None):
    """Runs the probe on `np` ranks; returns its reports by rank, and the result."""
    with tempfile.TemporaryDirectory() as out:
        result = braidrun("-np", str(np), *flags, sys.executable, PROBE,
                          env=dict(env or {}, PROBE_DIR=out))
        reports = []
        for name in sorted(os.listdir(out)):
            with open(os.path.join(out, name)) as f:
                reports.append(json.load(f))
    return sorted(reports, key=lambda r: r["rank"]), result


def table_rows(text):
    """The rows of a placement table as dicts keyed by its header."""
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    header = lines[0].split()
    rows = []
    for line in lines[1:]:
        if line.split() == header:  # the next host's table
            continue
        words = line.split(None, len(header) - 1)
        rows.append(dict(zip(header, words)))
    return rows


# --- braidrun --print-placement ----------------------------------------------------

def test_print_placement_of_the_gpu_server_eight_ranks():
    result = braidrun("--print-placement", "-np", "8", "--topology-file", GPU_SERVER)
    assert result.returncode == 0, result.stderr
    assert "8 GPU(s), 2 NIC(s)" in result.stdout
    rows = table_rows(result.stdout)
    assert len(rows) == 8
    bus = ["0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0",
           "0000:9a:00.0", "0000:ab:00.0", "0000:ba:00.0", "0000:db:00.0"]
    for r, row in enumerate(rows):
        socket, slot = r // 4, r % 4
        first = 24 * socket + 6 * slot  # 24 cores a socket, 6 a rank; the 6th coordinates
        assert row["host"] == "gpu-server-a" and row["local"] == str(r)
        assert row["gpu"] == str(r) and row["gpu_pci"] == bus[r]
        assert row["bind"] == "cores" and row["numa"] == str(socket)
        assert row["cpus"] == f"{first}-{first + 4},{first + 48}-{first + 52}"
        assert row["coord"] == f"{first + 5},{first + 53}"
        assert row["nic"] == f"mlx5_{socket}"


def test_print_placement_sixteen_ranks_share_no_cpu():
    result = braidrun("--print-placement", "-np", "16", "--topology-file", GPU_SERVER)
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert [row["gpu"] for row in rows] == [str(r % 8) for r in range(16)]
    seen = set()
    for row in rows:
        cpus = set()
        for part in row["cpus"].split(","):
            lo, _, hi = part.partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
        assert len(cpus) == 6 and not cpus & seen  # 3 cores of 2 threads each
        seen |= cpus


def test_print_placement_per_host_and_bind_flag():
    result = braidrun("--print-placement", "-np", "6", "-H", "a:4,b:4", "--bind", "numa",
                      "--topology-file", GPU_SERVER)
    assert result.returncode == 0, result.stderr
    assert "# a: 4 rank(s)" in result.stdout and "# b: 2 rank(s)" in result.stdout
    assert {row["bind"] for row in table_rows(result.stdout)} == {"numa"}


def test_print_placement_bad_topology_file_names_it():
    result = braidrun("--print-placement", "-np", "2", "--topology-file", "/nonexistent/t.xml")
    assert result.returncode == 2
    assert "/nonexistent/t.xml" in result.stderr and "Traceback" not in result.stderr


def test_print_placement_without_hwloc_says_so(monkeypatch, capsys):
    from braid.runner import cli, placement

    class NoHwloc:
        @staticmethod
        def topology_supported():
            return False

    monkeypatch.setattr(placement.info, "load_extension", lambda: (NoHwloc(), None))
    assert placement.print_placement(cli.parse_args(["-np", "2", "--print-placement"])) == 1
    assert "no hwloc" in capsys.readouterr().err


# --- placement applied at init ------------------------------------------------------

def kernel_view_matches(report):
    """The process's threads and the coordinator thread run where braid says."""
    p = report["placement"]
    cpus = p["cpus"] or report["after"]
    assert report["after"] == sorted(cpus)
    for python_thread in report["threads"]["python"]:
        assert python_thread == sorted(cpus)
    coordinator = p["coordinator_cpus"] or cpus
    assert report["threads"]["braid-coord"] == [sorted(coordinator)]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_bind_cores_gives_each_rank_its_own_cpus():
    reports, result = probe(2, "--bind", "cores")
    assert len(reports) == 2, result.stderr
    for report in reports:
        p = report["placement"]
        assert report["sum_ok"] and p["binding"] == "cores" and p["note"] == ""
        kernel_view_matches(report)
        assert p["numa_node"] >= 0 and p["fusion_buffer_numa_nodes"] == [p["numa_node"]]
    assert not set(reports[0]["after"]) & set(reports[1]["after"])


def test_bind_none_changes_nothing():
    reports, result = probe(2, "--bind", "none", "--mpi-args=--bind-to none")
    assert len(reports) == 2, result.stderr
    for report in reports:
        assert report["sum_ok"] and report["placement"]["binding"] == "none"
        assert report["after"] == report["before"]
        assert report["threads"]["braid-coord"] == [report["before"]]


def test_a_narrower_affinity_set_before_init_is_kept():
    reports, result = probe(1, "--bind", "cores", env={"PROBE_PIN": "0"})
    assert len(reports) == 1, result.stderr
    report = reports[0]
    p = report["placement"]
    assert report["before"] == [0] and report["after"] == [0]
    assert p["cpus"] == [0] and "launcher" in p["note"]
    kernel_view_matches(report)


def test_auto_is_consistent_with_the_kernel():
    reports, result = probe(1, env={"BRAID_LOG_LEVEL": "info"})
    assert len(reports) == 1, result.stderr
    kernel_view_matches(reports[0])
    assert "# placement on" in result.stderr  # the host's table, logged at info


def test_a_topology_of_another_machine_is_planned_not_bound():
    reports, result = probe(2, "--topology-file", GPU_SERVER, "--mpi-args=--bind-to none")
    assert len(reports) == 2, result.stderr
    for report in reports:
        p = report["placement"]
        assert p["gpu"] == report["local_rank"] and p["binding"] == "none"
        assert "another machine" in p["note"]
        assert report["after"] == report["before"]


@pytest.mark.parametrize("env, named", [
    ({"BRAID_BIND": "sideways"}, "BRAID_BIND='sideways'"),
    ({"BRAID_TOPOLOGY_FILE": "/nonexistent/t.xml"}, "/nonexistent/t.xml"),
    ({"BRAID_GPU_MAP": "0,x"}, "BRAID_GPU_MAP='0,x'"),
])
def test_bad_placement_settings_fail_init_on_every_rank(env, named):
    reports, result = probe(2, env=env)
    assert result.returncode != 0 and not reports
    assert len(re.findall(re.escape(named), result.stderr)) >= 2, result.stderr
