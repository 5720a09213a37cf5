"""Every podman call of the lab goes through here, with the lab's own containers.conf.

On this kind of machine (PID 1 is not systemd, cgroups v1/hybrid, root without
CAP_SYS_RESOURCE) podman's defaults start no container; the settings below are the ones that
work. They are passed with CONTAINERS_CONF so /etc/containers is never edited.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from govops.errors import GovopsError

CONTAINERS_CONF = """\
# Written by govops (govops/lab/podman.py); passed to podman with CONTAINERS_CONF.
[containers]
# Root here lacks CAP_SYS_RESOURCE and the hard nofile limit is 20000: podman's default
# ulimits fail with "setrlimit: Operation not permitted".
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
# crun refuses hybrid cgroups; PID 1 is not systemd, so no systemd cgroup manager either.
runtime = "runc"
cgroup_manager = "cgroupfs"
"""

INOTIFY_SYSCTL = Path("/proc/sys/fs/inotify/max_user_instances")
# Each systemd container takes several inotify instances; past ~25 containers boots hang
# with "Too many open files" at the default of 128.
INOTIFY_MINIMUM = 4096
# The kernel's ARP table is one for all network namespaces, 1,024 entries at most by default
# (gc_thresh3): the whole nation's 274 hosts, each knowing its peers and `monitor` knowing every
# host, overflow it ("neighbour: arp_cache: neighbor table overflow!") and hosts become
# unreachable ("No route to host") mid-converge — measured on the nation's fourth wave. Raised
# as a node with many containers is (only ever raised, never lowered).
NEIGHBOUR_MINIMUMS = {
    Path(f"/proc/sys/net/ipv4/neigh/default/gc_thresh{level}"): minimum
    for level, minimum in ((1, 4096), (2, 8192), (3, 16384))
}


class PodmanError(GovopsError):
    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"podman {' '.join(args)} exited {returncode}: {self.stderr}")


def write_containers_conf(path: Path) -> Path:
    """Write the lab's containers.conf if missing or different (cheap, idempotent)."""
    if not path.is_file() or path.read_text(encoding="utf-8") != CONTAINERS_CONF:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CONTAINERS_CONF, encoding="utf-8")
    return path


@dataclass(frozen=True)
class Podman:
    """A podman CLI bound to one containers.conf."""

    conf: Path
    binary: str = "podman"

    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.conf)}

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.binary, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=stdin,
        )
        if check and proc.returncode != 0:
            raise PodmanError(args, proc.returncode, proc.stderr)
        return proc

    def json(self, *args: str) -> Any:
        out = self.run(*args).stdout.strip()
        return json.loads(out) if out else []

    def image_exists(self, ref: str) -> bool:
        return self.run("image", "exists", ref, check=False).returncode == 0

    def network_exists(self, name: str) -> bool:
        return self.run("network", "exists", name, check=False).returncode == 0


def ensure_inotify(minimum: int = INOTIFY_MINIMUM, sysctl: Path = INOTIFY_SYSCTL) -> str | None:
    """Raise fs.inotify.max_user_instances to `minimum`; return a message saying what was done."""
    return ensure_sysctls({sysctl: minimum}, "more than ~25 hosts may hang at boot")


def ensure_neighbour_table(minimums: Mapping[Path, int] = NEIGHBOUR_MINIMUMS) -> str | None:
    """Raise the ARP table's limits (see NEIGHBOUR_MINIMUMS); a message saying what was done."""
    return ensure_sysctls(minimums, "a lab of more than ~100 hosts loses hosts to ARP overflow")


def kernel_limits() -> list[str]:
    """What a lab of many containers needs of the kernel, raised; what was done, said."""
    return [note for note in (ensure_inotify(), ensure_neighbour_table()) if note]


def ensure_sysctls(minimums: Mapping[Path, int], risk: str) -> str | None:
    """Raise each kernel setting (a /proc/sys file) below its minimum; None when all were high
    enough (or unreadable), else a message naming what was raised or could not be."""
    raised, refused = [], []
    for sysctl, minimum in minimums.items():
        name = _name(sysctl)
        try:
            current = int(sysctl.read_text().strip())
        except (OSError, ValueError):
            continue
        if current >= minimum:
            continue
        try:
            sysctl.write_text(f"{minimum}\n")
        except OSError as exc:
            refused.append(f"{name} is {current} and could not be raised ({exc})")
        else:
            raised.append(f"{name} from {current} to {minimum}")
    if refused:
        wanted = " ".join(f"{_name(p)}={m}" for p, m in minimums.items())
        return f"{'; '.join(refused)}; {risk}: run `sysctl -w {wanted}` as root"
    return f"raised {', '.join(raised)}" if raised else None


def _name(sysctl: Path) -> str:
    """/proc/sys/fs/inotify/max_user_instances → fs.inotify.max_user_instances."""
    return ".".join(sysctl.parts[3:]) if sysctl.parts[:3] == ("/", "proc", "sys") else sysctl.name


def used_networks(podman: Podman) -> list[ipaddress.IPv4Network]:
    """IPv4 subnets already taken by podman networks or by the host's routes and addresses."""
    taken: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for net in podman.json("network", "ls", "--format", "json"):
        for sub in net.get("subnets") or []:
            taken.append(ipaddress.ip_network(sub["subnet"], strict=False))
    routes = subprocess.run(
        ["ip", "-j", "-4", "route", "show", "table", "all"],
        capture_output=True,
        text=True,
        check=False,
    )
    for route in json.loads(routes.stdout or "[]"):
        dst = route.get("dst", "default")
        if dst != "default" and ":" not in dst:
            taken.append(ipaddress.ip_network(dst, strict=False))
    return [net for net in taken if isinstance(net, ipaddress.IPv4Network)]


def free_subnet(
    taken: Iterable[ipaddress.IPv4Network],
    candidates: Iterable[ipaddress.IPv4Network] | None = None,
    rng: random.Random | None = None,
) -> ipaddress.IPv4Network:
    """A /16 that overlaps nothing in `taken`, picked at random so parallel runs rarely race.

    The default pool (10.100-10.199) stays clear of the lab's rendered 10.213.0.0/16.
    """
    taken = list(taken)
    pool = (
        list(candidates)
        if candidates is not None
        else [ipaddress.IPv4Network(f"10.{octet}.0.0/16") for octet in range(100, 200)]
    )
    free = [net for net in pool if not any(net.overlaps(t) for t in taken)]
    if not free:
        raise LookupError("no free subnet among the candidates")
    return (rng or random.Random()).choice(free)
