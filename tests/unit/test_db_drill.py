"""govops db drill: counts compared table by table, the metrics it writes, and the drill's
steps against a scripted host (no SSH)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from govops.db import counts as cn
from govops.db.drill import DrillResult, backup_for_point, lsn_value, metrics_text, run_drill
from govops.db.info import parse_info
from govops.db.plan import Hosts, time_plan
from govops.db.remote import RemoteError, Result, check, failure
from govops.db.restore import restore_in_place
from govops.errors import GovopsError
from tests.unit.test_db_info import INFO

HOSTS = Hosts("hue", "hue", "hue-db", "hue-db-standby", "backup-lab")
PRIMARY = ",@restore_point,0,0,0/7000100\nprocedures,public.dossiers,1200,-3770964883,\n" + (
    "documents,public.documents,500,-7122272404,\n"
)


def counts(text: str) -> cn.Counts:
    return cn.parse_counts(text)


def test_counts_are_read_with_the_restore_point() -> None:
    c = counts(PRIMARY)
    assert c.restore_point_lsn == "0/7000100"
    assert c.tables[("procedures", "public.dossiers")] == cn.TableCount(
        "procedures", "public.dossiers", 1200, "-3770964883"
    )
    with pytest.raises(cn.CountsError, match="unexpected row"):
        counts("procedures,public.dossiers,many,1,\n")


def test_a_mismatch_is_named_per_table() -> None:
    restored = counts(
        "procedures,public.dossiers,1199,-3770964883,\n"
        "documents,public.documents,500,123,\n"
        "documents,public.inbox,3,9,\n"
    )
    verdicts = {(v.database, v.table): v for v in cn.compare(counts(PRIMARY), restored)}
    assert verdicts[("procedures", "public.dossiers")].problem == (
        "rows differ: primary 1200, restored 1199"
    )
    assert verdicts[("documents", "public.documents")].problem == (
        "checksum differs (same row count)"
    )
    assert verdicts[("documents", "public.inbox")].problem == "only in the restored copy"
    missing = cn.compare(counts(PRIMARY), counts("documents,public.documents,500,-7122272404,\n"))
    assert [(v.table, v.problem) for v in missing if not v.ok] == [
        ("public.dossiers", "missing from the restored copy")
    ]
    same = cn.compare(counts(PRIMARY), counts(PRIMARY))
    assert all(v.ok for v in same) and len(same) == 2


def test_the_snapshot_script_locks_exports_and_makes_the_point_then_rolls_back() -> None:
    sql = cn.snapshot_sql(["procedures", "documents"], "govops-drill-x")
    assert sql.startswith("BEGIN;") and sql.rstrip().endswith("ROLLBACK;")
    assert "IN SHARE MODE" in sql and "pg_export_snapshot()" in sql
    assert "SET TRANSACTION SNAPSHOT" in sql
    # the point is made while every database's lock is held, before any lock is released
    assert sql.index("pg_create_restore_point") < sql.index("'COMMIT'")
    assert "ARRAY['procedures', 'documents']::text[], 'govops-drill-x'" in sql
    assert "@TABLES@" not in sql and "@LOCK_TIMEOUT@" not in sql
    assert "sum(hashtext(t::text)::bigint)" in cn.count_sql(["procedures"])
    # unlogged tables come back empty from any restore: never compared
    assert "c.relpersistence = ''p''" in sql and "c.relkind = ''r''" in sql  # quoted once


def test_metrics_carry_the_contract_names_and_the_province() -> None:
    result = DrillResult("hue", "20261203T140000Z", started=1796306400.0, finished=1796306442.5)
    result.verdicts = cn.compare(counts(PRIMARY), counts(PRIMARY))
    text = metrics_text(result)
    assert 'govops_restore_drill_last_run_timestamp_seconds{province="hue"} 1796306400\n' in text
    assert 'govops_restore_drill_success{province="hue"} 1\n' in text
    assert 'govops_restore_drill_duration_seconds{province="hue"} 42.5\n' in text
    result.error = "backup-lab: `pgbackrest …` exited 1"
    assert 'govops_restore_drill_success{province="hue"} 0\n' in metrics_text(result)


def test_the_backup_is_the_newest_one_ended_before_the_point() -> None:
    stanza = parse_info(INFO, "hue")
    assert lsn_value("1/0") == 1 << 32
    assert backup_for_point(stanza, "0/6000100").type == "incr"
    assert backup_for_point(stanza, "0/60000FF").type == "diff"
    with pytest.raises(GovopsError, match="no backup ended before the restore point"):
        backup_for_point(stanza, "0/1000000")


def test_errors_name_host_command_and_exit_code_without_the_script_or_secrets() -> None:
    result = Result(
        "backup-lab",
        "PGPASSWORD=hunter2 psql -d postgres <<'X'\nSELECT secret\nX\n",
        2,
        "",
        "FATAL: nope\n",
    )
    message = failure(result, "counts")
    assert message.startswith("counts: backup-lab: `PGPASSWORD=")
    assert "exited 2: FATAL: nope" in message
    assert "hunter2" not in message and "SELECT secret" not in message
    with pytest.raises(RemoteError):
        check(result)


class ScriptedHosts:
    """A Runner answering by (host, pattern); records every command."""

    def __init__(self, answers: list[tuple[str, str, Callable[[str], Result] | str]]) -> None:
        self.answers = answers
        self.commands: list[tuple[str, str]] = []

    def run(self, host: str, command: str, *, timeout: float | None = None) -> Result:
        self.commands.append((host, command))
        for h, pattern, answer in self.answers:
            if h == host and re.search(pattern, command):
                if callable(answer):
                    return answer(command)
                return Result(host, command, 0, answer, "")
        return Result(host, command, 0, "", "")


def drill_hosts(restored: str) -> ScriptedHosts:
    return ScriptedHosts(
        [
            ("hue-db", "pg_create_restore_point", PRIMARY),
            ("hue-db", "pg_switch_wal", "000000010000000000000007,0/8000000\n"),
            ("hue-db", "pg_stat_archiver", "000000010000000000000007,0,\n"),
            ("backup-lab", r"pgbackrest --stanza=hue --output=json info", INFO),
            ("backup-lab", "socket.socket", "54321\n"),
            ("backup-lab", "pg_is_in_recovery", "f\n"),
            ("backup-lab", "govops_count_db", restored),
        ]
    )


def test_a_drill_restores_the_point_compares_and_writes_its_metrics() -> None:
    hosts = drill_hosts(PRIMARY.split("\n", 1)[1])
    # the newest backup ended before the point (0/6000100 <= 0/7000100): the incr
    result = run_drill(hosts, HOSTS, ["procedures", "documents"], sleep=lambda s: None)
    assert result.ok, result.error
    assert result.backup is not None and result.backup.type == "incr"
    commands = [c for _, c in hosts.commands]
    restore = next(c for c in commands if " restore" in c and "pgbackrest" in c)
    assert "--type=name" in restore and f"--target={result.restore_point}" in restore
    assert "--pg1-path=/var/lib/govops-scratch/hue-drill" in restore
    assert "--set=20261203-135916F_20261203-135923I" in restore
    assert any("archive_mode = off" in c for c in commands)
    assert any("rm -rf /var/lib/govops-scratch/hue-drill" in c for c in commands)  # cleaned up
    metrics = [c for h, c in hosts.commands if h == "backup-lab" and "govops_drill_hue.prom" in c]
    assert metrics and 'govops_restore_drill_success{province="hue"} 1' in metrics[-1]
    assert "mv -f" in metrics[-1]  # atomically


def test_a_drill_with_a_difference_fails_and_says_where() -> None:
    hosts = drill_hosts(
        "procedures,public.dossiers,1100,5,\ndocuments,public.documents,500,-7122272404,\n"
    )
    result = run_drill(hosts, HOSTS, ["procedures", "documents"], sleep=lambda s: None)
    assert not result.ok
    assert result.problems == [
        "procedures.public.dossiers: rows differ: primary 1200, restored 1100"
    ]
    metrics = [c for h, c in hosts.commands if "govops_drill_hue.prom" in c][-1]
    assert 'govops_restore_drill_success{province="hue"} 0' in metrics


def test_a_failed_restore_still_cleans_up_and_reports_failure() -> None:
    hosts = drill_hosts("")
    hosts.answers.insert(
        0,
        (
            "backup-lab",
            r"pgbackrest .* restore$",
            lambda c: Result("backup-lab", c, 38, "", "ERROR: [038]: unable to restore"),
        ),
    )
    result = run_drill(hosts, HOSTS, ["procedures"], sleep=lambda s: None)
    assert not result.ok
    assert "pgBackRest restore: backup-lab:" in result.error and "exited 38" in result.error
    assert any("rm -rf /var/lib/govops-scratch/hue-drill" in c for _, c in hosts.commands)


def test_the_primary_is_the_db_role_primary_with_the_highest_epoch() -> None:
    from govops.db.remote import find_primary

    def role(text: str) -> str:
        return text + "\n"

    both = ScriptedHosts(
        [
            ("hue-db", "db-role", role('{"role": "primary", "epoch": 1}')),
            ("hue-db-standby", "db-role", role('{"role": "primary", "epoch": 2}')),
        ]
    )
    assert find_primary(both, "hue-db", "hue-db-standby") == "hue-db-standby"
    notes: list[str] = []
    lost = ScriptedHosts(
        [
            ("hue-db", "db-role", lambda c: (_ for _ in ()).throw(RemoteError("hue-db: down"))),
            ("hue-db-standby", "db-role", "not json\n"),
        ]
    )
    assert find_primary(lost, "hue-db", "hue-db-standby", notes.append) == "hue-db"
    assert notes and "declared primary hue-db" in notes[0]


def test_in_place_restore_resets_the_recovery_target_once_promoted() -> None:
    # A standby built from the restored primary copies its postgresql.auto.conf: with the
    # recovery target still there it would stop at it and promote itself (two primaries).
    stanza = parse_info(INFO, "hue")
    target = datetime(2026, 12, 3, 14, 30, tzinfo=UTC)
    plan = time_plan(HOSTS, stanza.backups[-1], target, "in-place", stanza.wal_max)
    hosts = ScriptedHosts([("hue-db", "pg_is_in_recovery", "f\n")])
    lines = restore_in_place(hosts, plan, lambda _: None, sleep=lambda _: None)
    commands = [c for h, c in hosts.commands if h == "hue-db"]
    promoted = next(i for i, c in enumerate(commands) if "pg_is_in_recovery" in c)
    resets = [c for c in commands[promoted + 1 :] if "ALTER SYSTEM RESET" in c]
    assert len(resets) == 1
    for name in ("recovery_target_time", "recovery_target_name", "recovery_target_action"):
        assert f"-c 'ALTER SYSTEM RESET {name}'" in resets[0]
    assert not any("ALTER SYSTEM" in c for c in commands[:promoted])
    assert "postgresql_standby_rebuild=true" in lines[-1]
