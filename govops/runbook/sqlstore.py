"""The two implementations of the state store: the same SQL, two drivers.

Both keep one connection behind a lock (the engine writes from several threads through a
group-committing recorder, so the lock is rarely contended). Statements are written with `?`
placeholders and translated for psycopg. The audit and approval tables are append-only: no
method here updates or deletes them, and triggers make the database refuse it anyway.

Every text a row holds (messages, audit details, notes, the run's settings and options) is
redacted here, at the write boundary (govops/redact.py): no caller can store a password by
forgetting to. Readers (`cutover status`/`report`, the exporter) open the store read-only: a
SQLite `mode=ro` URI, a PostgreSQL session with `default_transaction_read_only`; a store that
does not exist is an error naming it, never created.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from govops.errors import InputError
from govops.redact import redact, redact_dsn, redact_text
from govops.runbook.executors.base import Approval
from govops.runbook.progress import run_progress
from govops.runbook.store import (
    RUN_ACTIVE,
    AuditEntry,
    Batch,
    Control,
    Decision,
    LeaseLost,
    ProvinceRow,
    RunBusy,
    RunProgress,
    RunRecord,
    StateError,
    StepRow,
    Store,
    StoreMissing,
    dumps,
)

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


def _run_values(run: RunRecord) -> tuple[Any, ...]:
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


def _run_from(row: Sequence[Any]) -> RunRecord:
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


def _step_values(s: StepRow) -> tuple[Any, ...]:
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


def _province_values(p: ProvinceRow) -> tuple[Any, ...]:
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


def _audit_values(a: AuditEntry) -> tuple[Any, ...]:
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


class SqlStore(Store):
    """Everything but the driver."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    # Driver hooks ---------------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[Any]:  # yields a cursor-like object with execute/executemany
        raise NotImplementedError
        yield

    def _sql(self, statement: str) -> str:
        return statement

    def _rowcount(self, cursor: Any) -> int:
        return int(cursor.rowcount)

    # Helpers -----------------------------------------------------------------------------
    def _all(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._tx() as cur:
            cur.execute(self._sql(statement), tuple(params))
            return list(cur.fetchall())

    # Runs -----------------------------------------------------------------------------------
    def _serialize_creates(self, cur: Any) -> None:
        """Hook: make concurrent create_run transactions take turns (PostgreSQL)."""

    def create_run(
        self,
        run: RunRecord,
        provinces: Sequence[ProvinceRow],
        audit: AuditEntry,
        *,
        live: Callable[[RunRecord], bool] | None = None,
    ) -> int:
        if run.owner:
            run.fence, run.heartbeat_at = max(run.fence, 0) + 1, run.heartbeat_at or run.created_at
        with self._tx() as cur:
            if live is not None:
                self._serialize_creates(cur)
                cur.execute(
                    self._sql(
                        f"SELECT {RUN_COLUMNS} FROM runbook_runs WHERE status IN (?, ?) "
                        "AND owner IS NOT NULL"
                    ),
                    RUN_ACTIVE,
                )
                for other in map(_run_from, cur.fetchall()):
                    shared = sorted(set(other.provinces) & set(run.provinces))
                    if shared and live(other):
                        raise RunBusy(
                            f"{', '.join(shared)} already in active run {other.id} "
                            f"(runbook {other.runbook}, operator "
                            f"{other.owner_actor or other.created_by}, engine {other.owner}): "
                            "wait for it, abort it, or choose other provinces with --provinces"
                        )
            cur.execute(self._sql(INSERT_RUN), _run_values(run))
            cur.executemany(self._sql(UPSERT_PROVINCE), [_province_values(p) for p in provinces])
            cur.execute(self._sql(INSERT_AUDIT), _audit_values(audit))
        return run.fence

    def find_run(self, run_id: str) -> RunRecord | None:
        rows = self._all(f"SELECT {RUN_COLUMNS} FROM runbook_runs WHERE id = ?", (run_id,))
        return _run_from(rows[0]) if rows else None

    def runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self._all(
            f"SELECT {RUN_COLUMNS} FROM runbook_runs ORDER BY created_at DESC LIMIT ?", (limit,)
        )
        return [_run_from(r) for r in rows]

    def claim(
        self, run_id: str, owner: str, now: float, stale_before: float, actor: str = ""
    ) -> int | None:
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "UPDATE runbook_runs SET owner = ?, heartbeat_at = ?, owner_actor = ?, "
                    "fence = fence + 1 WHERE id = ? AND "
                    "(owner IS NULL OR owner = ? OR heartbeat_at IS NULL OR heartbeat_at < ?)"
                ),
                (owner, now, actor or None, run_id, owner, stale_before),
            )
            if self._rowcount(cur) != 1:
                return None
            cur.execute(self._sql("SELECT fence FROM runbook_runs WHERE id = ?"), (run_id,))
            row = cur.fetchone()
            return int(row[0])

    def heartbeat(self, run_id: str, owner: str, fence: int, now: float) -> Control:
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "UPDATE runbook_runs SET heartbeat_at = ? WHERE id = ? AND owner = ? "
                    "AND fence = ?"
                ),
                (now, run_id, owner, fence),
            )
            still = self._rowcount(cur) == 1
            cur.execute(
                self._sql("SELECT abort_requested_at FROM runbook_runs WHERE id = ?"), (run_id,)
            )
            row = cur.fetchone()
        return Control(owner=still, abort_requested=bool(row and row[0] is not None))

    def release(self, run_id: str, owner: str, fence: int) -> None:
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "UPDATE runbook_runs SET owner = NULL, owner_actor = NULL "
                    "WHERE id = ? AND owner = ? AND fence = ?"
                ),
                (run_id, owner, fence),
            )

    def request_abort(self, run_id: str, audit: AuditEntry) -> None:
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "UPDATE runbook_runs SET abort_requested_by = ?, abort_requested_at = ? "
                    "WHERE id = ? AND abort_requested_at IS NULL"
                ),
                (audit.actor, audit.at, run_id),
            )
            cur.execute(self._sql(INSERT_AUDIT), _audit_values(audit))

    # Rows -------------------------------------------------------------------------------------
    def commit(self, batch: Batch, run_id: str, fence: int | None = None) -> None:
        with self._tx() as cur:
            if fence is not None:
                # The fence check and the writes in one transaction: the UPDATE locks the
                # run's row (PostgreSQL) or the database (SQLite) until the commit, so a claim
                # cannot slip in between.
                cur.execute(
                    self._sql("UPDATE runbook_runs SET fence = fence WHERE id = ? AND fence = ?"),
                    (run_id, fence),
                )
                if self._rowcount(cur) != 1:
                    raise LeaseLost(
                        f"run {run_id}: write refused, another engine claimed the run "
                        f"(this engine's fence {fence} is stale)"
                    )
            if batch.steps:
                cur.executemany(self._sql(UPSERT_STEP), [_step_values(s) for s in batch.steps])
            if batch.provinces:
                cur.executemany(
                    self._sql(UPSERT_PROVINCE), [_province_values(p) for p in batch.provinces]
                )
            if batch.audit:
                cur.executemany(self._sql(INSERT_AUDIT), [_audit_values(a) for a in batch.audit])
            if batch.run_status is not None:
                cur.execute(
                    self._sql("UPDATE runbook_runs SET status = ?, finished_at = ? WHERE id = ?"),
                    (batch.run_status, batch.run_finished_at, run_id),
                )

    def steps(self, run_id: str) -> list[StepRow]:
        rows = self._all(f"SELECT {STEP_COLUMNS} FROM runbook_steps WHERE run_id = ?", (run_id,))
        return [StepRow(*r) for r in rows]

    def provinces(self, run_id: str) -> list[ProvinceRow]:
        rows = self._all(
            f"SELECT {PROVINCE_COLUMNS} FROM runbook_provinces WHERE run_id = ? "
            "ORDER BY wave, province",
            (run_id,),
        )
        return [ProvinceRow(*r) for r in rows]

    # Append-only --------------------------------------------------------------------------------
    def add_approval(self, approval: Approval, audit: AuditEntry) -> None:
        with self._tx() as cur:
            cur.execute(
                self._sql(INSERT_APPROVAL),
                (
                    approval.run_id,
                    approval.step_id,
                    approval.province,
                    approval.approver,
                    approval.at,
                    redact_text(approval.note),
                ),
            )
            cur.execute(self._sql(INSERT_AUDIT), _audit_values(audit))

    def approvals(self, run_id: str, step_id: str | None = None) -> list[Approval]:
        query = f"SELECT {APPROVAL_COLUMNS} FROM runbook_approvals WHERE run_id = ?"
        params: tuple[Any, ...] = (run_id,)
        if step_id is not None:
            query += " AND step_id = ?"
            params += (step_id,)
        return [Approval(*r) for r in self._all(query + " ORDER BY seq", params)]

    def add_decision(self, decision: Decision, audit: AuditEntry) -> None:
        with self._tx() as cur:
            cur.execute(
                self._sql(INSERT_DECISION),
                (
                    decision.run_id,
                    decision.province,
                    decision.step_id,
                    decision.item,
                    decision.attempt,
                    decision.decision,
                    decision.actor,
                    decision.at,
                    redact_text(decision.note),
                ),
            )
            cur.execute(self._sql(INSERT_AUDIT), _audit_values(audit))

    def decisions(self, run_id: str) -> list[Decision]:
        rows = self._all(
            f"SELECT {DECISION_COLUMNS} FROM runbook_decisions WHERE run_id = ? ORDER BY seq",
            (run_id,),
        )
        return [Decision(*r) for r in rows]

    def progress(self, run_id: str, now: datetime | None = None) -> RunProgress:
        return run_progress(self, run_id, now)

    def audit(self, run_id: str) -> list[AuditEntry]:
        rows = self._all(
            f"SELECT {AUDIT_COLUMNS}, seq FROM runbook_audit WHERE run_id = ? ORDER BY seq",
            (run_id,),
        )
        return [AuditEntry(*r) for r in rows]


class SqliteStore(SqlStore):
    """One file, WAL mode: readers (approve, status, the exporter) never block the engine, and
    synchronous=FULL makes every commit survive a crash of the machine, not only of us."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        super().__init__()
        self.path = path
        self.url = redact_text(str(path))
        self.read_only = read_only
        if read_only:
            self._open_read_only()
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=30
            )
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            with self._tx() as cur:
                for statement in SQLITE_SCHEMA:
                    cur.execute(statement)
                for table, column, kind in ADDED:  # a store made by an older govops
                    cur.execute(f"PRAGMA table_info({table})")
                    if column not in {r[1] for r in cur.fetchall()}:
                        cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                cur.execute(
                    "INSERT INTO runbook_meta (key, value) VALUES ('schema', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(SCHEMA_VERSION),),
                )
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"state store {path}: {exc}") from None

    def _open_read_only(self) -> None:
        """`mode=ro`: no file, schema or WAL switch is ever made; a missing store is an input
        error naming it (exit 2)."""
        if not self.path.is_file():
            raise StoreMissing(self.path, "--state", "an existing state store (no run made here)")
        try:
            uri = self.path.resolve().as_uri() + "?mode=ro"
            self.conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30
            )
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master")}
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"state store {self.path}: {exc}") from None
        if "runbook_runs" not in tables:
            self.conn.close()
            raise InputError(self.path, "--state", "a govops state store (it has no runs table)")

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self.lock:
            cur = self.conn.cursor()
            try:
                # Writers take the write lock now (no upgrade deadlocks); readers never do.
                cur.execute("BEGIN" if self.read_only else "BEGIN IMMEDIATE")
                yield cur
                cur.execute("COMMIT")
            except sqlite3.Error as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise StateError(f"state store {self.path}: {exc}") from None
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            finally:
                cur.close()

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class PostgresStore(SqlStore):
    """Shared by many operators: approvals and aborts from anywhere, one engine per run
    (the lease in runbook_runs.owner)."""

    def __init__(self, url: str, read_only: bool = False) -> None:
        super().__init__()
        import psycopg

        self.url = redact_dsn(url)
        self.psycopg = psycopg
        self.read_only = read_only
        try:
            if read_only:
                self.conn = psycopg.connect(
                    url,
                    autocommit=True,
                    connect_timeout=10,
                    options="-c default_transaction_read_only=on",
                )
                self._check_schema()
                return
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
            with self._tx() as cur:
                # One schema creator at a time across processes.
                cur.execute("SELECT pg_advisory_xact_lock(7243917)")
                cur.execute("SELECT to_regclass('runbook_meta')")
                row = cur.fetchone()
                exists = row is not None and row[0] is not None
                if exists:
                    cur.execute("SELECT value FROM runbook_meta WHERE key = 'schema'")
                    version = cur.fetchone()
                    exists = version is not None and int(version[0]) >= SCHEMA_VERSION
                if not exists:
                    for statement in POSTGRES_SCHEMA:
                        cur.execute(statement)
                    cur.execute(
                        "INSERT INTO runbook_meta (key, value) VALUES ('schema', %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (str(SCHEMA_VERSION),),
                    )
        except psycopg.Error as exc:
            if "does not exist" in str(exc):  # no such database: a missing store, not an outage
                raise StoreMissing(
                    self.url, "--state", "an existing state store", got=_first_line(exc)
                ) from None
            raise StateError(f"state store {self.url}: {_first_line(exc)}") from None

    def _check_schema(self) -> None:
        with self._tx() as cur:
            cur.execute("SELECT to_regclass('runbook_runs')")
            row = cur.fetchone()
        if row is None or row[0] is None:
            self.conn.close()
            raise InputError(self.url, "--state", "a govops state store (it has no runs table)")

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def _serialize_creates(self, cur: Any) -> None:
        # READ COMMITTED would let two creates both see no active run: take turns.
        cur.execute("SELECT pg_advisory_xact_lock(7243918)")

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self.lock:
            try:
                with self.conn.transaction(), self.conn.cursor() as cur:
                    yield cur
            except self.psycopg.Error as exc:
                raise StateError(f"state store {self.url}: {_first_line(exc)}") from None

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def _first_line(exc: BaseException) -> str:
    return redact_text((str(exc).strip().splitlines() or [type(exc).__name__])[0])
