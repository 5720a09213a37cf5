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
    ensure_neighbour_table,
    ensure_sysctls,
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


def test_the_arp_table_is_raised_never_lowered(tmp_path: Path) -> None:
    """The nation's 274 hosts overflowed the kernel's 1,024 ARP entries (shared by every
    network namespace): lab up raises the three thresholds that are below their minimum."""
    files = {tmp_path / f"gc_thresh{i}": v for i, v in ((1, 128), (2, 512), (3, 20000))}
    for path, value in files.items():
        path.write_text(f"{value}\n")
    minimums = dict(zip(files, (4096, 8192, 16384), strict=True))
    message = ensure_neighbour_table(minimums)
    assert message == "raised gc_thresh1 from 128 to 4096, gc_thresh2 from 512 to 8192"
    assert [int(p.read_text()) for p in files] == [4096, 8192, 20000]
    assert ensure_neighbour_table(minimums) is None


def test_a_sysctl_that_cannot_be_raised_says_how(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unreadable = tmp_path / "gc_thresh1"
    unreadable.mkdir()  # unreadable settings are skipped, not fatal
    assert ensure_sysctls({unreadable: 4096}, "risk") is None
    refused = tmp_path / "gc_thresh3"
    refused.write_text("1024\n")

    def not_root(self: Path, *args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "write_text", not_root)  # as a user who is not root
    message = ensure_sysctls({refused: 16384}, "hosts lost to ARP overflow")
    assert message is not None and message.startswith("gc_thresh3 is 1024 and could not")
    assert message.endswith("hosts lost to ARP overflow: run `sysctl -w gc_thresh3=16384` as root")
