"""`govops lab rehearse` grows a lab of more provinces than a wave wave by wave (issue 19): the
first wave starts in the hosts stage, each later one starts in converge just before the
ansible-playbook run that converges it with the national hosts."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from govops.lab.paths import LabPaths, inventories_dir
from govops.lab.rehearse import Rehearser, wave_limit, waves
from govops.lab.topology import load_topology

TOPOLOGY = load_topology(inventories_dir(None), "lab")


class Recorded(Rehearser):
    """A rehearser that records the govops commands it would run (no lab here)."""

    def __init__(self, tmp_path: Path, provinces: list[str], wave: int) -> None:
        super().__init__(
            "lab", provinces, "tester", LabPaths(tmp_path), print, wave=wave, topology=TOPOLOGY,
            meminfo=lambda: {"MemTotal": 24 << 10, "MemAvailable": 21 << 10},
        )  # fmt: skip
        self.calls: list[list[str]] = []
        self.paths.hosts_limit("lab").parent.mkdir(parents=True)
        self.paths.hosts_limit("lab").write_text("monitor\nhue-db\n")

    def _call(
        self, args: list[str], what: str, accept: Sequence[int] = (0,), show: bool = True
    ) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        return subprocess.CompletedProcess(args, 0, "converged 2 hosts\n")


def test_waves_split_in_order_and_a_small_lab_is_one() -> None:
    assert waves(["a", "b", "c", "d", "e"], 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert waves(["a", "b", "c"], 9) == [["a", "b", "c"]]
    assert waves([], 9) == [[]]
    with pytest.raises(ValueError):
        waves(["a"], 0)


def test_a_wave_converges_its_provinces_and_the_national_hosts() -> None:
    hosts = set(wave_limit(TOPOLOGY, ["hue", "ca_mau"]).split(","))
    assert {"hue-db", "hue-procedures", "ca-mau-db-standby", "monitor", "dns"} <= hosts
    assert {"national-portal", "backup-lab"} <= hosts
    # the old provinces merged into Cà Mau (Bạc Liêu) have their databases in its wave
    assert "legacy-bac-lieu-db" in hosts
    assert not any(h.startswith(("tuyen-quang-", "ha-noi-")) for h in hosts)


def test_the_default_lab_is_started_and_converged_at_once(tmp_path: Path) -> None:
    r = Recorded(tmp_path, ["tuyen_quang", "hue", "ho_chi_minh"], wave=9)
    assert r.hosts() == "2 hosts running"
    r.converge()
    assert r.calls == [
        ["lab", "up", "--env", "lab", "--provinces", "tuyen_quang,hue,ho_chi_minh"],
        ["converge", "--env", "lab"],
    ]


def test_a_larger_lab_grows_wave_by_wave(tmp_path: Path) -> None:
    r = Recorded(tmp_path, ["an_giang", "bac_ninh", "ca_mau", "can_tho", "cao_bang"], wave=2)
    assert "3 more provinces start in converge" in r.hosts()
    detail = r.converge()
    limit = [wave_limit(TOPOLOGY, w) for w in (["an_giang", "bac_ninh"], ["ca_mau", "can_tho"])]
    assert r.calls == [
        ["lab", "up", "--env", "lab", "--provinces", "an_giang,bac_ninh"],
        ["converge", "--env", "lab", "--limit", limit[0]],
        ["lab", "up", "--env", "lab", "--provinces", "an_giang,bac_ninh,ca_mau,can_tho"],
        ["converge", "--env", "lab", "--limit", limit[1]],
        ["lab", "up", "--env", "lab", "--provinces", "an_giang,bac_ninh,ca_mau,can_tho,cao_bang"],
        ["converge", "--env", "lab", "--limit", wave_limit(TOPOLOGY, ["cao_bang"])],
    ]
    assert detail.count("converged 2 hosts") == 3 and detail.startswith("wave 1 (2 provinces)")


def test_the_rehearsals_priority_is_an_option_with_a_range() -> None:
    from click.testing import CliRunner

    from govops.cli import main

    result = CliRunner().invoke(main, ["lab", "rehearse", "--nice", "20"])
    assert result.exit_code == 2 and "--nice" in result.output and "0<=x<=19" in result.output
    assert "--nice N" in CliRunner().invoke(main, ["lab", "rehearse", "--help"]).output
