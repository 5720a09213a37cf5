"""A throwaway lab for tests and benchmarks, apart from `make lab`.

It takes the lab's estate (inventories/lab/estate.yml), renames the environment, moves it to a
free /16 and a network of its own, optionally keeps only some provinces, renders it into a
temporary inventories folder (with the hand-written lab settings copied beside), and runs
`govops lab up/down` and `govops converge` with a private cache (GOVOPS_CACHE): its own SSH key,
known_hosts, CA and secrets. The lab image is shared through podman's storage.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from govops.converge import ConvergeRequest, ConvergeResult, converge
from govops.errors import GovopsError
from govops.lab.paths import LabPaths
from govops.lab.podman import Podman, free_subnet, used_networks, write_containers_conf
from govops.registry import load_estate
from govops.render import render

HAND_WRITTEN = ("group_vars/all/lab.yml",)


class TestLabError(GovopsError):
    """The throwaway lab could not be made or started."""


@dataclass(frozen=True)
class TestLab:
    """Where a throwaway lab lives: repository, its inventories folder, its cache, its name."""

    root: Path
    inventories: Path
    cache: Path
    env: str
    provinces: tuple[str, ...]

    @property
    def inventory(self) -> Path:
        return self.inventories / self.env

    @property
    def lab_paths(self) -> LabPaths:
        return LabPaths(self.cache / "lab")

    def environ(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["GOVOPS_CACHE"] = str(self.cache)
        env["GOVOPS_ROOT"] = str(self.root)
        return env

    def govops(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the govops CLI (this interpreter's) against the throwaway lab."""
        argv = [sys.executable, "-m", "govops.cli", *args]
        proc = subprocess.run(argv, env=self.environ(), capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise TestLabError(
                f"`govops {' '.join(args)}` exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def up(self, jobs: int | None = None) -> subprocess.CompletedProcess[str]:
        args = ["lab", "up", "--env", self.env, "--inventories", str(self.inventories)]
        args += ["--provinces", ",".join(self.provinces) if self.provinces else "all"]
        if jobs is not None:
            args += ["--jobs", str(jobs)]
        return self.govops(*args)

    def down(self) -> subprocess.CompletedProcess[str]:
        return self.govops("lab", "down", "--env", self.env, check=False)

    def running_hosts(self) -> list[str]:
        limit = self.lab_paths.hosts_limit(self.env)
        return limit.read_text(encoding="utf-8").split() if limit.is_file() else []

    def converge(
        self,
        *,
        check: bool = False,
        playbook: str = "site.yml",
        limit: str | None = None,
        extra_args: Sequence[str] = (),
        environ: dict[str, str] | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> ConvergeResult:
        request = ConvergeRequest(
            env=self.env,
            playbook=playbook,
            limit=limit,
            check=check,
            extra_args=tuple(extra_args),
            inventories=self.inventories,
        )
        return converge(
            self.root,
            request,
            echo=echo,
            lab_paths=self.lab_paths,
            environ=self.environ(environ),
        )

    def host_ip(self, host: str) -> str:
        data = yaml.safe_load((self.inventory / "topology.yml").read_text(encoding="utf-8"))
        for row in data["hosts"]:
            if row["name"] == host:
                return str(row["ip"])
        raise KeyError(host)

    def podman(self) -> Podman:
        return Podman(write_containers_conf(self.lab_paths.containers_conf))

    def container(self, host: str) -> str:
        return f"{self.env}-{host}"


def derive_estate(
    source: dict[str, Any], env: str, pool: ipaddress.IPv4Network, provinces: Sequence[str]
) -> dict[str, Any]:
    """The lab estate renamed to `env`, moved to `pool` (a /16), limited to `provinces`."""
    data = dict(source)
    data["environment"] = env
    network = dict(data["network"])
    network["pool"] = str(pool)
    network["national"] = str(next(pool.subnets(new_prefix=24)))
    data["network"] = network
    if provinces:
        data["provinces"] = list(provinces)
    lab = dict(data.get("lab") or {})
    lab["network_name"] = f"govops-{env}"
    lab["default_provinces"] = list(provinces) if provinces else lab.get("default_provinces", [])
    data["lab"] = lab
    return data


def make_test_lab(
    root: Path,
    workdir: Path,
    env: str,
    provinces: Sequence[str] = (),
    *,
    pool: ipaddress.IPv4Network | None = None,
) -> TestLab:
    """Render a throwaway lab estate under `workdir` (nothing is started yet)."""
    source = yaml.safe_load((root / "inventories/lab/estate.yml").read_text(encoding="utf-8"))
    inventories = workdir / "inventories"
    cache = workdir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    if pool is None:
        podman = Podman(write_containers_conf(LabPaths(cache / "lab").containers_conf))
        taken = [*used_networks(podman), ipaddress.IPv4Network(source["network"]["pool"])]
        pool = free_subnet(taken)
    estate_file = inventories / env / "estate.yml"
    estate_file.parent.mkdir(parents=True, exist_ok=True)
    estate_file.write_text(
        yaml.safe_dump(derive_estate(source, env, pool, provinces), sort_keys=False),
        encoding="utf-8",
    )
    estate = load_estate(estate_file)
    for rel, content in render(estate).items():
        if not rel.startswith(f"inventories/{env}/"):
            continue  # Pulumi stacks and the like: not the lab's business
        path = workdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    for rel in HAND_WRITTEN:
        target = inventories / env / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / "inventories/lab" / rel, target)
    return TestLab(root, inventories, cache, env, tuple(provinces))
