"""The restore drill (`govops db drill`): the cutover's gate before the network transfer.

1. On the primary: counts and checksums of every table of the systems' databases at a new
   restore point `govops-drill-<id>` (counts.py: locks held for milliseconds), then
   pg_switch_wal() and a wait until that WAL segment is archived (pg_stat_archiver).
2. On the backup host: the newest backup that ended before the restore point, restored
   (`--type=name`) into a scratch cluster, started, counted the same way, stopped, deleted.
3. Compared table by table; the result written as node_exporter metrics on the backup host
   (govops_drill_<province>.prom, atomically) — the readiness check restore_drill_verified
   and the alert rules read them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from govops.db import counts as cn
from govops.db import scratch
from govops.db.info import Backup, Stanza, parse_info
from govops.db.plan import DB_USER, REPO_USER, SCRATCH_ROOT, Hosts, RestorePlan
from govops.db.remote import RemoteError, Runner, check, q
from govops.errors import GovopsError

TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
ARCHIVE_WAIT = 300.0  # seconds for the restore point's WAL to reach the repository
START_TIMEOUT = 3600.0  # recovery of the scratch cluster (a 5 GiB province: minutes)


@dataclass
class DrillResult:
    province: str
    drill_id: str
    started: float
    finished: float = 0.0
    restore_point: str = ""
    restore_point_lsn: str = ""
    backup: Backup | None = None
    verdicts: list[cn.TableVerdict] = field(default_factory=list)
    error: str = ""
    metrics_error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.verdicts) and all(v.ok for v in self.verdicts)

    @property
    def duration(self) -> float:
        return max(0.0, (self.finished or time.time()) - self.started)

    @property
    def problems(self) -> list[str]:
        found = [f"{v.database}.{v.table}: {v.problem}" for v in self.verdicts if not v.ok]
        if not self.error and not self.verdicts:
            found.append("no table counted on the primary (no system database found)")
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "province": self.province,
            "drill_id": self.drill_id,
            "ok": self.ok,
            "started": datetime.fromtimestamp(self.started, UTC).isoformat(),
            "duration_seconds": round(self.duration, 1),
            "restore_point": self.restore_point,
            "restore_point_lsn": self.restore_point_lsn,
            "backup": self.backup.as_dict() if self.backup else None,
            "tables": [v.as_dict() for v in self.verdicts],
            "problems": self.problems,
            "error": self.error,
            "metrics_error": self.metrics_error,
        }


def metrics_text(result: DrillResult) -> str:
    """The drill's node_exporter textfile (names from the contract)."""
    p = result.province
    rows = (
        (
            "govops_restore_drill_last_run_timestamp_seconds",
            "When the restore drill last ran (govops db drill).",
            f"{result.started:.0f}",
        ),
        (
            "govops_restore_drill_success",
            "1 if the restored copy matched the primary at the drill's restore point.",
            "1" if result.ok else "0",
        ),
        (
            "govops_restore_drill_duration_seconds",
            "How long the drill took: counts, WAL archived, restore, counts again.",
            f"{result.duration:.1f}",
        ),
    )
    return "".join(
        f'# HELP {name} {text}\n# TYPE {name} gauge\n{name}{{province="{p}"}} {value}\n'
        for name, text, value in rows
    )


def lsn_value(lsn: str) -> int:
    """`16/B374D848` → an integer, to compare LSNs."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def backup_for_point(stanza: Stanza, point_lsn: str) -> Backup:
    """The newest backup that ended before the restore point (a backup still running when
    the point was made cannot be recovered to it)."""
    at = lsn_value(point_lsn)
    usable = [b for b in stanza.backups if b.lsn_stop and lsn_value(b.lsn_stop) <= at]
    if not usable:
        raise GovopsError(
            f"stanza {stanza.name}: no backup ended before the restore point ({point_lsn}); "
            f"newest: {stanza.newest.label if stanza.newest else 'none'}"
        )
    return usable[-1]


def primary_psql(database: str = "postgres") -> str:
    return f"sudo -n -u {DB_USER} psql -X -q --csv -t -v ON_ERROR_STOP=1 -d {q(database)}"


def heredoc(command: str, text: str) -> str:
    marker = "GOVOPS_SQL_" + secrets.token_hex(4)
    return f"{command} <<'{marker}'\n{text}{marker}\n"


def info(runner: Runner, hosts: Hosts) -> Stanza:
    cmd = f"sudo -n -u {REPO_USER} pgbackrest --stanza={q(hosts.stanza)} --output=json info"
    result = check(runner.run(hosts.backup, cmd, timeout=120), "pgBackRest info")
    return parse_info(result.stdout, hosts.stanza, f"{hosts.backup}: {cmd}")


def wait_archived(
    runner: Runner, host: str, lsn: str, deadline: float, sleep: Callable[[float], None]
) -> str:
    """Switch WAL, then wait until the segment holding `lsn` is archived; its name."""
    sql = f"SELECT pg_walfile_name({cn._sql_literal(lsn)}), pg_switch_wal()"
    out = check(runner.run(host, f"{primary_psql()} -c {q(sql)}"), "WAL switch").stdout
    segment = out.strip().splitlines()[-1].split(",")[0]
    probe = (
        "SELECT coalesce(last_archived_wal, ''), failed_count, coalesce(last_failed_wal, '') "
        "FROM pg_stat_archiver"
    )
    while True:
        row = check(runner.run(host, f"{primary_psql()} -c {q(probe)}"), "archiver").stdout
        last, failed, last_failed = (row.strip().splitlines() or [",,"])[-1].split(",")[:3]
        if len(last) == 24 and last >= segment:
            return segment
        if time.time() > deadline:
            raise RemoteError(
                f"{host}: WAL segment {segment} not archived within {ARCHIVE_WAIT:.0f} s "
                f"(last archived {last or 'none'}, {failed} failures, last failed "
                f"{last_failed or 'none'}): is archiving to the repository working?"
            )
        sleep(2.0)


def run_drill(
    runner: Runner,
    hosts: Hosts,
    databases: list[str],
    progress: Callable[[str], None] = lambda m: None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> DrillResult:
    started = clock()
    drill_id = datetime.fromtimestamp(started, UTC).strftime("%Y%m%dT%H%M%SZ")
    result = DrillResult(hosts.province, drill_id, started)
    result.restore_point = f"govops-drill-{drill_id}"
    path = f"{SCRATCH_ROOT}/{hosts.province}-drill"
    restored = False
    try:
        progress(f"{hosts.primary}: counting {', '.join(databases)} at {result.restore_point}")
        sql = cn.snapshot_sql(databases, result.restore_point)
        out = check(runner.run(hosts.primary, heredoc(primary_psql(), sql), timeout=3600), "counts")
        primary = cn.parse_counts(out.stdout)
        result.restore_point_lsn = primary.restore_point_lsn
        progress(f"{hosts.primary}: {len(primary.tables)} tables counted; waiting for the WAL")
        segment = wait_archived(
            runner, hosts.primary, primary.restore_point_lsn, clock() + ARCHIVE_WAIT, sleep
        )
        progress(f"{hosts.primary}: {segment} archived")
        stanza = info(runner, hosts)
        result.backup = backup_for_point(stanza, primary.restore_point_lsn)
        plan = RestorePlan(
            hosts=hosts,
            backup=result.backup,
            into="scratch",
            target_type="name",
            target=result.restore_point,
            target_time=None,
            wal_max=stanza.wal_max,
            scratch_path=path,
        )
        progress(f"{hosts.backup}: restoring {result.backup.label} to {result.restore_point}")
        scratch.prepare(runner, hosts.backup, path, replace=True)
        restored = True
        check(
            runner.run(hosts.backup, q(*plan.restore_argv()), timeout=START_TIMEOUT),
            "pgBackRest restore",
        )
        port = scratch.free_port(runner, hosts.backup)
        scratch.configure(runner, hosts.backup, path, port)
        progress(f"{hosts.backup}: recovering the scratch cluster (port {port})")
        scratch.start(runner, hosts.backup, path, port, START_TIMEOUT, sleep=sleep)
        progress(f"{hosts.backup}: counting the restored copy")
        out = check(
            runner.run(hosts.backup, heredoc(scratch.psql(path, port), cn.count_sql(databases))),
            "counts of the restored copy",
        )
        result.verdicts = cn.compare(primary, cn.parse_counts(out.stdout))
    except GovopsError as exc:
        result.error = str(exc)
    finally:
        if restored:
            try:
                scratch.drop(runner, hosts.backup, path)
            except GovopsError as exc:
                result.error = result.error or str(exc)
        result.finished = clock()
    write_metrics(runner, hosts.backup, result)
    return result


def write_metrics(runner: Runner, host: str, result: DrillResult) -> None:
    """govops_drill_<province>.prom in node_exporter's textfile directory, atomically (a
    scrape never reads half a file: written beside it, then renamed)."""
    final = f"{TEXTFILE_DIR}/govops_drill_{result.province}.prom"
    tmp = f"{TEXTFILE_DIR}/.govops_drill_{result.province}.prom.tmp"
    script = (
        f"set -e; umask 022; mkdir -p {q(TEXTFILE_DIR)}; "
        f"printf %s {q(metrics_text(result))} > {q(tmp)}; mv -f {q(tmp)} {q(final)}"
    )
    try:
        check(runner.run(host, f"sudo -n bash -c {q(script)}"), "drill metrics")
    except GovopsError as exc:
        result.metrics_error = str(exc)
