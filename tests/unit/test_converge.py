"""`govops converge` without Ansible running: recap parsing, inputs, limits, the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from govops.ansible.converge import (
    Converge,
    ConvergeInputError,
    ConvergeRequest,
    ConvergeResult,
    HostRecap,
    LabNotUp,
    format_recap,
    parse_recap,
    summary,
)
from govops.lab.paths import LabPaths

OUTPUT = """
PLAY [Tier db] *****************************************************************

TASK [postgresql : Keep PostgreSQL enabled and running] ************************
changed: [hue-db]

PLAY RECAP *********************************************************************
\x1b[0;33mhue-db\x1b[0m                     : \x1b[0;32mok=12  \x1b[0m \x1b[0;33mchanged=3   \x1b[0m unreachable=0    failed=0    skipped=2    rescued=0    ignored=0
hue-procedures             : ok=30   changed=0    unreachable=0    failed=1    skipped=4    rescued=1    ignored=0
monitor                    : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0

Wednesday 02 December 2026  10:00:00 +0000 (0:00:01.000)       0:01:00.000 *****
"""  # noqa: E501


def test_the_recap_is_parsed_per_host_colours_and_all() -> None:
    recap = parse_recap(OUTPUT)
    assert sorted(recap) == ["hue-db", "hue-procedures", "monitor"]
    assert recap["hue-db"] == HostRecap(
        "hue-db", ok=12, changed=3, unreachable=0, failed=0, skipped=2
    )
    assert recap["hue-procedures"].failed == 1 and recap["hue-procedures"].rescued == 1
    assert recap["monitor"].unreachable == 1


def test_a_later_recap_wins_for_a_host() -> None:
    later = "PLAY RECAP ***\nhue-db : ok=5 changed=0 unreachable=0 failed=0 skipped=0\n"
    assert parse_recap(OUTPUT + later)["hue-db"].changed == 0


def test_lines_that_look_like_a_recap_outside_one_are_ignored() -> None:
    assert parse_recap("hue-db : ok=1 changed=1 unreachable=0 failed=0\n") == {}


def test_the_result_tells_changed_failed_and_ok_apart() -> None:
    result = ConvergeResult(command=["ansible-playbook"], returncode=2, recap=parse_recap(OUTPUT))
    assert not result.ok
    assert result.changed_hosts == ["hue-db"]
    assert result.failed_hosts == ["hue-procedures", "monitor"]
    assert result.totals()["ok"] == 42
    quiet = ConvergeResult(command=[], returncode=0, recap={"a": HostRecap("a", 3, 0, 0, 0)})
    assert quiet.ok and quiet.changed_hosts == []
    # A run that ended 0 with a failed host (ignore_unreachable and the like) is not ok either.
    assert not ConvergeResult(command=[], returncode=0, recap=parse_recap(OUTPUT)).ok


def test_summary_and_recap_lines() -> None:
    result = ConvergeResult(command=[], returncode=0, recap=parse_recap(OUTPUT), seconds=61.23)
    line = summary(result, "lab")
    assert line.startswith("lab: 3 hosts, changed=3 on 1 host, failed=1, unreachable=1")
    assert line.endswith("61.2 s")
    lines = format_recap(result.recap)
    assert [x.split()[0] for x in lines] == ["hue-db", "hue-procedures", "monitor"]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A minimal checkout: two inventories (one a lab) and two playbooks."""
    (tmp_path / "playbooks" / "cutover").mkdir(parents=True)
    for name in ("site.yml", "rollout.yml", "cutover/drain.yml"):
        (tmp_path / "playbooks" / name).write_text("- hosts: all\n", encoding="utf-8")
    for env in ("lab", "production"):
        (tmp_path / "inventories" / env).mkdir(parents=True)
        (tmp_path / "inventories" / env / "hosts.yml").write_text("all: {}\n", encoding="utf-8")
    (tmp_path / "inventories" / "lab" / "topology.yml").write_text("hosts: []\n", encoding="utf-8")
    return tmp_path


def make(checkout: Path, **kwargs: object) -> Converge:
    env = str(kwargs.pop("env", "lab"))
    request = ConvergeRequest(env=env, **kwargs)  # type: ignore[arg-type]
    return Converge(checkout, request, lab_paths=LabPaths(checkout / "cache" / "lab"), environ={})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"env": "../etc"}, "expected a name"),
        ({"env": "staging"}, "inventories/staging/hosts.yml: missing"),
        ({"playbook": "nope.yml"}, "known: rollout.yml, site.yml"),
    ],
)
def test_bad_input_is_refused_with_exit_code_2(
    checkout: Path, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(ConvergeInputError, match=message.replace(".", r"\.")) as info:
        make(checkout, **kwargs)
    assert info.value.exit_code == 2


def test_a_lab_that_is_not_up_is_refused(checkout: Path) -> None:
    with pytest.raises(LabNotUp, match="govops lab up --env lab"):
        make(checkout).lab_limit()


def test_a_lab_is_limited_to_its_running_hosts(checkout: Path) -> None:
    converge = make(checkout, check=True, extra_args=("-e", "x=1"))
    limit_file = converge.lab_paths.hosts_limit("lab")
    limit_file.parent.mkdir(parents=True)
    limit_file.write_text("# running\nhue-db\nhue-procedures\n\n", encoding="utf-8")
    lab = converge.lab_limit()
    assert lab == (f"@{limit_file}", ["hue-db", "hue-procedures"])
    argv = converge.command(lab[0])
    assert argv[1:] == [
        "-i",
        str(checkout / "inventories" / "lab"),
        str(checkout / "playbooks" / "site.yml"),
        "--limit",
        f"@{limit_file}",
        "--check",
        "-e",
        "x=1",
    ]


def test_production_is_not_limited_and_a_playbook_may_be_in_a_subfolder(checkout: Path) -> None:
    converge = make(checkout, env="production", playbook="cutover/drain.yml", limit="hue-db")
    assert converge.lab_limit() is None
    argv = converge.command(converge.request.limit)
    assert argv[2:] == [
        str(checkout / "inventories" / "production"),
        str(checkout / "playbooks" / "cutover" / "drain.yml"),
        "--limit",
        "hue-db",
    ]


def test_facts_are_cached_per_cache_dir_and_environment(checkout: Path) -> None:
    lab = make(checkout).env()
    production = make(checkout, env="production").env()
    assert lab["ANSIBLE_CACHE_PLUGIN_CONNECTION"] == str(
        checkout / "cache" / "ansible-facts" / "lab"
    )
    assert production["ANSIBLE_CACHE_PLUGIN_CONNECTION"].endswith("/ansible-facts/production")
    assert lab["ANSIBLE_ROLES_PATH"] == str(checkout / "roles")
    # What the caller set wins.
    request = ConvergeRequest(env="lab")
    mine = Converge(checkout, request, environ={"ANSIBLE_CACHE_PLUGIN_CONNECTION": "/x"}).env()
    assert mine["ANSIBLE_CACHE_PLUGIN_CONNECTION"] == "/x"
