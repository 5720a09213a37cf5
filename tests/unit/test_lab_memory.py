"""The rehearsal asks whether the lab fits in memory before it starts any host (issue 19): the
nation's fourth wave was once lost an hour in for want of it."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from govops.lab import memory
from govops.lab.paths import LabPaths, inventories_dir
from govops.lab.rehearse import Rehearser, waves
from govops.lab.topology import ALL, load_topology, select_hosts

TOPOLOGY = load_topology(inventories_dir(None), "lab")
GIB = 1024
# This machine's kind: 24 GiB, ~21 available with nothing running.
MACHINE = {"MemTotal": 24 * GIB, "MemAvailable": 21 * GIB, "SwapFree": 0}


def test_meminfo_is_read_in_mib(tmp_path: Path) -> None:
    f = tmp_path / "meminfo"
    f.write_text("MemTotal:       24683520 kB\nMemAvailable:   21680128 kB\nHugePages_Total: 0\n")
    assert memory.read_meminfo(f) == {
        "MemTotal": 24105,
        "MemAvailable": 21172,
        "HugePages_Total": 0,
    }


def test_the_estimate_follows_the_measured_nation() -> None:
    nation = select_hosts(TOPOLOGY, [ALL])
    kinds = {memory.host_kind(h) for h in nation}
    assert {"monitor", "db", "db-standby", "procedures", "documents"} <= kinds
    widest = max(len(select_hosts(TOPOLOGY, w)) for w in waves(sorted(TOPOLOGY.provinces), 9))
    need = memory.plan(nation, widest, MACHINE).need_mib
    # Measured 2026-12-05: ~18 GB in the hosts, ~25 GB in all at the cutover's peak.
    assert 23 * GIB < need < 27 * GIB
    default = select_hosts(TOPOLOGY, None)
    assert memory.plan(default, len(default), MACHINE).need_mib < 8 * GIB


def test_verdicts() -> None:
    hosts = select_hosts(TOPOLOGY, None)
    small = memory.plan(hosts, len(hosts), MACHINE)
    assert small.fits and small.possible
    nation = select_hosts(TOPOLOGY, [ALL])
    alone = memory.plan(nation, 80, MACHINE)
    assert not alone.fits and not alone.possible
    swapped = memory.plan(nation, 80, {**MACHINE, "SwapFree": 8 * GIB})
    assert not swapped.fits and swapped.possible
    assert "274 hosts to start" in swapped.describe() and "8.0 GiB swap free" in swapped.describe()
    # Nothing left to start needs nothing, not even the controller.
    assert memory.plan([], 80, MACHINE).need_mib == 0
    with pytest.raises(ValueError, match="MemAvailable"):
        memory.plan(hosts, 1, {"MemTotal": 1})


class Recorded(Rehearser):
    def __init__(self, tmp_path: Path, provinces: list[str], meminfo: dict[str, int]) -> None:
        super().__init__(
            "lab", provinces, "tester", LabPaths(tmp_path), print, topology=TOPOLOGY,
            meminfo=lambda: meminfo,
        )  # fmt: skip
        self.calls: list[list[str]] = []

    def _call(
        self, args: list[str], what: str, accept: Sequence[int] = (0,), show: bool = True
    ) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        limit = self.paths.hosts_limit("lab")
        limit.parent.mkdir(parents=True, exist_ok=True)
        limit.write_text("monitor\n")
        return subprocess.CompletedProcess(args, 0, "")


def test_the_nation_without_swap_is_refused_before_any_host_starts(tmp_path: Path) -> None:
    r = Recorded(tmp_path, sorted(TOPOLOGY.provinces), MACHINE)
    result = r.run(until="hosts")
    assert not result.ok and r.calls == []
    assert "not enough memory: 274 hosts to start" in result.stages[0].detail
    assert "make lab-swap" in result.stages[0].detail


def test_the_nation_with_swap_goes_on_and_says_so(tmp_path: Path) -> None:
    r = Recorded(tmp_path, sorted(TOPOLOGY.provinces), {**MACHINE, "SwapFree": 8 * GIB})
    detail = r.hosts()
    assert r.calls and r.calls[0][:2] == ["lab", "up"]
    assert "memory is tight" in detail and "it will swap" in detail


def test_hosts_already_running_are_not_counted_again(tmp_path: Path) -> None:
    r = Recorded(tmp_path, ["hue"], {**MACHINE, "MemAvailable": 1 * GIB})
    running = "\n".join(h.name for h in select_hosts(TOPOLOGY, ["hue"]))
    r.paths.hosts_limit("lab").parent.mkdir(parents=True)
    r.paths.hosts_limit("lab").write_text(running)
    assert r.memory_check() == ""
