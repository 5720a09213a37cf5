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

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from govops.errors import GovopsError, InputError
from govops.redact import redact_dsn, redact_text
from govops.runbook.executors.base import Approval
from govops.runbook.progress import run_progress
from govops.runbook.sqlschema import (
    ADDED,
    APPROVAL_COLUMNS,
    AUDIT_COLUMNS,
    DECISION_COLUMNS,
    INSERT_APPROVAL,
    INSERT_AUDIT,
    INSERT_DECISION,
    INSERT_RUN,
    POSTGRES_SCHEMA,
    PROVINCE_COLUMNS,
    RUN_COLUMNS,
    SCHEMA_VERSION,
    SQLITE_SCHEMA,
    STEP_COLUMNS,
    UPSERT_PROVINCE,
    UPSERT_STEP,
    audit_values,
    province_values,
    run_from,
    run_values,
    step_values,
)
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
    lease_seconds,
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
                for other in map(run_from, cur.fetchall()):
                    shared = sorted(set(other.provinces) & set(run.provinces))
                    if shared and live(other):
                        raise RunBusy(
                            f"{', '.join(shared)} already in active run {other.id} "
                            f"(runbook {other.runbook}, operator "
                            f"{other.owner_actor or other.created_by}, engine {other.owner}): "
                            "wait for it, abort it, or choose other provinces with --provinces"
                        )
            cur.execute(self._sql(INSERT_RUN), run_values(run))
            cur.executemany(self._sql(UPSERT_PROVINCE), [province_values(p) for p in provinces])
            cur.execute(self._sql(INSERT_AUDIT), audit_values(audit))
        return run.fence

    def find_run(self, run_id: str) -> RunRecord | None:
        rows = self._all(f"SELECT {RUN_COLUMNS} FROM runbook_runs WHERE id = ?", (run_id,))
        return run_from(rows[0]) if rows else None

    def runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self._all(
            f"SELECT {RUN_COLUMNS} FROM runbook_runs ORDER BY created_at DESC LIMIT ?", (limit,)
        )
        return [run_from(r) for r in rows]

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
            cur.execute(self._sql(INSERT_AUDIT), audit_values(audit))

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
                cur.executemany(self._sql(UPSERT_STEP), [step_values(s) for s in batch.steps])
            if batch.provinces:
                cur.executemany(
                    self._sql(UPSERT_PROVINCE), [province_values(p) for p in batch.provinces]
                )
            if batch.audit:
                cur.executemany(self._sql(INSERT_AUDIT), [audit_values(a) for a in batch.audit])
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
            cur.execute(self._sql(INSERT_AUDIT), audit_values(audit))

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
            cur.execute(self._sql(INSERT_AUDIT), audit_values(audit))

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
            raise _sqlite_error(path, exc) from None

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
            raise _sqlite_error(self.path, exc) from None
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
        self._dsn = url  # kept in memory only: a session the server ended is opened again
        try:
            self.conn = self._connect()
            if read_only:
                self._check_schema()
                return
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

    def _connect(self) -> Any:
        # No transaction of ours waits on anything but the database, so one idle in a
        # transaction past the lease belongs to a stalled engine (a frozen process, a paused
        # VM) whose lock on the run's row would keep every other engine from taking it over:
        # the server ends that session and rolls its writes back.
        idle_ms = int(lease_seconds() * 1000)
        options = f"-c idle_in_transaction_session_timeout={idle_ms}"
        if self.read_only:
            options += " -c default_transaction_read_only=on"
        return self.psycopg.connect(self._dsn, autocommit=True, connect_timeout=10, options=options)

    def commit(self, batch: Batch, run_id: str, fence: int | None = None) -> None:
        try:
            super().commit(batch, run_id, fence)
        except StateError:
            if fence is None or not self.conn.broken:
                raise
            # The session ended mid-transaction: nothing of the batch landed. If another
            # engine claimed the run meanwhile, that is what this engine must hear: the fence
            # check alone, on a new session, raises LeaseLost then.
            super().commit(Batch(), run_id, fence)
            raise

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
                if self.conn.broken:
                    self.conn = self._connect()
                with self.conn.transaction(), self.conn.cursor() as cur:
                    yield cur
            except self.psycopg.Error as exc:
                raise StateError(f"state store {self.url}: {_first_line(exc)}") from None

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def _sqlite_error(path: Path, exc: BaseException) -> GovopsError:
    """Something that is not a SQLite database at the --state path is bad input (exit 2); a
    database that cannot be opened or is locked is an operational failure (exit 1)."""
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return InputError(path, "--state", "a govops state store (a SQLite database)", str(exc))
    return StateError(f"state store {path}: {exc}")


def _first_line(exc: BaseException) -> str:
    return redact_text((str(exc).strip().splitlines() or [type(exc).__name__])[0])
