"""Will the lab fit in this machine's memory? Asked before a rehearsal starts anything.

The whole nation (274 hosts) holds ~18 GB in its containers once converged, and the controller
~45 MB for each host an ansible-playbook run reached through Mitogen. Without enough memory the
fourth wave of the nation was lost an hour into a run (2026-12-04): better to say so before
the first host starts. The figures are measured (docs/converge-speed.md, "The whole nation,
converged"): the memory cgroup of each converged host, by kind, after the cutover.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from govops.lab.topology import LabHost

MIB_BY_KIND = {"monitor": 1100, "db": 72, "db-standby": 61, "procedures": 65}
OTHER_HOST_MIB = 57
# Outside the container's cgroup: conmon, its network namespace and veth, the kernel's share.
PER_CONTAINER_MIB = 10
# The controller: ~45 MB a host Mitogen reached in one ansible-playbook run, plus the run.
CONTROLLER_MIB_PER_HOST = 45
CONTROLLER_BASE_MIB = 500
# "Room to spare": what is left free of the machine's memory, not counting swap.
HEADROOM = 0.10


def host_kind(host: LabHost) -> str:
    if "monitoring" in host.groups:
        return "monitor"
    if host.name.endswith("-db-standby"):
        return "db-standby"
    if host.name.endswith("-db"):
        return "db"
    return host.system or "other"


def host_mib(host: LabHost) -> int:
    return MIB_BY_KIND.get(host_kind(host), OTHER_HOST_MIB) + PER_CONTAINER_MIB


def read_meminfo(path: Path = Path("/proc/meminfo")) -> dict[str, int]:
    """/proc/meminfo in MiB (its kB fields)."""
    info: dict[str, int] = {}
    for line in path.read_text(encoding="ascii").splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            info[key] = int(fields[0]) // 1024
    return info


@dataclass(frozen=True)
class MemoryPlan:
    hosts: int
    need_mib: int  # the hosts still to start, and the controller's peak
    available_mib: int  # MemAvailable now
    swap_free_mib: int
    total_mib: int

    @property
    def headroom_mib(self) -> int:
        return int(self.total_mib * HEADROOM)

    @property
    def fits(self) -> bool:
        """In memory, with the headroom left free (nothing to start always fits)."""
        return not self.need_mib or self.need_mib + self.headroom_mib <= self.available_mib

    @property
    def possible(self) -> bool:
        """In memory and swap together (slower, but no host is killed)."""
        return self.need_mib <= self.available_mib + self.swap_free_mib

    def describe(self) -> str:
        gib = 1024
        return (
            f"{self.hosts} hosts to start need ~{self.need_mib / gib:.1f} GiB with the "
            f"controller; available {self.available_mib / gib:.1f} GiB of "
            f"{self.total_mib / gib:.1f} (+ {self.swap_free_mib / gib:.1f} GiB swap free), "
            f"{HEADROOM:.0%} to be left free"
        )


def plan(to_start: Iterable[LabHost], wave_hosts: int, meminfo: Mapping[str, int]) -> MemoryPlan:
    """What starting `to_start` needs, the controller reaching `wave_hosts` hosts in a run."""
    hosts = list(to_start)
    controller = CONTROLLER_BASE_MIB + CONTROLLER_MIB_PER_HOST * wave_hosts
    for key in ("MemAvailable", "MemTotal"):
        if key not in meminfo:
            raise ValueError(f"/proc/meminfo: no {key} line")
    return MemoryPlan(
        hosts=len(hosts),
        need_mib=sum(host_mib(h) for h in hosts) + (controller if hosts else 0),
        available_mib=meminfo["MemAvailable"],
        swap_free_mib=meminfo.get("SwapFree", 0),
        total_mib=meminfo["MemTotal"],
    )
