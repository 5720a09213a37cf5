"""Rolling a failed province back: the rollback actions of the steps it started, last first
(the failed step too: it may have half applied). Rollback actions must be idempotent: after a
crash mid-rollback they run again (once the interrupted one has been settled)."""

from __future__ import annotations

from dataclasses import replace

from govops.runbook.context import CommuneInfo
from govops.runbook.executors import Outcome
from govops.runbook.model import Step
from govops.runbook.recording import Event
from govops.runbook.state import Batch, StepRow
from govops.runbook.stepping import Stepping

# Steps that may have had an effect: an action was started.
STARTED = ("running", "retrying", "waiting", "done", "failed", "uncertain", "skipped")


class RollingBack(Stepping):
    def _rollback(self, province: str) -> None:
        self._set_province(province, "rolling_back", "province.rollback")
        self.observe(Event("rollback", province=province, status="running"))
        ok = True
        communes = self.infos[province].communes
        for _phase, step in reversed(list(self.runbook.steps())):
            row = self.rows.get((province, step.id, ""))
            if row is None or row.status not in (*STARTED, "rolling_back"):
                continue
            if step.rollback.executor == "noop":
                # Nothing to undo (a legal declaration, a read-only test): the step's effect
                # stands, so its status — and the readiness check it proves — stays.
                note = step.rollback.note or ""
                entry = self._entry(
                    "rollback.result", province, step.id, result="nothing to undo", detail=note
                )
                self.recorder.write(Batch(audit=[entry]))
                continue
            if step.foreach == "commune":
                step_ok = True
                for commune in reversed(communes):
                    item = self.rows.get((province, step.id, commune.code))
                    if item is not None and item.status in (*STARTED, "rolling_back"):
                        step_ok &= self._rollback_item(province, step, item, commune)
                ok &= step_ok
                row.status = "rolled_back" if step_ok else "rollback_failed"
                self.recorder.write(Batch(steps=[replace(row)]))
            else:
                ok &= self._rollback_item(province, step, row, None)
        status = "rolled_back" if ok else "rollback_failed"
        self._set_province(province, status, "province." + status)
        self.observe(Event("rollback", province=province, status=status))

    def _rollback_item(
        self, province: str, step: Step, row: StepRow, commune: CommuneInfo | None
    ) -> bool:
        item = commune.code if commune else ""
        row.status = "rolling_back"
        row.pid, row.pstart, row.host = None, "", ""
        self._write_row(
            row, self._entry("rollback.start", province, step.id, item, attempt=row.attempt)
        )
        # Undoing planned work is planned work too; it runs even if its silence cannot open.
        problem = self._open_silence(province, step, rollback=True) if commune is None else None
        if problem is not None:
            self.observe(Event("notice", province, step.id, message=problem))
        outcome = Outcome(False, "not run")
        try:
            for _ in range(step.retries + 1):
                outcome = self._call(step.rollback, "rollback", province, step, row, commune)
                if outcome.ok:
                    break
        finally:
            if commune is None:
                self._close_silence(province, step)
        row.status = "rolled_back" if outcome.ok else "rollback_failed"
        row.message = outcome.message or row.message
        self._write_row(
            row,
            self._entry(
                "rollback.result",
                province,
                step.id,
                item,
                attempt=row.attempt,
                result=row.status,
                detail=outcome.message,
            ),
        )
        if commune is None:
            self.observe(
                Event("rollback", province, step.id, status=row.status, message=outcome.message)
            )
        return outcome.ok
