"""podman's configuration for this kind of machine, and picking a free subnet."""

from __future__ import annotations

import ipaddress
import random
import tomllib
from pathlib import Path

import pytest

from govops.lab.podman import (
    CONTAINERS_CONF,
    Podman,
    ensure_inotify,
    free_subnet,
    write_containers_conf,
)


def test_containers_conf_sets_runtime_cgroups_and_ulimits() -> None:
    conf = tomllib.loads(CONTAINERS_CONF)
    assert conf["engine"]["runtime"] == "runc"
    assert conf["engine"]["cgroup_manager"] == "cgroupfs"
    assert conf["containers"]["default_ulimits"] == ["nofile=20000:20000", "nproc=32768:32768"]


def test_containers_conf_is_written_once_and_passed_by_environment(tmp_path: Path) -> None:
    path = write_containers_conf(tmp_path / "lab" / "containers.conf")
    mtime = path.stat().st_mtime_ns
    assert write_containers_conf(path).stat().st_mtime_ns == mtime
    assert Podman(path).env()["CONTAINERS_CONF"] == str(path)


def test_containers_conf_is_repaired_when_edited(tmp_path: Path) -> None:
    path = tmp_path / "containers.conf"
    path.write_text("[engine]\nruntime = 'crun'\n")
    assert write_containers_conf(path).read_text() == CONTAINERS_CONF


def test_inotify_is_raised_and_said(tmp_path: Path) -> None:
    sysctl = tmp_path / "max_user_instances"
    sysctl.write_text("128\n")
    message = ensure_inotify(4096, sysctl)
    assert message is not None and "128" in message and "4096" in message
    assert sysctl.read_text().strip() == "4096"
    assert ensure_inotify(4096, sysctl) is None


def test_inotify_high_enough_is_left_alone(tmp_path: Path) -> None:
    sysctl = tmp_path / "max_user_instances"
    sysctl.write_text("8192\n")
    assert ensure_inotify(4096, sysctl) is None
    assert sysctl.read_text().strip() == "8192"


@pytest.mark.parametrize("seed", range(20))
def test_free_subnet_overlaps_nothing_taken(seed: int) -> None:
    taken = [ipaddress.IPv4Network(n) for n in ("10.0.0.0/9", "10.150.3.0/24", "10.88.0.0/16")]
    net = free_subnet(taken, rng=random.Random(seed))
    assert net.prefixlen == 16
    assert not any(net.overlaps(t) for t in taken)


def test_free_subnet_stays_clear_of_the_rendered_lab_subnet() -> None:
    lab = ipaddress.IPv4Network("10.213.0.0/16")
    assert all(not free_subnet([], rng=random.Random(s)).overlaps(lab) for s in range(50))


def test_no_free_subnet_is_an_error() -> None:
    with pytest.raises(LookupError):
        free_subnet([ipaddress.IPv4Network("10.0.0.0/8")])
