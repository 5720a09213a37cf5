"""The dns_authoritative role checks its zones' records in one task per zone (issue 19: one
per record cost a task result for every host of the estate): a good zone passes, and a bad one
fails naming every bad record, and only those."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TASK = "Check the zones' records"


def _check(zones: dict[str, list[dict[str, Any]]], tmp_path: Path) -> tuple[bool, str]:
    tasks = yaml.safe_load(
        (ROOT / "roles" / "dns_authoritative" / "tasks" / "main.yml").read_text(encoding="utf-8")
    )
    (task,) = [t for t in tasks if t.get("name") == TASK]
    task = {**task, "ignore_errors": True, "register": "checked"}
    report = tmp_path / "report.json"
    play = [
        {
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"dns_authoritative_zones": zones},
            "tasks": [
                task,
                {
                    "ansible.builtin.copy": {
                        "content": "{{ checked | to_json }}",
                        "dest": str(report),
                        "mode": "0644",
                    }
                },
            ],
        }
    ]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False), encoding="utf-8")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checked = json.loads(report.read_text(encoding="utf-8"))
    messages = " ".join(str(r.get("msg", "")) for r in checked["results"] if r.get("failed"))
    return bool(checked.get("failed")), messages


def test_good_zones_pass(tmp_path: Path) -> None:
    zones = {
        "lab.gov.example": [
            {"name": "lab.gov.example", "ttl": 30, "type": "A", "value": "10.0.0.1"},
            {"name": "hue-db.lab.gov.example", "ttl": 3600, "type": "A", "value": "10.0.0.2"},
        ],
        "hue.gov.vn": [{"name": "dichvucong.hue.gov.vn", "ttl": 300, "value": "192.0.2.1"}],
    }
    failed, messages = _check(zones, tmp_path)
    assert not failed, messages


def test_a_bad_zone_names_each_bad_record_and_no_good_one(tmp_path: Path) -> None:
    bad = [
        {"name": "portal.other.example", "ttl": 300, "value": "1"},  # outside the zone
        {"name": "xlab.gov.example", "ttl": 300, "value": "1"},  # a suffix, not a subdomain
        {"name": "zero.lab.gov.example", "ttl": 0, "value": "1"},
        {"name": "text.lab.gov.example", "ttl": "300", "value": "1"},
        {"ttl": 300, "value": "1"},
        {"name": "novalue.lab.gov.example", "ttl": 300},
    ]
    good = {"name": "fine.lab.gov.example", "ttl": 300, "value": "10.0.0.3"}
    failed, messages = _check({"lab.gov.example": [good, *bad]}, tmp_path)
    assert failed
    assert "dns_authoritative_zones.lab.gov.example" in messages
    for record in ("portal.other.example", "xlab.gov.example", "zero.lab", "text.lab", "novalue"):
        assert record in messages, (record, messages)
    assert "fine.lab.gov.example" not in messages
