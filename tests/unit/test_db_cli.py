"""`govops db` commands end to end against scripted hosts: the dry run (text and --json), the
target refused with exit 2, `--before-run` from a real state store, in-place confirmation, the
drill's exit code."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from govops.cli import main
from govops.db import cli as db_cli
from govops.runbook.state import AuditEntry, ProvinceRow, RunRecord, open_store
from tests.unit.test_db_drill import PRIMARY, ScriptedHosts, drill_hosts
from tests.unit.test_db_info import INCR_STOP, INFO


def hosts_answering(answers: ScriptedHosts, monkeypatch: pytest.MonkeyPatch) -> ScriptedHosts:
    answers.close = lambda: None  # type: ignore[attr-defined]
    monkeypatch.setattr(db_cli, "SshRunner", lambda env: answers)
    return answers


def repository() -> ScriptedHosts:
    return ScriptedHosts([("backup-lab", "pgbackrest --stanza=hue --output=json info", INFO)])


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["db", *args])
    return result.exit_code, result.stdout, result.stderr


def test_restore_dry_run_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = hosts_answering(repository(), monkeypatch)
    code, out, err = invoke(
        "restore", "--env", "lab", "--province", "hue", "--to", "2026-12-03T21:00:00",
        "--dry-run", "--json",
    )  # fmt: skip
    assert code == 0, err
    plan = json.loads(out)
    assert plan["backup"]["label"] == "20261203-135916F_20261203-135923I"
    assert plan["host"] == "backup-lab" and plan["into"] == "scratch"
    assert plan["target"]["value"] == "2026-12-03 14:00:00+00"  # naive: Vietnam's time
    assert plan["wal"] == {
        "from": "000000010000000000000006",
        "archived_max": "000000010000000000000006",
    }
    assert all("restore" not in c or "info" in c for _, c in hosts.commands)  # nothing restored


def test_restore_dry_run_text_in_place_names_the_primary_from_its_role_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hosts = repository()
    role = '{"role": "primary", "epoch": 2, "since": "2026-12-01T00:00:00+07:00"}\n'
    hosts.answers.append(("hue-db-standby", "db-role", role))
    hosts.answers.append(("hue-db", "db-role", '{"role": "standby", "epoch": 2}\n'))
    hosts_answering(hosts, monkeypatch)
    code, out, err = invoke(
        "restore", "--env", "lab", "--province", "hue", "--to", "2026-12-03T21:00:00+07:00",
        "--into", "in-place", "--dry-run",
    )  # fmt: skip
    assert code == 0, err
    assert "restores on: hue-db-standby into /var/lib/postgresql/15/main" in out
    assert "stops: PostgreSQL on hue-db-standby" in out


def test_a_target_the_repository_cannot_reach_is_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    hosts_answering(repository(), monkeypatch)
    code, _, err = invoke("restore", "--env", "lab", "--province", "hue", "--to", "2020-01-01")
    assert code == 2 and "a time the repository can reach" in err
    code, _, err = invoke("restore", "--env", "lab", "--province", "hue", "--to", "2999-01-01")
    assert code == 2 and "not in the future" in err
    code, _, err = invoke("restore", "--env", "lab", "--province", "atlantis", "--to", "2026-12-03")
    assert code == 2 and "--province" in err
    code, _, err = invoke("restore", "--env", "lab", "--province", "hue")
    assert code == 2 and "exactly one of them" in err


def test_in_place_needs_yes_or_a_confirmation(monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = hosts_answering(repository(), monkeypatch)
    code, _, err = invoke(
        "restore", "--env", "lab", "--province", "hue", "--to", "2026-12-03T21:00:00+07:00",
        "--into", "in-place",
    )  # fmt: skip
    assert code == 2 and "--yes" in err
    assert not any("systemctl stop" in c for _, c in hosts.commands)


def test_if_requested_with_nothing_asked_restores_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = hosts_answering(repository(), monkeypatch)
    code, out, _ = invoke(
        "restore", "--env", "lab", "--province", "hue", "--before-run", "", "--if-requested",
        "--into", "in-place", "--yes",
    )  # fmt: skip
    assert code == 0 and "no point-in-time recovery requested" in out
    assert hosts.commands == []


def test_before_run_reads_the_runs_start_from_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = INCR_STOP.timestamp() + 60
    url = str(tmp_path / "state.sqlite3")
    run = RunRecord(
        id="cutover-20261203-150000-ab12", runbook="cutover", runbook_path="runbooks/cutover.yml",
        runbook_text="", digest="", env="lab", provinces=["hue"], waves=[["hue"]], t0=started,
        created_at=started, created_by="test",
    )  # fmt: skip
    with open_store(url) as store:
        store.create_run(
            run,
            [ProvinceRow(run.id, "hue", 0)],
            AuditEntry(run.id, started, "test", "run.create"),
        )
    hosts_answering(repository(), monkeypatch)
    code, out, err = invoke(
        "restore", "--env", "lab", "--province", "hue", "--before-run", run.id, "--state", url,
        "--dry-run", "--json",
    )  # fmt: skip
    assert code == 0, err
    plan = json.loads(out)
    expected = datetime.fromtimestamp(started - 1, UTC)
    assert datetime.fromisoformat(plan["target"]["time"]) == expected
    assert plan["reasons"][0].startswith(f"run {run.id} (cutover, lab) started")
    code, _, err = invoke(
        "restore", "--env", "lab", "--province", "hue", "--before-run", "nope", "--state", url
    )
    assert code == 2 and "a run id of this store" in err
    code, _, err = invoke(
        "restore", "--env", "lab", "--province", "ha_noi", "--before-run", run.id, "--state", url
    )
    assert code == 2 and "a run that included ha_noi" in err
    code, _, err = invoke(
        "restore", "--env", "production", "--province", "hue", "--before-run", run.id,
        "--state", url,
    )  # fmt: skip
    assert code == 2 and "a run of environment production" in err


def test_drill_exit_codes_and_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("govops.db.drill.time.sleep", lambda s: None)
    hosts_answering(drill_hosts(PRIMARY.split("\n", 1)[1]), monkeypatch)
    code, out, err = invoke("drill", "--env", "lab", "--province", "hue", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"] and len(report["tables"]) == 2 and report["problems"] == []
    hosts_answering(drill_hosts("procedures,public.dossiers,1,1,\n"), monkeypatch)
    code, out, err = invoke("drill", "--env", "lab", "--province", "hue")
    assert code == 1
    assert "procedures.public.dossiers: rows differ: primary 1200, restored 1" in err
    assert "documents.public.documents: missing from the restored copy" in err


def test_status_drill_within(monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = repository()
    prom = 'govops_restore_drill_success{province="hue"} 1\n'
    stamp = 'govops_restore_drill_last_run_timestamp_seconds{province="hue"} '
    hosts.answers.append(("backup-lab", "govops_drill_hue.prom", ""))
    hosts_answering(hosts, monkeypatch)
    now = datetime.now(UTC).timestamp()

    def with_drill(at: float) -> None:
        hosts.answers[-1] = ("backup-lab", "govops_drill_hue.prom", f"{prom}{stamp}{at}\n")

    with_drill(now - 600)
    code, out, err = invoke("status", "--env", "lab", "--province", "hue", "--drill-within", "1h")
    assert code == 0, err
    assert "restore drill: passed" in out and "stanza hue: ok" in out
    with_drill(now - 7200)
    code, _, _ = invoke("status", "--env", "lab", "--province", "hue", "--drill-within", "1h")
    assert code == 1


def test_latest_replays_the_whole_archive_from_the_newest_backup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hosts_answering(repository(), monkeypatch)
    code, out, err = invoke(
        "restore", "--env", "lab", "--province", "hue", "--latest", "--dry-run", "--json"
    )
    assert code == 0, err
    plan = json.loads(out)
    assert plan["backup"]["label"] == "20261203-135916F_20261203-135923I"  # the newest
    assert plan["target"]["type"] == "default"
    restore = next(c for c in plan["commands"] if "restore" in c and "info" not in c)
    assert "--type=default" in restore and "--target" not in restore
    code, _, err = invoke("restore", "--env", "lab", "--province", "hue", "--latest", "--to", "x")
    assert code == 2 and "exactly one of them" in err
