"""The engine: one run, its provinces' steps, durable at every move.

For each step of a province: preconditions, then the action and its verification, with
retries; the idempotency key and the start are committed before the action runs, the result
right after. A failed province rolls back (the rollback actions of the steps it started, in
reverse); the others go on. A step found `running` when a run is resumed after a crash is
verified first: if the verification shows it done, its action is not run again.

Writes go through a group-committing recorder: threads that finish at the same moment share
one transaction (one fsync), so durability costs little per step when provinces run in
parallel.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from govops.errors import GovopsError
from govops.runbook.context import CommuneInfo, Environment, ProvinceInfo, province_vars
from govops.runbook.executors import (
    EXECUTORS,
    ExecContext,
    ExecutorError,
    Interrupted,
    Outcome,
    RunSettings,
    WaitingForApproval,
    executor,
)
from govops.runbook.executors.promql import PromqlArgs, sample
from govops.runbook.model import Action, Phase, Runbook, Step
from govops.runbook.scheduler import Halt, Wave, run_waves, waves_of
from govops.runbook.state import (
    PROVINCE_FAILED,
    AuditEntry,
    Batch,
    ProvinceRow,
    RunRecord,
    StateError,
    StepRow,
    Store,
)
from govops.runbook.templating import TemplateError, render_value
from govops.runbook.timeutil import from_epoch, iso

# Steps that may have had an effect: an action was started.
STARTED = ("running", "retrying", "waiting", "done", "failed")


def actor_name(given: str | None = None) -> str:
    """Who: the name given with --as, else the OS user."""
    if given:
        return given
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Event:
    """What the engine tells its observer (the CLI's progress display)."""

    kind: str  # wave, province, step, rollback, notice, halt, end
    province: str = ""
    step: str = ""
    item: str = ""
    status: str = ""
    message: str = ""
    seconds: float = 0.0


class Observer(Protocol):
    def __call__(self, event: Event) -> None: ...


def _ignore(event: Event) -> None:
    return None


class Recorder:
    """Group commit: the first writer commits everything queued meanwhile, the others wait.

    Every caller returns only once its batch is durable."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.cond = threading.Condition()
        self.pending: list[Batch] = []
        self.queued = 0  # tickets handed out
        self.durable = 0  # tickets committed
        self.writing = False
        self.failed: BaseException | None = None
        self.commits = 0

    def write(self, batch: Batch) -> None:
        with self.cond:
            self.pending.append(batch)
            self.queued += 1
            ticket = self.queued
            while self.durable < ticket:
                if self.failed is not None:
                    raise StateError(f"state store failed: {self.failed}")
                if self.writing:
                    self.cond.wait()
                    continue
                self.writing = True
                take, self.pending, upto = self.pending, [], self.queued
                merged = Batch()
                for b in take:
                    merged.merge(b)
                self.cond.release()
                try:
                    self.store.commit(merged, self.run_id)
                except BaseException as exc:
                    self.failed = exc
                    raise
                finally:
                    self.cond.acquire()
                    self.writing = False
                    self.cond.notify_all()
                self.durable = upto
                self.commits += 1


class RunEngine:
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
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.recorder = Recorder(store, run.id)
        self.abort = threading.Event()  # set on abort, lost lease or interrupt: stop starting
        self.interrupted = False  # Ctrl-C: stop like an abort, but the run stays resumable
        self.lost_lease = False
        self.halt: Halt | None = None
        self.blocked: set[str] = set()  # provinces waiting for an approval this session
        self.lock = threading.Lock()  # guards the dicts below
        self.rows: dict[tuple[str, str, str], StepRow] = {
            (s.province, s.step_id, s.item): s for s in store.steps(run.id)
        }
        self.prows: dict[str, ProvinceRow] = {p.province: p for p in store.provinces(run.id)}
        self.waves = waves_of(runbook.waves, run.waves)
        self.t0 = from_epoch(run.t0) or datetime.now().astimezone()
        self.phase_of = {s.id: ph for ph, s in runbook.steps()}
        self.infos: dict[str, ProvinceInfo] = {p: environment.provinces[p] for p in run.provinces}
        self.contexts = {
            p: province_vars(environment, info, run.id, iso(self.t0), {**runbook.vars, **run.vars})
            for p, info in self.infos.items()
        }

    # -- lifecycle --------------------------------------------------------------------------------
    def execute(self, resumed: bool = False) -> str:
        """Run (or resume) to the end; return the run's final status."""
        self._claim()
        monitor = threading.Thread(target=self._monitor, name="heartbeat", daemon=True)
        stopping = threading.Event()
        self._stopping = stopping
        monitor.start()
        try:
            self.recorder.write(
                Batch(
                    audit=[
                        self._entry(
                            "run.resume" if resumed else "run.start", result=self.run.status
                        )
                    ],
                    run_status="running",
                )
            )
            # A province that failed before a crash finishes its rollback first.
            for p, prow in list(self.prows.items()):
                if prow.status in ("failed", "rolling_back"):
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
            if self.halt is not None:
                self._audit_now("run.halted", result="halted", detail=str(self.halt))
                self.observe(Event("halt", message=str(self.halt)))
            status = self._final_status()
            finished = self.clock() if status not in ("waiting", "running") else None
            self.recorder.write(
                Batch(
                    audit=[self._entry("run.end", result=status)],
                    run_status=status,
                    run_finished_at=finished,
                )
            )
            self.run.status = status
            self.observe(Event("end", status=status))
            return status
        finally:
            stopping.set()
            monitor.join(timeout=5)
            self.store.release(self.run.id, self.owner)

    def _claim(self) -> None:
        now = self.clock()
        stale_before = now - max(15.0, 5 * self.settings.poll_interval)
        current = self.store.run(self.run.id)
        if current.owner and current.owner != self.owner:
            host, _, pid = current.owner.rpartition(":")
            if host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid)):
                stale_before = now + 1  # its engine died on this machine: no need to wait
        if not self.store.claim(self.run.id, self.owner, now, stale_before):
            raise GovopsError(
                f"run {self.run.id} is being run by {current.owner} (heartbeat "
                f"{now - (current.heartbeat_at or now):.0f}s ago); wait, or abort it"
            )

    def _monitor(self) -> None:
        """Heartbeat (keeps the lease) and hear an abort requested from another process."""
        while not self._stopping.wait(self.settings.poll_interval):
            try:
                control = self.store.heartbeat(self.run.id, self.owner, self.clock())
            except StateError:
                continue  # the next beat retries; the recorder reports a lasting failure
            if control.abort_requested and not self.abort.is_set():
                self.abort.set()
                self.observe(Event("notice", message="abort requested: no new step starts"))
            if not control.owner and not self.lost_lease:
                self.lost_lease = True
                self.abort.set()
                self.observe(Event("notice", message="lease lost to another engine: stopping"))

    def interrupt(self) -> None:
        """Stop starting steps and end the session; the run stays resumable."""
        self.interrupted = True
        self.abort.set()

    def _final_status(self) -> str:
        statuses = [self.prows[p].status for p in self.run.provinces]
        if self.interrupted or self.lost_lease:
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
        elif outcome == "aborted" and not (self.interrupted or self.lost_lease):
            self._set_province(province, "aborted", "province.aborted")
        elif phase.id == self.runbook.phases[-1].id:
            self._set_province(province, "done", "province.done")
            self.observe(Event("province", province=province, status="done"))
        return outcome

    def _run_step(self, province: str, phase: Phase, step: Step) -> str:
        row = self._row(province, phase, step, "")
        if row.status == "done":
            return "done"
        problem = self._preconditions(province, step)
        if problem is not None:
            row.status, row.message, row.finished_at = "failed", problem, self.clock()
            self.recorder.write(
                Batch(
                    steps=[replace(row)],
                    audit=[
                        self._entry(
                            "step.precondition", province, step.id, result="failed", detail=problem
                        )
                    ],
                )
            )
            self.observe(Event("step", province, step.id, status="failed", message=problem))
            return "failed"
        if step.foreach == "commune":
            return self._run_foreach(province, phase, step, row)
        return self._run_item(province, phase, step, row, None)

    def _run_foreach(self, province: str, phase: Phase, step: Step, row: StepRow) -> str:
        communes = self.infos[province].communes
        if row.status != "running":
            row.status, row.started_at, row.attempt = "running", self.clock(), row.attempt + 1
            row.idem_key = self._key(province, step.id, "")
            self.recorder.write(
                Batch(
                    steps=[replace(row)],
                    audit=[
                        self._entry(
                            "step.start",
                            province,
                            step.id,
                            attempt=row.attempt,
                            detail=f"{len(communes)} communes",
                        )
                    ],
                )
            )
        started = time.monotonic()
        items = [(c, self._row(province, phase, step, c.code)) for c in communes]
        todo = [(c, r) for c, r in items if r.status != "done"]
        if todo:
            with ThreadPoolExecutor(
                max_workers=min(step.concurrency, len(todo)), thread_name_prefix=province
            ) as pool:
                results = list(
                    pool.map(lambda cr: self._run_item(province, phase, step, cr[1], cr[0]), todo)
                )
        else:
            results = []
        done = sum(1 for _, r in items if r.status == "done")
        total = len(communes)
        if "waiting" in results:
            row.status, row.message = "waiting", f"{done}/{total} communes; waiting for approval"
        elif done == total:
            row.status, row.message = "done", f"{done}/{total} communes"
        elif self.abort.is_set() and "failed" not in results:
            row.status, row.message = "running", f"{done}/{total} communes; aborted"
        else:
            missing = [c.code for c, r in items if r.status != "done"]
            shown = ", ".join(missing[:10]) + ("…" if len(missing) > 10 else "")
            row.status, row.message = "failed", f"{done}/{total} communes; not done: {shown}"
        row.finished_at = self.clock() if row.status in ("done", "failed") else None
        self.recorder.write(
            Batch(
                steps=[replace(row)],
                audit=[
                    self._entry(
                        "step.result",
                        province,
                        step.id,
                        attempt=row.attempt,
                        result=row.status,
                        detail=row.message,
                    )
                ],
            )
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
            """The row as it now stands and its audit entry, durable in one write."""
            entry = self._entry(
                "step.result", province, step.id, item, attempt=row.attempt,
                result=result, detail=detail,
            )  # fmt: skip
            self.recorder.write(Batch(steps=[replace(row)], audit=[entry]))

        while True:
            if row.attempt > 0 and row.status != "done" and step.verify.executor != "noop":
                # An earlier attempt may have done the work (a crash, a timeout, a failed
                # check): never run an action again whose verification shows it done.
                try:
                    check = self._call(step.verify, "verify", province, step, row, commune)
                except Interrupted:
                    return "aborted"
                interrupted = row.status in ("running", "waiting")
                if check.ok:
                    row.status, row.finished_at = "done", self.clock()
                    row.message = f"verified done: {check.message}".strip()
                    self.recorder.write(
                        Batch(
                            steps=[replace(row)],
                            audit=[
                                *pending_audit,
                                self._entry(
                                    "step.reconcile" if interrupted else "step.verify",
                                    province,
                                    step.id,
                                    item,
                                    attempt=row.attempt,
                                    result="done",
                                    detail="verified done; action not run again: " + check.message,
                                ),
                            ],
                        )
                    )
                    self._observe_end(province, step, row, commune, started)
                    return "done"
                if interrupted:
                    pending_audit.append(
                        self._entry(
                            "step.reconcile",
                            province,
                            step.id,
                            item,
                            attempt=row.attempt,
                            result="not done",
                            detail="interrupted; verification: " + check.message,
                        )
                    )
            if self.abort.is_set():
                if pending_audit:
                    self.recorder.write(Batch(audit=pending_audit))
                return "aborted"
            row.attempt += 1
            row.status, row.started_at, row.finished_at = "running", self.clock(), None
            row.idem_key = self._key(province, step.id, item)
            # Durable before the action starts: a crash from here on is reconciled on resume.
            self.recorder.write(
                Batch(
                    steps=[replace(row)],
                    audit=[
                        *pending_audit,
                        self._entry("step.start", province, step.id, item, attempt=row.attempt),
                    ],
                )
            )
            pending_audit = []
            try:
                outcome = self._call(step.action, "action", province, step, row, commune)
                if outcome.ok:
                    check = self._call(step.verify, "verify", province, step, row, commune)
                    if not check.ok:
                        outcome = Outcome(False, f"verification failed: {check.message}")
            except Interrupted:
                # Neither passed nor failed: left running, reconciled on resume.
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
                                detail="stopped by an abort or an interrupt",
                            )
                        ]
                    )
                )
                return "aborted"
            except WaitingForApproval as waiting:
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

    # -- rollback ----------------------------------------------------------------------------------
    def _rollback(self, province: str) -> None:
        """Undo what the province started, last first (the failed step too: it may have half
        applied). Rollback actions must be idempotent: after a crash mid-rollback they run
        again."""
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
                self.recorder.write(
                    Batch(
                        audit=[
                            self._entry(
                                "rollback.result",
                                province,
                                step.id,
                                result="nothing to undo",
                                detail=step.rollback.note or "",
                            )
                        ]
                    )
                )
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
        self.recorder.write(
            Batch(
                steps=[replace(row)],
                audit=[self._entry("rollback.start", province, step.id, item, attempt=row.attempt)],
            )
        )
        outcome = Outcome(False, "not run")
        for _ in range(step.retries + 1):
            outcome = self._call(step.rollback, "rollback", province, step, row, commune)
            if outcome.ok:
                break
        row.status = "rolled_back" if outcome.ok else "rollback_failed"
        row.message = outcome.message or row.message
        self.recorder.write(
            Batch(
                steps=[replace(row)],
                audit=[
                    self._entry(
                        "rollback.result",
                        province,
                        step.id,
                        item,
                        attempt=row.attempt,
                        result=row.status,
                        detail=outcome.message,
                    )
                ],
            )
        )
        if commune is None:
            self.observe(
                Event("rollback", province, step.id, status=row.status, message=outcome.message)
            )
        return outcome.ok

    # -- rows and audit ---------------------------------------------------------------------------
    def _row(self, province: str, phase: Phase, step: Step, item: str) -> StepRow:
        key = (province, step.id, item)
        with self.lock:
            row = self.rows.get(key)
            if row is None:
                row = StepRow(self.run.id, province, step.id, item, phase.id)
                self.rows[key] = row
            return row

    def _key(self, province: str, step_id: str, item: str) -> str:
        """The idempotency key: the same for every attempt of this step in this province."""
        return f"{self.run.id}/{province}/{step_id}" + (f"/{item}" if item else "")

    def _set_province(self, province: str, status: str, action: str, **fields: str) -> None:
        prow = self.prows[province]
        prow.status, prow.updated_at = status, self.clock()
        for name, value in fields.items():
            setattr(prow, name, value)
        self.recorder.write(
            Batch(
                provinces=[replace(prow)],
                audit=[
                    self._entry(
                        action,
                        province,
                        fields.get("failed_step", ""),
                        result=status,
                        detail=fields.get("message", ""),
                    )
                ],
            )
        )

    def _entry(
        self,
        action: str,
        province: str = "",
        step_id: str = "",
        item: str = "",
        *,
        attempt: int = 0,
        result: str = "",
        detail: str = "",
    ) -> AuditEntry:
        idem = self._key(province, step_id, item) if province and step_id else ""
        return AuditEntry(
            run_id=self.run.id,
            at=self.clock(),
            actor=self.actor,
            action=action,
            province=province,
            step_id=step_id,
            item=item,
            idem_key=idem,
            attempt=attempt,
            result=result,
            detail=detail[:2000],
        )

    def _audit_now(self, action: str, *, result: str = "", detail: str = "") -> None:
        self.recorder.write(Batch(audit=[self._entry(action, result=result, detail=detail)]))
