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

from datetime import UTC, datetime, timedelta

from govops.registry import catalog, provinces
from govops.runbook.loader import load_snapshot
from govops.runbook.model import Runbook
from govops.runbook.store import (
    CommuneCoverage,
    ProvinceProgress,
    ReadinessProgress,
    RunProgress,
    RunRecord,
    StepProgress,
    Store,
)
from govops.runbook.timeutil import from_epoch

__all__ = [
    "CommuneCoverage",
    "ProvinceProgress",
    "ReadinessProgress",
    "RunProgress",
    "StepProgress",
    "run_progress",
]

TESTED = ("step.result", "step.reconcile", "step.verify")


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
