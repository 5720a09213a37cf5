"""The pure parts of starting hosts: podman arguments, what to start, known_hosts, CLI errors."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from govops.lab.cli import lab_group
from govops.lab.hosts import (
    Container,
    container_name,
    hosts_to_start,
    parse_boot_probe,
    run_args,
)
from govops.lab.paths import LabPaths
from govops.lab.sshkeys import HostKeys, merge_known_hosts, parse_public_keys
from govops.lab.topology import parse_topology
from tests.unit.test_lab_topology import SOURCE, topology_data

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKx"


def test_run_args_place_the_host_on_its_network_with_labels_and_the_key() -> None:
    topology = parse_topology(topology_data(), SOURCE)
    host = topology.host("hue-db")
    paths = LabPaths(Path("/cache/lab"))
    args = run_args(topology, host, "localhost/govops-lab:abc", paths)
    pairs = set(itertools.pairwise(args))
    assert ("--name", "lab-hue-db") in pairs
    assert ("--hostname", "hue-db") in pairs
    assert ("--network", "govops-lab") in pairs
    assert ("--ip", "10.213.46.10") in pairs
    assert ("--systemd", "always") in pairs
    assert ("--label", "govops.lab=lab") in pairs
    assert ("--label", "govops.province=hue") in pairs
    assert ("--volume", "/cache/lab/ssh/id_ed25519.pub:/root/.ssh/authorized_keys:ro") in pairs
    assert args[-2:] == ["localhost/govops-lab:abc", "/sbin/init"]


def test_container_names_are_prefixed_by_environment() -> None:
    assert container_name("lab", "hue-db") == "lab-hue-db"
    assert container_name("t1234", "hue-db") != container_name("lab", "hue-db")


def _container(name: str, state: str) -> Container:
    return Container(name, f"lab-{name}", "10.0.0.2", None, None, state, "img")


def test_running_and_known_hosts_are_not_started_again() -> None:
    topology = parse_topology(topology_data(), SOURCE)
    existing = {
        "hue-db": _container("hue-db", "running"),
        "monitor": _container("monitor", "exited"),
        "national-portal": _container("national-portal", "running"),
    }
    start, running = hosts_to_start(topology.hosts, existing, known={"hue-db"})
    assert [h.name for h in running] == ["hue-db"]
    # national-portal runs but its key is not pinned: it goes through the start path again.
    assert {h.name for h in start} == {
        "hue-procedures",
        "tuyen-quang-db",
        "ho-chi-minh-db",
        "national-portal",
        "monitor",
    }


def test_boot_probe_output_is_state_then_key() -> None:
    host = parse_topology(topology_data(), SOURCE).host("monitor")
    state, keys = parse_boot_probe(f"running\n{KEY} root@monitor\n", host)
    assert state == "running"
    assert keys == HostKeys("monitor", "10.213.0.10", (KEY,))
    assert parse_boot_probe("offline\n", host) == ("offline", None)


def test_known_hosts_lines_cover_name_and_ip_and_replace_stale_ones() -> None:
    current = [
        "hue-db,10.213.46.10 ssh-ed25519 OLD",
        "monitor,10.213.0.10 ssh-ed25519 KEEP",
        "",
    ]
    fresh = HostKeys("hue-db", "10.213.46.10", (KEY,))
    assert merge_known_hosts(current, [fresh]) == [
        "monitor,10.213.0.10 ssh-ed25519 KEEP",
        f"hue-db,10.213.46.10 {KEY}",
    ]
    assert merge_known_hosts(current, [], remove=["10.213.0.10"]) == [current[0]]


def test_public_keys_drop_comments_and_junk() -> None:
    text = f"{KEY} root@host\ncat: /nope: No such file\n"
    assert parse_public_keys(text) == (KEY,)


def _write_topology(root: Path) -> Path:
    path = root / "lab" / "topology.yml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(topology_data()))
    return root


def test_cli_missing_topology_exits_2_naming_the_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(lab_group, ["up", "--inventories", str(tmp_path)])
    assert result.exit_code == 2
    assert "lab/topology.yml" in result.output and "govops render" in result.output
    assert "Traceback" not in result.output


def test_cli_unknown_province_exits_2(tmp_path: Path) -> None:
    root = _write_topology(tmp_path)
    result = CliRunner().invoke(
        lab_group, ["up", "--inventories", str(root), "--provinces", "atlantis"]
    )
    assert result.exit_code == 2
    assert "atlantis" in result.output


@pytest.mark.parametrize("command", ["image", "up", "status", "down", "ssh"])
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(lab_group, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output
