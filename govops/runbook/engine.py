"""The engine: one run, its provinces' steps, durable at every move.

The run goes phase by phase over its waves (scheduler.py); each province's steps run in order
(stepping.py); a failed province rolls back (rollback.py) while the others go on. Everything
is written through a fenced, group-committing recorder (recording.py).

On start the engine claims the run's lease (a fence number one higher than any before; a live
engine's lease is refused), then, on a resume, settles every step left in flight before
anything else (settling.py). An interrupt (Ctrl-C, SIGTERM) stops new work, gives running
actions a grace period, and leaves the run resumable; a lost lease stops the engine without
writing further.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime

from govops.runbook.context import Environment, province_vars
from govops.runbook.executors import RunSettings
from govops.runbook.model import Phase, Runbook, Step
from govops.runbook.recording import (
    Event,
    Observer,
    Recorder,
    _ignore,
    actor_name,
    engine_alive,
    owner_id,
    pid_alive,
)
from govops.runbook.scheduler import Wave, run_waves, waves_of
from govops.runbook.settling import Settling
from govops.runbook.state import (
    PROVINCE_FAILED,
    Batch,
    LeaseLost,
    RunBusy,
    RunRecord,
    StateError,
    Store,
    lease_seconds,
)
from govops.runbook.timeutil import from_epoch, iso

__all__ = [
    "Event",
    "Observer",
    "Recorder",
    "RunEngine",
    "_ignore",
    "actor_name",
    "engine_alive",
    "pid_alive",
]


def interrupt_grace() -> float:
    """Seconds running actions get after an interrupt: GOVOPS_INTERRUPT_GRACE (default 30)."""
    try:
        return max(0.0, float(os.environ.get("GOVOPS_INTERRUPT_GRACE") or 30))
    except ValueError:
        return 30.0


class RunEngine(Settling):
    def __init__(
        self,
        store: Store,
        run: RunRecord,
        runbook: Runbook,
        environment: Environment,
        settings: RunSettings,
        *,
        actor: str,
        observer: Observer = _ignore,
        no_wait: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.run, self.runbook = store, run, runbook
        self.environment, self.settings = environment, settings
        self.actor, self.observe, self.no_wait, self.clock = actor, observer, no_wait, clock
        self.owner = owner_id()
        self.recorder = Recorder(store, run.id, on_lost=self._lease_lost)
        self.abort = threading.Event()  # set on abort, lost lease or interrupt: stop starting
        self.interrupted = False  # Ctrl-C: stop like an abort, but the run stays resumable
        self.stop_by = None
        self.lost_lease = False
        self.halt = None
        self.blocked = set()  # provinces waiting for an approval or a decision this session
        self.lock = threading.Lock()  # guards the dicts below
        self.rows = {(s.province, s.step_id, s.item): s for s in store.steps(run.id)}
        self.prows = {p.province: p for p in store.provinces(run.id)}
        self.waves = waves_of(runbook.waves, run.waves)
        self.t0 = from_epoch(run.t0) or datetime.now().astimezone()
        self.phase_of = {s.id: ph for ph, s in runbook.steps()}
        self.infos = {p: environment.provinces[p] for p in run.provinces}
        self.contexts = {
            p: province_vars(environment, info, run.id, iso(self.t0), {**runbook.vars, **run.vars})
            for p, info in self.infos.items()
        }

    # -- lifecycle --------------------------------------------------------------------------------
    def execute(self, resumed: bool = False) -> str:
        """Run (or resume) to the end; return the run's final status ("lost" if another engine
        took the run over meanwhile)."""
        self._claim()
        stopping = threading.Event()
        self._stopping = stopping
        monitor = threading.Thread(target=self._monitor, name="heartbeat", daemon=True)
        monitor.start()
        try:
            return self._execute(resumed)
        except LeaseLost:
            self._lease_lost()
            return "lost"
        finally:
            stopping.set()
            monitor.join(timeout=5)
            if self.recorder.fence is not None:
                with contextlib.suppress(StateError):  # else the lease lapses by itself
                    self.store.release(self.run.id, self.owner, self.recorder.fence)

    def _execute(self, resumed: bool) -> str:
        action = "run.resume" if resumed else "run.start"
        self.recorder.write(
            Batch(audit=[self._entry(action, result=self.run.status)], run_status="running")
        )
        self._settle()  # steps left in flight by a previous engine, before anything else
        # A province that failed before a crash finishes its rollback first.
        for p, prow in list(self.prows.items()):
            if prow.status in ("failed", "rolling_back") and not self.abort.is_set():
                self._rollback(p)
        self.halt = run_waves(
            self.waves,
            self.runbook.phases,
            self._province_phase,
            eligible=self._eligible,
            failed_in=self._failed_in,
            stop=lambda: self.abort.is_set(),
            on_wave=lambda wave, phase: self.observe(
                Event("wave", message=f"{phase.id}: {wave.label} ({', '.join(wave.provinces)})")
            ),
        )
        if self.lost_lease:
            return "lost"
        if self.halt is not None:
            self._audit_now("run.halted", result="halted", detail=str(self.halt))
            self.observe(Event("halt", message=str(self.halt)))
        status = self._final_status()
        finished = self.clock() if status not in ("waiting", "running") else None
        detail = "interrupted: resume continues" if self.interrupted else ""
        self.recorder.write(
            Batch(
                audit=[self._entry("run.end", result=status, detail=detail)],
                run_status=status,
                run_finished_at=finished,
            )
        )
        self.run.status = status
        self.observe(Event("end", status=status))
        return status

    # -- the lease ------------------------------------------------------------------------------
    def _claim(self) -> None:
        now = self.clock()
        stale_before = now - max(lease_seconds(), 5 * self.settings.poll_interval)
        current = self.store.run(self.run.id)
        if current.owner and current.owner != self.owner and not engine_alive(current, now, 1e9):
            stale_before = now + 1  # its engine died on this machine: no need to wait
        fence = self.store.claim(self.run.id, self.owner, now, stale_before, self.actor)
        if fence is None:
            raise RunBusy(
                f"run {self.run.id} is being run by {current.owner_actor or 'an operator'} "
                f"(engine {current.owner}, heartbeat "
                f"{now - (current.heartbeat_at or now):.0f}s ago); wait, or abort it"
            )
        self.recorder.fence = fence

    def _monitor(self) -> None:
        """Heartbeat (keeps the lease) and hear an abort requested from another process."""
        while not self._stopping.wait(self.settings.poll_interval):
            fence = self.recorder.fence
            if fence is None or self.lost_lease:
                return
            try:
                control = self.store.heartbeat(self.run.id, self.owner, fence, self.clock())
            except StateError:
                continue  # the next beat retries; the recorder reports a lasting failure
            if control.abort_requested and not self.abort.is_set():
                self.abort.set()
                self.observe(Event("notice", message="abort requested: no new step starts"))
            if not control.owner:
                self._lease_lost()

    def _lease_lost(self) -> None:
        if not self.lost_lease:
            self.lost_lease = True
            self.abort.set()
            self.observe(
                Event("notice", message="lease lost to another engine: stopping, writing nothing")
            )

    def interrupt(self) -> None:
        """Stop starting steps; running actions get a grace period (a second interrupt: none);
        the run stays resumable."""
        now = time.monotonic()
        self.stop_by = now if self.interrupted else now + interrupt_grace()
        self.interrupted = True
        self.abort.set()

    def _final_status(self) -> str:
        statuses = [self.prows[p].status for p in self.run.provinces]
        if self.interrupted:
            return "running"
        if self.abort.is_set():
            return "aborted"
        if self.halt is not None:
            return "halted"
        if any(s in ("waiting", "running", "pending") for s in statuses):
            return "waiting" if any(s == "waiting" for s in statuses) else "halted"
        if all(s == "done" for s in statuses):
            return "completed"
        return "completed_with_failures"

    def _eligible(self, province: str) -> bool:
        status = self.prows[province].status
        return status in ("pending", "running", "waiting") and province not in self.blocked

    def _failed_in(self, wave: Wave, phase: Phase) -> int:
        return sum(
            1
            for p in wave.provinces
            if self.prows[p].status in PROVINCE_FAILED and self.prows[p].failed_phase == phase.id
        )

    # -- one province, one phase ----------------------------------------------------------------
    def _province_phase(self, province: str, phase: Phase, wave: Wave) -> str:
        prow = self.prows[province]
        if prow.status == "pending" or prow.status == "waiting":
            self._set_province(
                province,
                "running",
                "province.start" if prow.status == "pending" else "province.continue",
            )
            self.observe(Event("province", province=province, status="running"))
        outcome = "done"
        failed_step: Step | None = None
        for step in phase.steps:
            if self.abort.is_set():
                outcome = "aborted"
                break
            outcome = self._run_step(province, phase, step)
            if outcome != "done":
                failed_step = step
                break
        if outcome == "failed" and failed_step is not None:
            row = self._row(province, phase, failed_step, "")
            self._set_province(
                province,
                "failed",
                "province.failed",
                failed_step=failed_step.id,
                failed_phase=phase.id,
                message=row.message,
            )
            self.observe(
                Event(
                    "province",
                    province=province,
                    status="failed",
                    step=failed_step.id,
                    message=row.message,
                )
            )
            self._rollback(province)
        elif outcome == "waiting":
            self.blocked.add(province)
            self._set_province(province, "waiting", "province.waiting")
            self.observe(Event("province", province=province, status="waiting"))
        elif outcome == "aborted":
            # Interrupted or lease lost: the province stays running (resume goes on); it is
            # never recorded done while steps of it have not run.
            if not (self.interrupted or self.lost_lease):
                self._set_province(province, "aborted", "province.aborted")
        elif phase.id == self.runbook.phases[-1].id:
            self._set_province(province, "done", "province.done")
            self.observe(Event("province", province=province, status="done"))
        return outcome
