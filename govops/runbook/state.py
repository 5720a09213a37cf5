"""Durable state of runs: the interface (store.py), its SQLite and PostgreSQL implementations
(sqlstore.py) and the progress views (progress.py), put together behind `open_store`.

SQLite (WAL, synchronous=FULL) is the default, a file under the cache; PostgreSQL when many
operators share a run (`--state postgresql://…`). What is stored: runs (with the runbook text
they were started with, and the lease: owner, heartbeat, fence), province and step rows
(status, attempts, the idempotency key and the action's process recorded before it acts),
approvals, decisions on uncertain steps, and the audit log — append-only: the interface has no
way to change or remove an entry, and the database refuses it (triggers).

For the monitoring engineer: `open_store(url, read_only=True)`, then `store.runs()` and
`store.progress(run_id)` (see progress.py) — step status per province, readiness checks done
N/total, communes tested, deadlines late or at risk.
"""

from __future__ import annotations

import os
from pathlib import Path

from govops.errors import InputError
from govops.paths import cache_dir
from govops.runbook.sqlstore import PostgresStore, SqliteStore
from govops.runbook.store import (
    DECISIONS,
    PROVINCE_FAILED,
    PROVINCE_FINAL,
    PROVINCE_STATUSES,
    RUN_ACTIVE,
    RUN_FINAL,
    RUN_STATUSES,
    STEP_STATUSES,
    AuditEntry,
    Batch,
    CommuneCoverage,
    Control,
    Decision,
    LeaseLost,
    ProvinceProgress,
    ProvinceRow,
    ReadinessProgress,
    RunBusy,
    RunProgress,
    RunRecord,
    StateError,
    StepProgress,
    StepRow,
    Store,
    StoreMissing,
    dumps,
    lease_seconds,
)

__all__ = [
    "DECISIONS",
    "PROVINCE_FAILED",
    "PROVINCE_FINAL",
    "PROVINCE_STATUSES",
    "RUN_ACTIVE",
    "RUN_FINAL",
    "RUN_STATUSES",
    "STEP_STATUSES",
    "AuditEntry",
    "Batch",
    "CommuneCoverage",
    "Control",
    "Decision",
    "LeaseLost",
    "ProvinceProgress",
    "ProvinceRow",
    "ReadinessProgress",
    "RunBusy",
    "RunProgress",
    "RunRecord",
    "StateError",
    "StepProgress",
    "StepRow",
    "Store",
    "StoreMissing",
    "default_url",
    "dumps",
    "lease_seconds",
    "open_store",
]


def default_url() -> str:
    return os.environ.get("GOVOPS_RUNBOOK_STATE") or str(cache_dir() / "runbook" / "state.sqlite3")


def open_store(url: str | None = None, *, read_only: bool = False) -> Store:
    """`postgresql://…` (or `postgres://…`) opens PostgreSQL; anything else is a SQLite file
    path (`sqlite:///abs/path` also accepted). Default: $GOVOPS_RUNBOOK_STATE, else
    ${GOVOPS_CACHE:-~/.cache/govops}/runbook/state.sqlite3.

    `read_only`: for readers (status, report, the exporter): nothing is created or written,
    and a missing store is an InputError naming it."""
    url = url or default_url()
    if "\x00" in url:
        raise InputError("(command line)", "--state", "a file path or a postgresql:// URL", url)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url, read_only=read_only)
    path = Path(url.removeprefix("sqlite://")) if url.startswith("sqlite://") else Path(url)
    return SqliteStore(path, read_only=read_only)
