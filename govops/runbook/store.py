"""The state store's interface: what a run's durable state is, and what any store does with it.

Nothing here knows an implementation: the SQLite and PostgreSQL stores (sqlstore.py) and the
progress views (progress.py) depend on this module, never the other way round; state.py puts
them together behind `open_store`.

SQLite (WAL, synchronous=FULL) is the default, a file under the cache; PostgreSQL when many
operators share a run (`--state postgresql://…`). What is stored: runs (with the runbook text
they were started with), province and step rows (status, attempts, the idempotency key
recorded before an action starts), approvals, and the audit log — append-only: the interface
has no way to change or remove an entry, and the database refuses it (triggers).

For the monitoring engineer: `open_store(url)`, then `store.runs()` and
`store.progress(run_id)` (see progress.py) — step status per province, readiness checks done
N/total, communes tested, deadlines late or at risk.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from govops.errors import GovopsError, InputError
from govops.runbook.executors.base import Approval
from govops.runbook.model import Runbook
from govops.runbook.timeutil import from_epoch


def lease_seconds() -> float:
    """How long a silent engine keeps its run: GOVOPS_RUNBOOK_LEASE seconds (default 15)."""
    try:
        return max(1.0, float(os.environ.get("GOVOPS_RUNBOOK_LEASE") or 15))
    except ValueError:
        return 15.0


# Every status the engine writes (for dashboards and the exporter's series).
RUN_STATUSES = ("running", "waiting", "completed", "completed_with_failures", "halted", "aborted")
PROVINCE_STATUSES = (
    "pending",
    "running",
    "waiting",
    "done",
    "failed",
    "rolling_back",
    "rolled_back",
    "rollback_failed",
    "aborted",
)
STEP_STATUSES = (
    "pending",
    "running",
    "retrying",
    "waiting",
    "done",
    "failed",
    "rolling_back",
    "rolled_back",
    "rollback_failed",
    "uncertain",  # in flight when its engine died, and nothing can tell whether it took effect
    "skipped",  # an operator decided an uncertain step is not to be run (`cutover decide`)
)
DECISIONS = ("done", "retry", "skip")
# A run is `running` while an engine works on it (or until a crashed one is resumed).
RUN_ACTIVE = ("running", "waiting")
RUN_FINAL = ("completed", "completed_with_failures", "halted", "aborted")
PROVINCE_FINAL = ("done", "failed", "rolled_back", "rollback_failed", "aborted")
PROVINCE_FAILED = ("failed", "rolling_back", "rolled_back", "rollback_failed")


class StateError(GovopsError):
    """The state store is unreachable or inconsistent."""


class StoreMissing(InputError):
    """A reader (status, report, the exporter) was pointed at a store that does not exist:
    it is never created by reading (exit 2)."""


class LeaseLost(StateError):
    """A write was refused: another engine claimed the run since (its fence is newer)."""

    exit_code = 4


class RunBusy(GovopsError):
    """Another engine holds the run, or an active run holds some of the provinces (exit 4)."""

    exit_code = 4


@dataclass
class RunRecord:
    id: str
    runbook: str  # the runbook's name
    runbook_path: str
    runbook_text: str  # the runbook as it was when the run started (resume uses this)
    digest: str
    env: str
    provinces: list[str]
    waves: list[list[str]]
    t0: float  # epoch seconds
    created_at: float
    created_by: str
    status: str = "running"
    vars: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # --set overrides
    options: dict[str, Any] = field(default_factory=dict)
    finished_at: float | None = None
    owner: str | None = None  # host:pid of the engine working on it
    heartbeat_at: float | None = None
    abort_requested_by: str | None = None
    abort_requested_at: float | None = None
    fence: int = 0  # incremented at each claim: writes carrying an older one are refused
    owner_actor: str | None = None  # the operator of the engine holding the lease


@dataclass
class StepRow:
    """One step in one province; `item` is a commune code for `foreach: commune` steps
    (their aggregate row has item "")."""

    run_id: str
    province: str
    step_id: str
    item: str
    phase: str
    status: str = "pending"
    attempt: int = 0  # actions started (interrupted ones included)
    failures: int = 0  # attempts that failed (retries are counted against these)
    idem_key: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    message: str = ""
    # The action's process, recorded before it may have an effect (see executors/process.py):
    # pid = process group id; pstart "<boot id>:<start ticks>" tells a reused pid apart.
    pid: int | None = None
    pstart: str = ""
    host: str = ""


@dataclass(frozen=True)
class Decision:
    """An operator's word on an uncertain step (`govops cutover decide`), for one attempt."""

    run_id: str
    province: str
    step_id: str
    item: str
    attempt: int
    decision: str  # done, retry, skip
    actor: str
    at: float
    note: str = ""


@dataclass
class ProvinceRow:
    run_id: str
    province: str
    wave: int
    status: str = "pending"
    failed_step: str = ""
    failed_phase: str = ""
    message: str = ""
    updated_at: float | None = None


@dataclass
class AuditEntry:
    """Who did what, when, with what result. Written once, never changed."""

    run_id: str
    at: float
    actor: str
    action: str
    province: str = ""
    step_id: str = ""
    item: str = ""
    idem_key: str = ""
    attempt: int = 0
    result: str = ""
    detail: str = ""
    seq: int | None = None


@dataclass
class Batch:
    """Changes committed together in one transaction."""

    steps: list[StepRow] = field(default_factory=list)
    provinces: list[ProvinceRow] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    run_status: str | None = None
    run_finished_at: float | None = None

    def merge(self, other: Batch) -> None:
        self.steps += other.steps
        self.provinces += other.provinces
        self.audit += other.audit
        if other.run_status is not None:
            self.run_status = other.run_status
            self.run_finished_at = other.run_finished_at

    def empty(self) -> bool:
        return not (self.steps or self.provinces or self.audit or self.run_status)


@dataclass(frozen=True)
class Control:
    """What the engine learns at each heartbeat."""

    owner: bool  # still the owner of the run
    abort_requested: bool


# -- the read API's views (computed by progress.py) --------------------------------------------
@dataclass(frozen=True)
class StepProgress:
    province: str
    phase: str
    step_id: str
    title: str
    status: str
    attempt: int
    message: str
    readiness_check: str | None
    deadline: datetime
    expected_seconds: float
    late: bool
    at_risk: bool
    done_late: bool
    owner: str  # the clears' people
    authority: str
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class ProvinceProgress:
    province: str
    name: str
    wave: int
    status: str
    failed_step: str
    message: str
    steps_done: int
    steps_total: int
    readiness_done: tuple[str, ...]


@dataclass(frozen=True)
class ReadinessProgress:
    check_id: str
    title: str
    done: int
    total: int
    dispatch_done: int | None  # the national dispatch's count at 13:00 on 28 June 2025 (of 34)
    in_runbook: bool  # some step of the runbook proves it
    provinces_done: tuple[str, ...]


@dataclass(frozen=True)
class CommuneCoverage:
    province: str
    step_id: str
    tested: int  # communes where the step was done at least once
    total: int


@dataclass(frozen=True)
class RunProgress:
    run: RunRecord
    runbook: Runbook
    now: datetime
    provinces: list[ProvinceProgress]
    steps: list[StepProgress]
    readiness: list[ReadinessProgress]
    communes: list[CommuneCoverage]
    approvals: list[Approval] = field(default_factory=list)

    @property
    def late(self) -> list[StepProgress]:
        return [s for s in self.steps if s.late]

    @property
    def at_risk(self) -> list[StepProgress]:
        return [s for s in self.steps if s.at_risk]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO strings); the runbook text is left out."""

        def clean(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat(timespec="seconds")
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            return value

        run = asdict(self.run)
        run.pop("runbook_text")
        run["t0"] = from_epoch(self.run.t0)
        for key in ("created_at", "finished_at", "heartbeat_at", "abort_requested_at"):
            run[key] = from_epoch(run[key])
        result: dict[str, Any] = clean(
            {
                "run": run,
                "now": self.now,
                "readiness": [asdict(r) for r in self.readiness],
                "provinces": [asdict(p) for p in self.provinces],
                "communes": [asdict(c) for c in self.communes],
                "steps": [asdict(s) for s in self.steps],
                "late": [f"{s.province}/{s.step_id}" for s in self.late],
                "at_risk": [f"{s.province}/{s.step_id}" for s in self.at_risk],
                "approvals": [asdict(a) | {"at": from_epoch(a.at)} for a in self.approvals],
            }
        )
        return result


class Store(ABC):
    url: str

    # -- runs --------------------------------------------------------------------------------
    @abstractmethod
    def create_run(
        self,
        run: RunRecord,
        provinces: Sequence[ProvinceRow],
        audit: AuditEntry,
        *,
        live: Callable[[RunRecord], bool] | None = None,
    ) -> int:
        """Create the run, its provinces and the first audit entry atomically, and claim it for
        `run.owner` (return the fence). With `live`: in the same transaction, refuse
        (RunBusy) if an active run whose engine is `live` holds one of the provinces."""

    @abstractmethod
    def find_run(self, run_id: str) -> RunRecord | None: ...

    @abstractmethod
    def runs(self, limit: int = 50) -> list[RunRecord]:
        """Most recent first."""

    @abstractmethod
    def claim(
        self, run_id: str, owner: str, now: float, stale_before: float, actor: str = ""
    ) -> int | None:
        """Become the engine of the run unless a live one (heartbeat after `stale_before`) is;
        return the new fence (one more than any before), None if refused."""

    @abstractmethod
    def heartbeat(self, run_id: str, owner: str, fence: int, now: float) -> Control: ...

    @abstractmethod
    def release(self, run_id: str, owner: str, fence: int) -> None: ...

    @abstractmethod
    def request_abort(self, run_id: str, audit: AuditEntry) -> None: ...

    # -- rows ----------------------------------------------------------------------------------
    @abstractmethod
    def commit(self, batch: Batch, run_id: str, fence: int | None = None) -> None:
        """Write the batch in one transaction: it is all durable when this returns. With a
        fence: refused (LeaseLost, nothing written) unless it is still the run's fence."""

    @abstractmethod
    def steps(self, run_id: str) -> list[StepRow]: ...

    @abstractmethod
    def provinces(self, run_id: str) -> list[ProvinceRow]: ...

    # -- approvals and audit (append-only) ------------------------------------------------------
    @abstractmethod
    def add_approval(self, approval: Approval, audit: AuditEntry) -> None: ...

    @abstractmethod
    def approvals(self, run_id: str, step_id: str | None = None) -> list[Approval]: ...

    @abstractmethod
    def add_decision(self, decision: Decision, audit: AuditEntry) -> None: ...

    @abstractmethod
    def decisions(self, run_id: str) -> list[Decision]: ...

    @abstractmethod
    def audit(self, run_id: str) -> list[AuditEntry]: ...

    @abstractmethod
    def close(self) -> None: ...

    # -- shared ---------------------------------------------------------------------------------
    def run(self, run_id: str) -> RunRecord:
        run = self.find_run(run_id)
        if run is None:
            recent = ", ".join(r.id for r in self.runs(5)) or "none yet"
            raise InputError(self.url, "RUN", f"a run id of this store (recent: {recent})", run_id)
        return run

    @abstractmethod
    def progress(self, run_id: str, now: datetime | None = None) -> RunProgress:
        """The read API (computed by progress.py): what a dashboard or exporter needs."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
