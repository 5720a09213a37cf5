"""What every executor shares: its arguments model, the context of one call, its outcome.

An executor does one thing (run a playbook, call a URL, hold a PromQL condition, wait for an
approval) within the step's timeout and says whether it worked. It never writes state: the
engine records what happened, so every executor is equally durable and audited.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from govops.errors import GovopsError


class ExecutorError(GovopsError):
    """The action did not do what it should; the message says what was seen."""


class WaitingForApproval(Exception):
    """A manual step has no approval yet and the run was told not to wait (`--no-wait`)."""


class Interrupted(Exception):
    """A wait was cut short by an abort or an interrupt (or an action ended at the end of an
    interrupt's grace period): the step neither passed nor failed; it stays `running` and is
    settled on resume (verified, run again, or marked uncertain)."""


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Approval:
    run_id: str
    step_id: str
    province: str  # "" approves the step for every province of the run
    approver: str
    at: float
    note: str = ""


@dataclass(frozen=True)
class RunSettings:
    """The runbook's settings, rendered for one run's environment (paths made absolute)."""

    env: str
    root: Path
    log_dir: Path
    inventory: Path
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    ca_bundle: Path | None = None
    resolve: str = "dns"
    ssh_user: str = "root"
    ssh_key: Path | None = None
    known_hosts: Path | None = None
    poll_interval: float = 1.0
    addresses: Mapping[str, str] = field(default_factory=dict)  # host name → IP (inventory)


@dataclass
class ExecContext:
    """One call of an executor: who it is for, how long it may take, how to stop early."""

    run_id: str
    province: str
    step_id: str
    role: str  # action, verify, rollback, precondition
    idempotency_key: str
    attempt: int
    timeout: float
    settings: RunSettings
    commune: str | None = None
    check_mode: bool = False
    no_wait: bool = False
    abort: threading.Event = field(default_factory=threading.Event)
    approvals: Callable[[], list[Approval]] = lambda: []
    notify: Callable[[str], None] = lambda message: None
    started: float = field(default_factory=time.monotonic)
    # A subprocess action's pid and start time, recorded durably before it may act; raises
    # (the lease lost) to stop it from ever running.
    on_spawn: Callable[[Any], None] = lambda spawned: None
    # After an interrupt: the monotonic time by which a running action must have ended.
    grace: Callable[[], float | None] = lambda: None

    def remaining(self) -> float:
        return max(0.0, self.timeout - (time.monotonic() - self.started))

    def wait(self, seconds: float) -> None:
        """Sleep `seconds` (bounded by the time left); raise Interrupted if the run is being
        aborted or interrupted meanwhile."""
        if self.abort.wait(max(0.0, min(seconds, self.remaining()))):
            raise Interrupted(f"{self.step_id}: interrupted while waiting")

    @property
    def log_path(self) -> Path:
        """Where a subprocess's output goes: one file per call, kept for the post-mortem."""
        item = f"-{self.commune}" if self.commune else ""
        suffix = "" if self.role == "action" else f".{self.role}"
        return (
            self.settings.log_dir
            / self.province
            / f"{self.step_id}{item}-{self.attempt}{suffix}.log"
        )

    def environ(self) -> dict[str, str]:
        """Variables a subprocess gets, so that scripts can be idempotent by the same key."""
        return {
            "GOVOPS_RUN_ID": self.run_id,
            "GOVOPS_PROVINCE": self.province,
            "GOVOPS_STEP": self.step_id,
            "GOVOPS_COMMUNE": self.commune or "",
            "GOVOPS_IDEMPOTENCY_KEY": self.idempotency_key,
            "GOVOPS_ATTEMPT": str(self.attempt),
            "GOVOPS_ROLE": self.role,
            # The run's inventory (inventories/ENV): a command finds the estate the run uses.
            "GOVOPS_INVENTORY": str(self.settings.inventory),
        }


class Executor(ABC):
    name: ClassVar[str]
    Args: ClassVar[type[Args]]
    # Whether the executor changes the world (dry runs and check mode leave those alone).
    mutates: ClassVar[bool] = True

    @abstractmethod
    def run(self, args: Any, ctx: ExecContext) -> Outcome:
        """Do it; return the outcome or raise ExecutorError (WaitingForApproval for manual)."""

    def describe(self, args: Any) -> str:
        """One line for plans and logs."""
        return self.name


def tail(text: str, lines: int = 12, limit: int = 2000) -> str:
    """The last lines of an output, where the error usually is."""
    cut = "\n".join(text.strip().splitlines()[-lines:])
    return cut[-limit:]
