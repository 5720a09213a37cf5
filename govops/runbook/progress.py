"""The read API of a run: what the report, `status` and the cutover-progress exporter show.

    from govops.runbook.state import open_store
    with open_store(url) as store:
        for run in store.runs():
            p = store.progress(run.id)
            p.readiness      # each check: done N of the run's provinces (+ the dispatch's figure)
            p.communes       # per province and foreach step: communes tested at least once, of M
            p.steps          # per province and step: status, deadline, late, at risk
            p.provinces      # per province: status, wave, steps done, failed step

Late: the deadline has passed and the step is not done. At risk: not late, not done, and the
time left before its deadline is less than the expected time of the work still ahead of it in
that province (its own and the undone steps before it) — the early warning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from govops.registry import catalog, provinces
from govops.runbook.executors.base import Approval
from govops.runbook.loader import load_snapshot
from govops.runbook.model import Runbook
from govops.runbook.state import RunRecord, Store
from govops.runbook.timeutil import from_epoch

TESTED = ("step.result", "step.reconcile", "step.verify")


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


def run_progress(store: Store, run_id: str, now: datetime | None = None) -> RunProgress:
    run = store.run(run_id)
    runbook = load_snapshot(run.runbook_text, run.runbook_path)
    now = now or datetime.now(UTC)
    t0 = from_epoch(run.t0) or now
    rows = {(s.province, s.step_id, s.item): s for s in store.steps(run.id)}
    prows = {p.province: p for p in store.provinces(run.id)}
    foreach = {s.id for _, s in runbook.steps() if s.foreach == "commune"}
    tested: dict[tuple[str, str], set[str]] = {}
    if foreach:
        for entry in store.audit(run.id):
            if (
                entry.item
                and entry.step_id in foreach
                and entry.action in TESTED
                and entry.result == "done"
            ):
                tested.setdefault((entry.province, entry.step_id), set()).add(entry.item)
    known = provinces()
    counts: dict[str, int] = dict(run.options.get("communes") or {})
    steps: list[StepProgress] = []
    communes: list[CommuneCoverage] = []
    for p in run.provinces:
        ahead = 0.0  # expected seconds of undone work up to and including this step
        for phase, step in runbook.steps():
            row = rows.get((p, step.id, ""))
            status = row.status if row else "pending"
            deadline = step.clears.time.deadline.resolve(t0)
            done = status == "done"
            if not done:
                ahead += step.expected
            late = not done and now > deadline
            finished = from_epoch(row.finished_at) if row else None
            steps.append(
                StepProgress(
                    province=p,
                    phase=phase.id,
                    step_id=step.id,
                    title=step.title,
                    status=status,
                    attempt=row.attempt if row else 0,
                    message=row.message if row else "",
                    readiness_check=step.readiness_check,
                    deadline=deadline,
                    expected_seconds=step.expected,
                    late=late,
                    at_risk=not done and not late and now + timedelta(seconds=ahead) > deadline,
                    done_late=done and finished is not None and finished > deadline,
                    owner=step.clears.people,
                    authority=step.clears.authority,
                    started_at=from_epoch(row.started_at) if row else None,
                    finished_at=finished,
                )
            )
            if step.foreach == "commune":
                total = counts.get(p, len(known[p].communes) if p in known else 0)
                communes.append(
                    CommuneCoverage(p, step.id, len(tested.get((p, step.id), set())), total)
                )
    readiness = _readiness(runbook, run, steps)
    done_by: dict[str, list[str]] = {}
    for r in readiness:
        for p in r.provinces_done:
            done_by.setdefault(p, []).append(r.check_id)
    province_list = [
        ProvinceProgress(
            province=p,
            name=known[p].name if p in known else p,
            wave=prows[p].wave if p in prows else -1,
            status=prows[p].status if p in prows else "pending",
            failed_step=prows[p].failed_step if p in prows else "",
            message=prows[p].message if p in prows else "",
            steps_done=sum(1 for s in steps if s.province == p and s.status == "done"),
            steps_total=len(runbook.step_ids),
            readiness_done=tuple(done_by.get(p, [])),
        )
        for p in run.provinces
    ]
    return RunProgress(
        run, runbook, now, province_list, steps, readiness, communes, store.approvals(run.id)
    )


def _readiness(
    runbook: Runbook, run: RunRecord, steps: list[StepProgress]
) -> list[ReadinessProgress]:
    """A check is done in a province when every step naming it is done there."""
    by_check: dict[str, dict[str, bool]] = {}
    for s in steps:
        if s.readiness_check:
            per = by_check.setdefault(s.readiness_check, {})
            per[s.province] = per.get(s.province, True) and s.status == "done"
    result = []
    for check_id, check in catalog().checks.items():
        per = by_check.get(check_id, {})
        done = tuple(p for p in run.provinces if per.get(p, False))
        result.append(
            ReadinessProgress(
                check_id=check_id,
                title=check.title,
                done=len(done),
                total=len(run.provinces),
                dispatch_done=check.dispatch_done,
                in_runbook=check_id in by_check,
                provinces_done=done,
            )
        )
    return result
