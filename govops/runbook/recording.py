"""What the engine writes and how: the group-committing, fenced recorder, the rows it keeps in
memory, the audit entries, and the lease on the run.

Writes go through a group-committing recorder: threads that finish at the same moment share
one transaction (one fsync), so durability costs little per step when provinces run in
parallel. Every write carries the engine's fence (the number its claim of the run got); the
store refuses it in the same transaction once another engine has claimed the run, and from
then on this engine writes nothing (LeaseLost).
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from govops.runbook.context import Environment, ProvinceInfo
from govops.runbook.executors import RunSettings
from govops.runbook.model import Phase, Runbook, Step
from govops.runbook.scheduler import Halt, Wave
from govops.runbook.state import (
    AuditEntry,
    Batch,
    LeaseLost,
    ProvinceRow,
    RunRecord,
    StateError,
    StepRow,
    Store,
    lease_seconds,
)


def owner_id() -> str:
    """This engine, as the lease names it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


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


def engine_alive(run: RunRecord, now: float, stale_after: float | None = None) -> bool:
    """Whether the run's lease is held by a live engine: a fresh heartbeat, and, when the
    engine is on this machine, its process exists."""
    if not run.owner:
        return False
    host, _, pid = run.owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid)):
        return False
    return (run.heartbeat_at or 0) > now - (stale_after or lease_seconds())


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

    Every caller returns only once its batch is durable. Once a write failed, every later one
    fails at once (a lost lease: nothing more reaches the store)."""

    def __init__(self, store: Store, run_id: str, on_lost: Callable[[], None] = lambda: None):
        self.store, self.run_id, self.on_lost = store, run_id, on_lost
        self.fence: int | None = None
        self.cond = threading.Condition()
        self.pending: list[Batch] = []
        self.queued = 0  # tickets handed out
        self.durable = 0  # tickets committed
        self.writing = False
        self.failed: BaseException | None = None
        self.commits = 0

    def _raise_failed(self) -> None:
        if isinstance(self.failed, LeaseLost):
            raise LeaseLost(str(self.failed))
        raise StateError(f"state store failed: {self.failed}")

    def write(self, batch: Batch) -> None:
        with self.cond:
            if self.failed is not None:
                self._raise_failed()
            self.pending.append(batch)
            self.queued += 1
            ticket = self.queued
            while self.durable < ticket:
                if self.failed is not None:
                    self._raise_failed()
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
                    self.store.commit(merged, self.run_id, self.fence)
                except BaseException as exc:
                    self.failed = exc
                    if isinstance(exc, LeaseLost):
                        self.on_lost()
                    raise
                finally:
                    self.cond.acquire()
                    self.writing = False
                    self.cond.notify_all()
                self.durable = upto
                self.commits += 1


class EngineBase:
    """The state every part of the engine shares (set by RunEngine.__init__), and the
    helpers that turn what happens into rows and audit entries."""

    store: Store
    run: RunRecord
    runbook: Runbook
    environment: Environment
    settings: RunSettings
    actor: str
    observe: Observer
    no_wait: bool
    clock: Callable[[], float]
    owner: str
    recorder: Recorder
    abort: threading.Event
    interrupted: bool
    stop_by: float | None  # after an interrupt: when running actions must have ended
    lost_lease: bool
    halt: Halt | None
    blocked: set[str]
    lock: threading.Lock
    rows: dict[tuple[str, str, str], StepRow]
    prows: dict[str, ProvinceRow]
    waves: list[Wave]
    t0: datetime
    infos: dict[str, ProvinceInfo]
    phase_of: dict[str, Phase]
    contexts: dict[str, dict[str, object]]

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

    def _write_row(self, row: StepRow, *audit: AuditEntry) -> None:
        """The row as it now stands and its audit entries, durable in one write."""
        self.recorder.write(Batch(steps=[replace(row)], audit=list(audit)))

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
