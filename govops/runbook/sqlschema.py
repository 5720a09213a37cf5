"""The state store's tables, for SQLite and PostgreSQL: their DDL (with the columns added since
schema 1, added in place to an older store), the append-only triggers, the statements the
stores run, and rows turned into tuples and back. Redaction happens here, where rows become
values: no caller can store a password by forgetting to (govops/redact.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from govops.redact import redact, redact_text
from govops.runbook.store import AuditEntry, ProvinceRow, RunRecord, StepRow, dumps

SCHEMA_VERSION = 2

RUN_COLUMNS = (
    "id, runbook, runbook_path, runbook_text, digest, env, provinces, waves, t0, created_at, "
    "created_by, status, vars, settings, options, finished_at, owner, heartbeat_at, "
    "abort_requested_by, abort_requested_at, fence, owner_actor"
)
STEP_COLUMNS = (
    "run_id, province, step_id, item, phase, status, attempt, failures, idem_key, started_at, "
    "finished_at, message, pid, pstart, host"
)
PROVINCE_COLUMNS = "run_id, province, wave, status, failed_step, failed_phase, message, updated_at"
AUDIT_COLUMNS = (
    "run_id, at, actor, action, province, step_id, item, idem_key, attempt, result, detail"
)
APPROVAL_COLUMNS = "run_id, step_id, province, approver, at, note"
DECISION_COLUMNS = "run_id, province, step_id, item, attempt, decision, actor, at, note"
# Columns added since schema 1 (table, column, type): added in place to an older store.
ADDED = (
    ("runbook_runs", "fence", "INTEGER NOT NULL DEFAULT 0"),
    ("runbook_runs", "owner_actor", "TEXT"),
    ("runbook_steps", "pid", "INTEGER"),
    ("runbook_steps", "pstart", "TEXT NOT NULL DEFAULT ''"),
    ("runbook_steps", "host", "TEXT NOT NULL DEFAULT ''"),
)


def _tables(real: str, serial: str) -> list[str]:
    return [
        "CREATE TABLE IF NOT EXISTS runbook_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS runbook_runs (
            id TEXT PRIMARY KEY, runbook TEXT NOT NULL, runbook_path TEXT NOT NULL,
            runbook_text TEXT NOT NULL, digest TEXT NOT NULL, env TEXT NOT NULL,
            provinces TEXT NOT NULL, waves TEXT NOT NULL, t0 {real} NOT NULL,
            created_at {real} NOT NULL, created_by TEXT NOT NULL, status TEXT NOT NULL,
            vars TEXT NOT NULL, settings TEXT NOT NULL, options TEXT NOT NULL,
            finished_at {real}, owner TEXT, heartbeat_at {real},
            abort_requested_by TEXT, abort_requested_at {real},
            fence INTEGER NOT NULL DEFAULT 0, owner_actor TEXT)""",
        f"""CREATE TABLE IF NOT EXISTS runbook_provinces (
            run_id TEXT NOT NULL REFERENCES runbook_runs (id), province TEXT NOT NULL,
            wave INTEGER NOT NULL, status TEXT NOT NULL, failed_step TEXT NOT NULL,
            failed_phase TEXT NOT NULL, message TEXT NOT NULL, updated_at {real},
            PRIMARY KEY (run_id, province))""",
        f"""CREATE TABLE IF NOT EXISTS runbook_steps (
            run_id TEXT NOT NULL REFERENCES runbook_runs (id), province TEXT NOT NULL,
            step_id TEXT NOT NULL, item TEXT NOT NULL, phase TEXT NOT NULL,
            status TEXT NOT NULL, attempt INTEGER NOT NULL, failures INTEGER NOT NULL,
            idem_key TEXT NOT NULL, started_at {real}, finished_at {real},
            message TEXT NOT NULL, pid INTEGER, pstart TEXT NOT NULL DEFAULT '',
            host TEXT NOT NULL DEFAULT '', PRIMARY KEY (run_id, province, step_id, item))""",
        f"""CREATE TABLE IF NOT EXISTS runbook_approvals (
            seq {serial}, run_id TEXT NOT NULL REFERENCES runbook_runs (id),
            step_id TEXT NOT NULL, province TEXT NOT NULL, approver TEXT NOT NULL,
            at {real} NOT NULL, note TEXT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS runbook_decisions (
            seq {serial}, run_id TEXT NOT NULL REFERENCES runbook_runs (id),
            province TEXT NOT NULL, step_id TEXT NOT NULL, item TEXT NOT NULL,
            attempt INTEGER NOT NULL, decision TEXT NOT NULL, actor TEXT NOT NULL,
            at {real} NOT NULL, note TEXT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS runbook_audit (
            seq {serial}, run_id TEXT NOT NULL, at {real} NOT NULL, actor TEXT NOT NULL,
            action TEXT NOT NULL, province TEXT NOT NULL, step_id TEXT NOT NULL,
            item TEXT NOT NULL, idem_key TEXT NOT NULL, attempt INTEGER NOT NULL,
            result TEXT NOT NULL, detail TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS runbook_audit_run ON runbook_audit (run_id, seq)",
        "CREATE INDEX IF NOT EXISTS runbook_approvals_run ON runbook_approvals (run_id, step_id)",
    ]


APPEND_ONLY = ("runbook_audit", "runbook_approvals", "runbook_decisions")

SQLITE_SCHEMA = [
    *_tables("REAL", "INTEGER PRIMARY KEY AUTOINCREMENT"),
    *(
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"""
        for table in APPEND_ONLY
        for op in ("UPDATE", "DELETE")
    ),
]

POSTGRES_SCHEMA = [
    *_tables("DOUBLE PRECISION", "BIGSERIAL PRIMARY KEY"),
    *(
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}"
        for table, column, kind in ADDED
    ),
    """CREATE OR REPLACE FUNCTION runbook_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP;
       END $$""",
    *(
        stmt
        for table in APPEND_ONLY
        for stmt in (
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
            f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION runbook_append_only()""",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
            f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION runbook_append_only()""",
            # Privileges too, for roles other than the owner (operators' accounts).
            f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC",
        )
    ),
]


def run_values(run: RunRecord) -> tuple[Any, ...]:
    return (
        run.id,
        run.runbook,
        redact_text(run.runbook_path),
        run.runbook_text,  # verbatim: resume runs it (prometheus_url may hold no credentials)
        run.digest,
        run.env,
        dumps(run.provinces),
        dumps(run.waves),
        run.t0,
        run.created_at,
        redact_text(run.created_by),
        run.status,
        dumps(run.vars),
        dumps(redact(run.settings)),
        dumps(redact(run.options)),
        run.finished_at,
        run.owner,
        run.heartbeat_at,
        run.abort_requested_by,
        run.abort_requested_at,
        run.fence,
        run.owner_actor,
    )


def run_from(row: Sequence[Any]) -> RunRecord:
    (
        rid,
        runbook,
        path,
        text,
        digest,
        env,
        provs,
        waves,
        t0,
        created_at,
        created_by,
        status,
        vars_,
        settings,
        options,
        finished_at,
        owner,
        heartbeat_at,
        abort_by,
        abort_at,
        fence,
        owner_actor,
    ) = row
    return RunRecord(
        id=rid,
        runbook=runbook,
        runbook_path=path,
        runbook_text=text,
        digest=digest,
        env=env,
        provinces=json.loads(provs),
        waves=json.loads(waves),
        t0=t0,
        created_at=created_at,
        created_by=created_by,
        status=status,
        vars=json.loads(vars_),
        settings=json.loads(settings),
        options=json.loads(options),
        finished_at=finished_at,
        owner=owner,
        heartbeat_at=heartbeat_at,
        abort_requested_by=abort_by,
        abort_requested_at=abort_at,
        fence=fence,
        owner_actor=owner_actor,
    )


def step_values(s: StepRow) -> tuple[Any, ...]:
    return (
        s.run_id,
        s.province,
        s.step_id,
        s.item,
        s.phase,
        s.status,
        s.attempt,
        s.failures,
        s.idem_key,
        s.started_at,
        s.finished_at,
        redact_text(s.message),
        s.pid,
        s.pstart,
        s.host,
    )


def province_values(p: ProvinceRow) -> tuple[Any, ...]:
    return (
        p.run_id,
        p.province,
        p.wave,
        p.status,
        p.failed_step,
        p.failed_phase,
        redact_text(p.message),
        p.updated_at,
    )


def audit_values(a: AuditEntry) -> tuple[Any, ...]:
    return (
        a.run_id,
        a.at,
        a.actor,
        a.action,
        a.province,
        a.step_id,
        a.item,
        a.idem_key,
        a.attempt,
        redact_text(a.result),
        redact_text(a.detail),
    )


def _placeholders(columns: str) -> str:
    return ", ".join("?" for _ in columns.split(","))


def _upsert(table: str, columns: str, keys: str) -> str:
    keyset = {k.strip() for k in keys.split(",")}
    updates = ", ".join(
        f"{c} = excluded.{c}" for c in (c.strip() for c in columns.split(",")) if c not in keyset
    )
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({_placeholders(columns)}) "
        f"ON CONFLICT ({keys}) DO UPDATE SET {updates}"
    )


UPSERT_STEP = _upsert("runbook_steps", STEP_COLUMNS, "run_id, province, step_id, item")
UPSERT_PROVINCE = _upsert("runbook_provinces", PROVINCE_COLUMNS, "run_id, province")
INSERT_RUN = f"INSERT INTO runbook_runs ({RUN_COLUMNS}) VALUES ({_placeholders(RUN_COLUMNS)})"
INSERT_AUDIT = (
    f"INSERT INTO runbook_audit ({AUDIT_COLUMNS}) VALUES ({_placeholders(AUDIT_COLUMNS)})"
)
INSERT_DECISION = (
    f"INSERT INTO runbook_decisions ({DECISION_COLUMNS}) VALUES ({_placeholders(DECISION_COLUMNS)})"
)
INSERT_APPROVAL = (
    f"INSERT INTO runbook_approvals ({APPROVAL_COLUMNS}) VALUES ({_placeholders(APPROVAL_COLUMNS)})"
)
