"""Benchmark the lab's hosts: image build, `lab up`, memory per host, `lab down`.

    .venv/bin/python bench/lab.py                  # default provinces
    .venv/bin/python bench/lab.py --scope all      # all 34 provinces (~210 hosts)
    .venv/bin/python bench/lab.py --scope both --build

Runs as its own environment (`labbench`, a free /16, a private cache dir) so it never touches a
running `make lab` or its known_hosts. The image is shared through podman's storage: without
--build an existing image is reused (and built once if missing, not timed as a build).
Goals: default set up < 20 s; 34 provinces < 2 min.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from govops.lab import hosts
from govops.lab.image import ensure_image
from govops.lab.paths import LabPaths
from govops.lab.podman import Podman, free_subnet, used_networks, write_containers_conf
from govops.lab.topology import ALL, Topology, parse_topology, select_hosts

ENV = "labbench"
REPO = Path(__file__).resolve().parents[1]
RENDERED = REPO / "inventories" / "lab" / "topology.yml"
SYSTEMS = ("procedures", "documents", "lgsp", "reporting", "meetings")
NATIONAL = ("national-portal", "national-docaxis", "national-ndxp", "national-reporting")
console = Console()


def generated_topology() -> dict[str, Any]:
    """34 provinces x (5 systems + db) + 4 national + monitor, when nothing is rendered yet."""
    host_rows: list[dict[str, Any]] = []
    for index in range(1, 35):
        province = f"p{index:02d}"
        db = {
            "name": f"{province}-db",
            "ip": f"10.213.{index}.10",
            "province": province,
            "system": None,
            "groups": [f"province_{province}", "tier_db"],
        }
        host_rows.append(db)
        for offset, system in enumerate(SYSTEMS, start=11):
            host_rows.append(
                {
                    "name": f"{province}-{system}",
                    "ip": f"10.213.{index}.{offset}",
                    "province": province,
                    "system": system,
                    "groups": [f"province_{province}", f"system_{system}"],
                }
            )
    for offset, name in enumerate(NATIONAL, start=11):
        host_rows.append(
            {
                "name": name,
                "ip": f"10.213.0.{offset}",
                "province": None,
                "system": None,
                "groups": ["national"],
            }
        )
    host_rows.append(
        {
            "name": "monitor",
            "ip": "10.213.0.10",
            "province": None,
            "system": None,
            "groups": ["monitoring"],
        }
    )
    return {
        "environment": "lab",
        "network": {"name": "govops-lab", "subnet": "10.213.0.0/16", "gateway": "10.213.0.1"},
        "default_provinces": ["p01", "p02", "p03"],
        "hosts": host_rows,
    }


def bench_topology(podman: Podman) -> Topology:
    """The rendered lab topology (or a generated one) moved to its own env, network and /16."""
    data = yaml.safe_load(RENDERED.read_text()) if RENDERED.is_file() else generated_topology()
    old = ipaddress.IPv4Network(data["network"]["subnet"])
    new = free_subnet([*used_networks(podman), old])

    def move(ip: str) -> str:
        offset = int(ipaddress.IPv4Address(ip)) - int(old.network_address)
        return str(new.network_address + offset)

    data["environment"] = ENV
    data["network"] = {
        "name": f"govops-{ENV}",
        "subnet": str(new),
        "gateway": move(data["network"]["gateway"]),
    }
    for row in data["hosts"]:
        row["ip"] = move(row["ip"])
    return parse_topology(data, RENDERED)


_UNITS = {"B": 1, "kB": 1000, "KiB": 1024, "MB": 1e6, "MiB": 2**20, "GB": 1e9, "GiB": 2**30}


def memory_mib(podman: Podman) -> list[float]:
    """Working-set memory of each bench container, from `podman stats` (cgroup usage - cache)."""
    proc = podman.run("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsageBytes}}")
    sizes = []
    for line in proc.stdout.splitlines():
        name, _, usage = line.partition(" ")
        match = re.match(r"([\d.]+)\s*([A-Za-z]+)", usage)
        if name.startswith(f"{ENV}-") and match:
            sizes.append(float(match[1]) * _UNITS.get(match[2], 1) / 2**20)
    return sizes


def run_scope(
    scope: str, topology: Topology, image: str, paths: LabPaths, podman: Podman, jobs: int
) -> list[tuple[str, str]]:
    selected = select_hosts(topology, [ALL] if scope == "all" else None)
    label = f"{scope} ({len(selected)} hosts)"
    console.print(f"[bold]{label}[/]: lab up …")
    started = time.perf_counter()
    report = hosts.up(topology, selected, image, paths=paths, podman=podman, jobs=jobs)
    took_up = time.perf_counter() - started
    if report.failed:
        console.print(f"[red]{len(report.failed)} hosts failed[/]: {report.failed}")
    started = time.perf_counter()
    again = hosts.up(topology, selected, image, paths=paths, podman=podman, jobs=jobs)
    took_again = time.perf_counter() - started
    time.sleep(2)  # let the first-boot work settle before reading memory
    memory = memory_mib(podman)
    started = time.perf_counter()
    hosts.down(ENV, paths=paths, podman=podman)
    took_down = time.perf_counter() - started
    rows = [
        (
            f"{label}: lab up",
            f"{took_up:.1f} s ({len(report.started)} started, "
            f"{len(report.failed)} failed, {len(report.degraded)} degraded)",
        ),
        (f"{label}: lab up again (no-op)", f"{took_again:.1f} s ({len(again.started)} started)"),
        (f"{label}: lab down", f"{took_down:.1f} s"),
    ]
    if memory:
        rows.append(
            (
                f"{label}: memory per host",
                f"mean {statistics.mean(memory):.1f} MiB, max {max(memory):.1f} MiB, "
                f"total {sum(memory):.0f} MiB",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", action="store_true", help="time a full image rebuild too")
    parser.add_argument("--scope", choices=("default", "all", "both"), default="default")
    parser.add_argument("--jobs", type=int, default=hosts.DEFAULT_JOBS)
    args = parser.parse_args(argv)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="govops-bench-") as cache:
        paths = LabPaths(Path(cache) / "lab")
        podman = Podman(write_containers_conf(paths.containers_conf))
        hosts.down(ENV, paths=paths, podman=podman)  # leftovers of an interrupted run
        started = time.perf_counter()
        image, _ = ensure_image(podman, paths, rebuild=args.build, console=console)
        if args.build:
            rows.append(
                ("image build (debootstrap + import)", f"{time.perf_counter() - started:.0f} s")
            )
        topology = bench_topology(podman)
        scopes = ("default", "all") if args.scope == "both" else (args.scope,)
        try:
            for scope in scopes:
                rows += run_scope(scope, topology, image, paths, podman, args.jobs)
        finally:
            hosts.down(ENV, paths=paths, podman=podman)
    table = Table(title=f"govops lab benchmark (image {image}, jobs {args.jobs})")
    table.add_column("measure")
    table.add_column("value")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
