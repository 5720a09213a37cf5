"""A real lab: podman systemd containers from the lab image, reached over real SSH.

The test makes its own environment (unique name, network and free /16) and its own cache dir
(its own SSH key and known_hosts), so it never collides with a running `make lab`. The image is
shared through podman's storage; when it is missing the first `lab up` builds it (~2 min).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml
from click.testing import CliRunner, Result
from fabric import Config

from govops.lab.cli import lab_group
from govops.lab.fabric import lab_group as fabric_group
from govops.lab.fabric import strict_connection
from govops.lab.hosts import LABEL, down
from govops.lab.image import current_image_ref
from govops.lab.paths import LabPaths
from govops.lab.podman import Podman, free_subnet, used_networks, write_containers_conf

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
GOVOPS = Path(sys.executable).with_name("govops")


@dataclass(frozen=True)
class Lab:
    env: str
    inventories: Path
    paths: LabPaths
    podman: Podman
    hosts: tuple[str, ...]
    ips: dict[str, str]

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(lab_group, list(args), catch_exceptions=False)

    def labelled(self, kind: str) -> list[str]:
        fmt = "{{.Names}}" if kind == "ps" else "{{.Name}}"
        cmd = ["ps", "-a"] if kind == "ps" else ["network", "ls"]
        out = self.podman.run(*cmd, "--filter", f"label={LABEL}={self.env}", "--format", fmt)
        return out.stdout.split()


def _repo_subnets() -> list[ipaddress.IPv4Network]:
    """Subnets of rendered topologies: a later `make lab` must still find its own free."""
    nets = []
    for path in (REPO / "inventories").glob("*/topology.yml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        nets.append(ipaddress.IPv4Network(data["network"]["subnet"]))
    return nets


def _topology(env: str, subnet: ipaddress.IPv4Network) -> dict[str, Any]:
    base = subnet.network_address

    def host(name: str, offset: int, province: str | None, system: str | None) -> dict[str, Any]:
        return {
            "name": name,
            "ip": str(base + offset),
            "province": province,
            "system": system,
            "groups": [f"province_{province}"] if province else ["national"],
        }

    return {
        "environment": env,
        "network": {"name": f"govops-{env}", "subnet": str(subnet), "gateway": str(base + 1)},
        "default_provinces": ["hue"],
        "hosts": [
            host("hue-procedures", 46 * 256 + 11, "hue", "procedures"),
            host("hue-db", 46 * 256 + 10, "hue", None),
            host("tuyen-quang-db", 8 * 256 + 10, "tuyen_quang", None),
            host("ho-chi-minh-db", 79 * 256 + 10, "ho_chi_minh", None),  # never started here
            host("national-portal", 11, None, None),
            host("monitor", 10, None, None),
        ],
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    cache = tmp_path_factory.mktemp("govops-cache")
    inventories = tmp_path_factory.mktemp("inventories")
    env = f"t{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOVOPS_CACHE", str(cache))
        paths = LabPaths.default()
        podman = Podman(write_containers_conf(paths.containers_conf))
        subnet = free_subnet([*used_networks(podman), *_repo_subnets()])
        data = _topology(env, subnet)
        (inventories / env).mkdir()
        (inventories / env / "topology.yml").write_text(yaml.safe_dump(data), encoding="utf-8")
        started = ("hue-procedures", "hue-db", "tuyen-quang-db", "national-portal", "monitor")
        ips = {h["name"]: h["ip"] for h in data["hosts"]}
        try:
            yield Lab(env, inventories, paths, podman, started, ips)
        finally:
            # Cleanup runs on failure too: nothing labelled for this env may outlive the test.
            down(env, paths=paths, podman=podman)


def test_lab_up_reach_every_host_then_down(lab: Lab) -> None:
    inv = str(lab.inventories)
    result = lab.cli("up", "--env", lab.env, "--inventories", inv, "--provinces", "hue,tuyen_quang")
    assert result.exit_code == 0, result.output
    assert f"{len(lab.hosts)} started, 0 already running" in result.output

    _assert_every_host_answers_over_strict_ssh(lab)
    _assert_unknown_host_keys_are_refused(lab)
    _assert_records(lab)

    again = lab.cli("up", "--env", lab.env, "--inventories", inv, "--provinces", "hue,tuyen_quang")
    assert again.exit_code == 0, again.output
    assert f"0 started, {len(lab.hosts)} already running" in again.output

    _assert_ssh_command(lab)
    _assert_bad_input_exits_2(lab)

    dns_state = lab.paths.dns_state_dir(lab.env)
    dns_state.mkdir(parents=True, exist_ok=True)
    (dns_state / "hue.json").write_text("{}")
    gone = lab.cli("down", "--env", lab.env)
    assert gone.exit_code == 0, gone.output
    assert not dns_state.exists(), "the lab's DNS switch record must go with its DNS server"
    assert lab.labelled("ps") == []
    assert lab.labelled("network") == []
    assert lab.podman.image_exists(current_image_ref()), "down must leave the image"
    assert not lab.paths.hosts_limit(lab.env).exists()


def _assert_every_host_answers_over_strict_ssh(lab: Lab) -> None:
    group = fabric_group(lab.env, paths=lab.paths)
    assert sorted(c.original_host for c in group) == sorted(lab.hosts)
    results = group.run("systemctl is-system-running; hostname", hide=True, warn=True)
    for conn, res in results.items():
        state, hostname = res.stdout.split()
        assert state == "running", f"{conn.original_host}: {res.stdout}"
        assert hostname == conn.original_host
        assert conn.host == lab.ips[conn.original_host]
    known = lab.paths.known_hosts.read_text(encoding="utf-8")
    for name in lab.hosts:
        assert f"{name},{lab.ips[name]} ssh-ed25519 " in known


def _assert_unknown_host_keys_are_refused(lab: Lab) -> None:
    """Strict checking is real: with no pinned key, the same connection is rejected."""
    empty = LabPaths(lab.paths.root.parent / "empty-lab")
    empty.ssh_dir.mkdir(parents=True)
    empty.known_hosts.write_text("")
    shutil.copy(lab.paths.private_key, empty.private_key)
    conn = strict_connection(lab.ips["monitor"], Config(), empty)
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        conn.run("true", hide=True, in_stream=False)


def _assert_records(lab: Lab) -> None:
    limit = lab.paths.hosts_limit(lab.env).read_text().split()
    assert sorted(limit) == sorted(lab.hosts)
    status = lab.cli("status", "--env", lab.env, "--json")
    rows = yaml.safe_load(status.output)
    assert {r["name"] for r in rows if r["state"] == "running"} == set(lab.hosts)


def _assert_ssh_command(lab: Lab) -> None:
    """`govops lab ssh HOST -- cmd` through the installed console script (execs OpenSSH)."""
    env = {**os.environ, "GOVOPS_CACHE": str(lab.paths.root.parent)}
    proc = subprocess.run(
        [str(GOVOPS), "lab", "ssh", "--env", lab.env, "hue-db", "--", "hostname"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hue-db"


def _assert_bad_input_exits_2(lab: Lab) -> None:
    unknown_host = lab.cli("ssh", "--env", lab.env, "atlantis-db", "--", "true")
    assert unknown_host.exit_code == 2
    unknown_province = lab.cli(
        "up", "--env", lab.env, "--inventories", str(lab.inventories), "--provinces", "atlantis"
    )
    assert unknown_province.exit_code == 2
    assert "atlantis" in unknown_province.output
