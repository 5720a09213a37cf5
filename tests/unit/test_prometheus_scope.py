"""Prometheus watches what the environment runs (issue 17): the prometheus role's file_sd
template keeps the rendered targets of the watched hosts only (a lab's running hosts), and all
of them when no watched set is given (production: what the estate declares)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOBS = ("node", "nginx", "postgres", "blackbox_https", "domain_prober")
PLAY = """
- hosts: monitor
  connection: local
  gather_facts: false
  vars:
    prometheus_file_sd_src: "{{ inventory_dir }}/prometheus"
    prometheus_watched_hosts: %s
  tasks:
    - ansible.builtin.template:
        src: %s
        dest: "%s/{{ item }}.json"
        mode: "0644"
      loop: %s
"""


def _render(env: str, watched: str, tmp_path: Path) -> dict[str, list[dict[str, object]]]:
    out = tmp_path / "file_sd"
    out.mkdir()
    template = ROOT / "roles" / "prometheus" / "templates" / "file_sd.json.j2"
    play = tmp_path / "play.yml"
    play.write_text(PLAY % (watched, template, out, json.dumps(list(JOBS))), encoding="utf-8")
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(ROOT / "inventories" / env),
            str(play),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "ANSIBLE_VAULT_PASSWORD_FILE": str(
                ROOT / "inventories" / "production" / "vault-password.example"
            ),
            "HOME": str(tmp_path),
        },
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {job: json.loads((out / f"{job}.json").read_text(encoding="utf-8")) for job in JOBS}


def _rendered(env: str, job: str) -> list[dict[str, object]]:
    path = ROOT / "inventories" / env / "prometheus" / f"{job}.json"
    entries: list[dict[str, object]] = json.loads(path.read_text(encoding="utf-8"))
    return entries


def _hosts(entries: list[dict[str, object]]) -> set[str]:
    return {e["labels"]["host"] for e in entries if "host" in e["labels"]}  # type: ignore[index,operator]


def test_a_lab_watches_only_its_running_hosts(tmp_path: Path) -> None:
    running = ["monitor", "national-portal", "hue-procedures", "hue-documents", "hue-db"]
    got = _render("lab", json.dumps(running), tmp_path)
    assert _hosts(got["node"]) == set(running)
    assert _hosts(got["nginx"]) == {"national-portal", "hue-procedures", "hue-documents"}
    assert _hosts(got["postgres"]) == {"hue-db"}
    assert _hosts(got["blackbox_https"]) == {"national-portal", "hue-procedures", "hue-documents"}
    # The domain prober's targets are provinces: those with a running host.
    assert [e["labels"]["province"] for e in got["domain_prober"]] == ["hue"]  # type: ignore[index]
    # What is kept is kept as rendered, labels and all.
    kept = [e for e in _rendered("lab", "node") if e["labels"]["host"] in running]  # type: ignore[index]
    assert got["node"] == kept


@pytest.mark.parametrize("env", ["lab", "production"])
def test_no_watched_set_watches_every_declared_host(env: str, tmp_path: Path) -> None:
    got = _render(env, "[]", tmp_path)
    for job in JOBS:
        assert got[job] == _rendered(env, job), job
    assert len(got["domain_prober"]) == 34
