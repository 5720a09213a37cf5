"""Settling, on resume, every step the previous engine left in flight — before anything else.

A step found `running` may have an action still working (an orphan of an engine killed with
SIGKILL), finished without its result recorded, or never started. The engine first deals with
the process (recorded with its pid and start time before it could act): while its group lives
it waits for it, bounded by the step's timeout, then ends it (SIGTERM, then SIGKILL). Only then
does it judge the step:

- a subprocess action with no process recorded never started: it runs;
- an action that changes nothing (noop, manual, promql) runs again;
- otherwise the step's verification decides done / not done;
- with nothing to verify (`verify: noop`), or a process on another machine, nobody can know:
  the step is `uncertain` (state and audit). An `idempotent: true` step runs again; any other
  waits for an operator's `govops cutover decide RUN STEP --province P --as NAME
  done|retry|skip`.

Rows left `rolling_back` get their process settled the same way; their rollback then runs
again (rollbacks are idempotent).
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

from govops.runbook.executors import EXECUTORS, Interrupted
from govops.runbook.executors.process import boot_id, end_group, group_alive
from govops.runbook.model import Step
from govops.runbook.recording import Event
from govops.runbook.rollback import RollingBack
from govops.runbook.state import StepRow
from govops.runbook.stepping import PROCESS_EXECUTORS


class Settling(RollingBack):
    def _settle(self) -> None:
        in_flight = [
            row
            for (province, step_id, item), row in self.rows.items()
            if province in self.infos
            and row.status in ("running", "rolling_back")
            and step_id in self.phase_of
            and not (item == "" and self.runbook.step(step_id).foreach == "commune")
        ]
        if not in_flight:
            return
        self.observe(Event("notice", message=f"settling {len(in_flight)} step(s) left in flight"))
        with ThreadPoolExecutor(
            max_workers=min(16, len(in_flight)), thread_name_prefix="settle"
        ) as pool:
            list(pool.map(self._settle_row, in_flight))

    def _settle_row(self, row: StepRow) -> None:
        step = self.runbook.step(row.step_id)
        seen = "no process recorded"
        if row.pid:
            if row.host and row.host != socket.gethostname():
                self._close_silence(row.province, step)
                self._uncertain(row, step, f"its process ran on {row.host}", ask=True)
                return
            if row.pstart.partition(":")[0] == boot_id() and group_alive(row.pid, row.pstart):
                deadline = (row.started_at or self.clock()) + step.timeout
                self.observe(
                    Event(
                        "notice",
                        row.province,
                        step.id,
                        message=f"waiting for process group {row.pid}, left running by the "
                        f"previous engine (until its timeout)",
                    )
                )
                while group_alive(row.pid, row.pstart) and self.clock() < deadline:
                    if self.abort.is_set():
                        return  # interrupted while settling: still in flight, settled later
                    time.sleep(0.1)
                if group_alive(row.pid, row.pstart):
                    end_group(row.pid, row.pstart)
                    seen = f"process group {row.pid} outlived the step's timeout: ended"
                else:
                    seen = f"process group {row.pid} finished after the previous engine"
            else:
                seen = f"process group {row.pid} had ended"
        # Its process is gone: the planned work's silence (of the step or of its rollback) goes
        # too; a step that runs again opens a new one.
        self._close_silence(row.province, step)
        if row.status == "rolling_back":
            return
        commune = next((c for c in self.infos[row.province].communes if c.code == row.item), None)
        if not row.pid and step.action.executor in PROCESS_EXECUTORS:
            self._reconciled(row, step, "not started", "the action never started: it runs")
        elif not EXECUTORS[step.action.executor].mutates:
            self._reconciled(row, step, "not done", f"{seen}; the action changes nothing: rerun")
        elif step.verify.executor != "noop":
            try:
                check = self._call(step.verify, "verify", row.province, step, row, commune)
            except Interrupted:
                return
            if check.ok:
                row.finished_at = self.clock()
                self._reconciled(row, step, "done", f"{seen}; verified done: {check.message}")
            else:
                self._reconciled(row, step, "not done", f"{seen}; verification: {check.message}")
        else:
            self._uncertain(row, step, f"{seen}; nothing verifies the action", ask=False)

    def _reconciled(self, row: StepRow, step: Step, result: str, detail: str) -> None:
        row.status = "done" if result == "done" else "pending"
        row.message = detail if result == "done" else f"settled ({result}): {detail}"
        row.pid, row.pstart, row.host = None, "", ""
        self._write_row(
            row,
            self._entry(
                "step.reconcile",
                row.province,
                step.id,
                row.item,
                attempt=row.attempt,
                result=result,
                detail=detail,
            ),
        )

    def _uncertain(self, row: StepRow, step: Step, why: str, *, ask: bool) -> None:
        """Nobody can tell whether the action took effect: say so, then retry an idempotent
        step or wait for an operator's decision."""
        retry = step.idempotent and not ask
        row.status = "pending" if retry else "uncertain"
        row.finished_at = None if retry else self.clock()
        row.message = f"uncertain: {why}" + ("; idempotent: run again" if retry else "")
        self._write_row(
            row,
            self._entry(
                "step.uncertain",
                row.province,
                step.id,
                row.item,
                attempt=row.attempt,
                result="retry (idempotent)" if retry else "waiting for a decision",
                detail=row.message,
            ),
        )
        self.observe(Event("notice", row.province, step.id, message=row.message))
