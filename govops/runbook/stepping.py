"""Running a province's step: preconditions, then the action and its verification, with
retries; per commune for `foreach: commune` steps.

The idempotency key and the start are committed before the action runs; a subprocess action's
pid and start time before it may act (executors/process.py); the result right after. A step
that a crash left `uncertain` runs only as an operator decided (`govops cutover decide`).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from govops.runbook.context import CommuneInfo
from govops.runbook.executors import (
    EXECUTORS,
    ExecContext,
    ExecutorError,
    Interrupted,
    Outcome,
    WaitingForApproval,
    executor,
)
from govops.runbook.executors.process import Spawned
from govops.runbook.executors.promql import PromqlArgs, sample
from govops.runbook.model import Action, Phase, Step
from govops.runbook.recording import Event
from govops.runbook.silences import Silencing
from govops.runbook.state import AuditEntry, Batch, Decision, StateError, StepRow
from govops.runbook.templating import TemplateError, render_value

DONE = ("done", "skipped")  # a step the province goes on from
# Executors whose actions run through executors/process.run_logged (the gate): with no pid
# recorded, their action never started.
PROCESS_EXECUTORS = ("local", "ansible")


class Stepping(Silencing):
    def _run_step(self, province: str, phase: Phase, step: Step) -> str:
        row = self._row(province, phase, step, "")
        if row.status in DONE:
            return "done"
        problem = self._preconditions(province, step)
        if problem is not None:
            row.status, row.message, row.finished_at = "failed", problem, self.clock()
            self._write_row(
                row,
                self._entry(
                    "step.precondition", province, step.id, result="failed", detail=problem
                ),
            )
            self.observe(Event("step", province, step.id, status="failed", message=problem))
            return "failed"
        # Planned work: its silence is open before the action may act, expired once it ends
        # (done, failed, waiting or stopped); one that cannot open fails the step (silences.py).
        problem = self._open_silence(province, step)
        if problem is not None:
            row.status, row.message, row.finished_at = "failed", problem, self.clock()
            self._write_row(
                row,
                self._entry(
                    "step.precondition", province, step.id, result="failed", detail=problem
                ),
            )
            self.observe(Event("step", province, step.id, status="failed", message=problem))
            return "failed"
        try:
            if step.foreach == "commune":
                return self._run_foreach(province, phase, step, row)
            return self._run_item(province, phase, step, row, None)
        finally:
            self._close_silence(province, step)

    def _run_foreach(self, province: str, phase: Phase, step: Step, row: StepRow) -> str:
        communes = self.infos[province].communes
        if row.status != "running":
            row.status, row.started_at, row.attempt = "running", self.clock(), row.attempt + 1
            row.idem_key = self._key(province, step.id, "")
            detail = f"{len(communes)} communes"
            self._write_row(
                row,
                self._entry("step.start", province, step.id, attempt=row.attempt, detail=detail),
            )
        started = time.monotonic()
        items = [(c, self._row(province, phase, step, c.code)) for c in communes]
        todo = [(c, r) for c, r in items if r.status not in DONE]
        results: list[str] = []
        if todo:
            with ThreadPoolExecutor(
                max_workers=min(step.concurrency, len(todo)), thread_name_prefix=province
            ) as pool:
                results = list(
                    pool.map(lambda cr: self._run_item(province, phase, step, cr[1], cr[0]), todo)
                )
        done = sum(1 for _, r in items if r.status in DONE)
        total = len(communes)
        if "waiting" in results:
            row.status = "waiting"
            row.message = f"{done}/{total} communes; waiting for an approval or a decision"
        elif done == total:
            row.status, row.message = "done", f"{done}/{total} communes"
        elif self.abort.is_set() and "failed" not in results:
            row.status, row.message = "running", f"{done}/{total} communes; aborted"
        else:
            missing = [c.code for c, r in items if r.status not in DONE]
            shown = ", ".join(missing[:10]) + ("…" if len(missing) > 10 else "")
            row.status, row.message = "failed", f"{done}/{total} communes; not done: {shown}"
        row.finished_at = self.clock() if row.status in ("done", "failed") else None
        self._write_row(
            row,
            self._entry(
                "step.result",
                province,
                step.id,
                attempt=row.attempt,
                result=row.status,
                detail=row.message,
            ),
        )
        self.observe(
            Event(
                "step",
                province,
                step.id,
                status=row.status,
                message=row.message,
                seconds=time.monotonic() - started,
            )
        )
        if row.status == "running":
            return "aborted"
        return row.status

    def _decision(self, row: StepRow) -> Decision | None:
        """The operator's latest word on this attempt of an uncertain step, if any."""
        found = None
        for d in self.store.decisions(self.run.id):
            if (d.province, d.step_id, d.item, d.attempt) == (
                row.province,
                row.step_id,
                row.item,
                row.attempt,
            ):
                found = d
        return found

    def _decided(self, province: str, step: Step, row: StepRow) -> str | None:
        """Apply a decision on an uncertain row: "done", "retry", or None (still waiting)."""
        decision = self._decision(row)
        if decision is None:
            row.message = (
                f"uncertain: decide with `govops cutover decide {self.run.id} {step.id} "
                f"--province {province} --as NAME done|retry|skip`"
            )
            self.observe(Event("notice", province, step.id, message=row.message))
            return None
        status = {"done": "done", "skip": "skipped", "retry": "pending"}[decision.decision]
        row.status, row.message = status, f"{decision.decision} (decided by {decision.actor})"
        row.finished_at = self.clock() if status in DONE else None
        self._write_row(
            row,
            self._entry(
                "step.decided",
                province,
                step.id,
                row.item,
                attempt=row.attempt,
                result=decision.decision,
                detail=f"by {decision.actor}" + (f": {decision.note}" if decision.note else ""),
            ),
        )
        return "retry" if decision.decision == "retry" else "done"

    def _run_item(
        self, province: str, phase: Phase, step: Step, row: StepRow, commune: CommuneInfo | None
    ) -> str:
        """One action (per province, or per commune) to done, failed or waiting."""
        item = commune.code if commune else ""
        pending_audit: list[AuditEntry] = []
        if commune is None:
            self.observe(Event("step", province, step.id, status="running"))
        started = time.monotonic()

        def record(result: str, detail: str) -> None:
            entry = self._entry(
                "step.result", province, step.id, item, attempt=row.attempt,
                result=result, detail=detail,
            )  # fmt: skip
            self._write_row(row, entry)

        if row.status == "uncertain":
            decided = self._decided(province, step, row)
            if decided is None:
                return "waiting"
            if decided == "done":
                self._observe_end(province, step, row, commune, started)
                return "done"
        while True:
            if (
                row.attempt > 0
                and row.status in ("retrying", "waiting")
                and step.verify.executor != "noop"
            ):
                # An earlier attempt may have done the work (a timeout, a failed check, an
                # approval given meanwhile): never run an action again whose verification
                # shows it done.
                try:
                    check = self._call(step.verify, "verify", province, step, row, commune)
                except Interrupted:
                    return "aborted"
                waited = row.status == "waiting"
                if check.ok:
                    row.status, row.finished_at = "done", self.clock()
                    row.message = f"verified done: {check.message}".strip()
                    self._write_row(
                        row,
                        *pending_audit,
                        self._entry(
                            "step.reconcile" if waited else "step.verify",
                            province,
                            step.id,
                            item,
                            attempt=row.attempt,
                            result="done",
                            detail="verified done; action not run again: " + check.message,
                        ),
                    )
                    self._observe_end(province, step, row, commune, started)
                    return "done"
            if self.abort.is_set():
                if pending_audit:
                    self.recorder.write(Batch(audit=pending_audit))
                return "aborted"
            row.attempt += 1
            row.status, row.started_at, row.finished_at = "running", self.clock(), None
            row.pid, row.pstart, row.host = None, "", ""
            row.idem_key = self._key(province, step.id, item)
            # Durable before the action may act: a crash from here on is settled on resume. A
            # program action's start is written with its process, while it waits at its gate
            # (one commit instead of two); any other action's, now.
            start = [
                *pending_audit,
                self._entry("step.start", province, step.id, item, attempt=row.attempt),
            ]
            pending_audit = []

            if step.action.executor not in PROCESS_EXECUTORS:
                self._flush(row, start)
            try:
                outcome = self._call(step.action, "action", province, step, row, commune, start)
                # No process started (a template error, say): the start goes now.
                self._flush(row, start)
                if outcome.ok:
                    check = self._call(step.verify, "verify", province, step, row, commune)
                    if not check.ok:
                        outcome = Outcome(False, f"verification failed: {check.message}")
            except Interrupted as stopped:
                # Neither passed nor failed: left running, settled on resume.
                self._flush(row, start)
                self.recorder.write(
                    Batch(
                        audit=[
                            self._entry(
                                "step.result",
                                province,
                                step.id,
                                item,
                                attempt=row.attempt,
                                result="interrupted",
                                detail=f"stopped by an abort or an interrupt: {stopped}",
                            )
                        ]
                    )
                )
                return "aborted"
            except WaitingForApproval as waiting:
                self._flush(row, start)
                row.status, row.message = "waiting", f"waiting for approval: {waiting}"
                record("waiting", row.message)
                self._observe_end(province, step, row, commune, started)
                return "waiting"
            if outcome.ok:
                row.status, row.finished_at, row.message = "done", self.clock(), outcome.message
                record("done", outcome.message)
                self._observe_end(province, step, row, commune, started)
                return "done"
            row.failures += 1
            last = row.failures > step.retries or self.abort.is_set()
            row.status = "failed" if last else "retrying"
            row.message, row.finished_at = outcome.message, self.clock()
            record("failed" if last else "failed; will retry", outcome.message)
            if last:
                self._observe_end(province, step, row, commune, started)
                return "failed"
            self.abort.wait(step.retry_delay)

    def _flush(self, row: StepRow, start: list[AuditEntry]) -> None:
        """Write a step's start now, if its action has not written it with its process."""
        if start:
            self._write_row(row, *start)
            start.clear()

    def _observe_end(
        self, province: str, step: Step, row: StepRow, commune: CommuneInfo | None, started: float
    ) -> None:
        if commune is None:
            self.observe(
                Event(
                    "step",
                    province,
                    step.id,
                    status=row.status,
                    message=row.message,
                    seconds=time.monotonic() - started,
                )
            )

    # -- calling executors ----------------------------------------------------------------------
    def _call(
        self,
        action: Action,
        role: str,
        province: str,
        step: Step,
        row: StepRow,
        commune: CommuneInfo | None,
        start: list[AuditEntry] | None = None,
        check_mode: bool = False,
    ) -> Outcome:
        spec = EXECUTORS[action.executor]
        context = self._context(province, step, row, commune)
        try:
            args = spec.Args.model_validate(render_value(action.args, context))
        except TemplateError as exc:
            return Outcome(False, f"{role}: {exc}")
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            return Outcome(False, f"{role}: with.{where}: {first['msg']} after templating")

        def on_spawn(spawned: Spawned) -> None:
            # The process that may change the world: known before it can (see process.py).
            row.pid, row.pstart, row.host = spawned.pid, spawned.pstart, spawned.host
            self.recorder.write(Batch(steps=[replace(row)], audit=list(start or [])))
            if start:
                start.clear()

        ctx = ExecContext(
            run_id=self.run.id,
            province=province,
            step_id=step.id,
            role=role,
            idempotency_key=row.idem_key
            or self._key(province, step.id, commune.code if commune else ""),
            attempt=max(row.attempt, 1),
            timeout=step.timeout,
            settings=self.settings,
            commune=commune.code if commune else None,
            check_mode=check_mode,
            no_wait=self.no_wait,
            abort=self.abort,
            approvals=lambda: [
                a
                for a in self.store.approvals(self.run.id, step.id)
                if a.province in ("", province)
            ],
            notify=lambda message: self.observe(
                Event("notice", province, step.id, message=message)
            ),
            on_spawn=on_spawn if role in ("action", "rollback") else (lambda spawned: None),
            grace=lambda: self.stop_by,
        )
        try:
            return executor(action.executor).run(args, ctx)
        except (WaitingForApproval, Interrupted, StateError):
            raise
        except ExecutorError as exc:
            return Outcome(False, str(exc))
        except Exception as exc:  # an executor's bug fails the step, not the whole run
            return Outcome(False, f"{action.executor} executor failed: {exc!r}")

    def _context(
        self, province: str, step: Step, row: StepRow, commune: CommuneInfo | None
    ) -> dict[str, Any]:
        context = dict(self.contexts[province])
        context["step"] = step.id
        context["attempt"] = max(row.attempt, 1)
        context["idempotency_key"] = row.idem_key or self._key(
            province, step.id, commune.code if commune else ""
        )
        if commune is not None:
            context["commune"] = commune.as_dict()
        return context

    def _preconditions(self, province: str, step: Step) -> str | None:
        for pre in step.preconditions:
            if pre.step is not None:
                other = self.rows.get((province, pre.step, ""))
                if other is None or other.status != "done":
                    return f"precondition: step {pre.step} is not done in {province}"
            elif pre.readiness is not None:
                proving = [
                    s.id for _, s in self.runbook.steps() if s.readiness_check == pre.readiness
                ]
                undone = [
                    s
                    for s in proving
                    if (r := self.rows.get((province, s, ""))) is None or r.status != "done"
                ]
                if undone:
                    return (
                        f"precondition: readiness check {pre.readiness} not proven in "
                        f"{province} (step {undone[0]} not done)"
                    )
            elif pre.promql is not None:
                problem = self._promql_precondition(province, step, pre.promql)
                if problem:
                    return problem
        return None

    def _promql_precondition(self, province: str, step: Step, query: str) -> str | None:
        if not self.settings.prometheus_url:
            return "precondition: no prometheus_url set for the PromQL precondition"
        try:
            text = str(render_value(query, self.contexts[province]))
        except TemplateError as exc:
            return f"precondition: {exc}"
        ctx = ExecContext(
            run_id=self.run.id,
            province=province,
            step_id=step.id,
            role="precondition",
            idempotency_key="",
            attempt=1,
            timeout=30.0,
            settings=self.settings,
            abort=self.abort,
        )
        try:
            result = sample(
                PromqlArgs.model_validate({"query": text}), self.settings.prometheus_url, ctx
            )
        except ExecutorError as exc:
            return f"precondition: {exc}"
        return None if result.ok else f"precondition: PromQL {text!r}: {result.detail}"
