"""What the exporter reads: a Protocol of the runbook engine's read API, and the adapter to it.

The exporter depends only on the few fields below (the engine's `RunProgress` has them), so a
change elsewhere in the engine does not reach it, and tests can hand it plain objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol


class RunLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def runbook(self) -> str: ...
    @property
    def status(self) -> str: ...


class StepLike(Protocol):
    @property
    def province(self) -> str: ...
    @property
    def step_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def deadline(self) -> datetime: ...
    @property
    def expected_seconds(self) -> float: ...
    @property
    def late(self) -> bool: ...
    @property
    def at_risk(self) -> bool: ...


class ProvinceLike(Protocol):
    @property
    def province(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def steps_done(self) -> int: ...
    @property
    def steps_total(self) -> int: ...


class ReadinessLike(Protocol):
    @property
    def check_id(self) -> str: ...
    @property
    def dispatch_done(self) -> int | None: ...
    @property
    def provinces_done(self) -> tuple[str, ...]: ...


class CoverageLike(Protocol):
    @property
    def province(self) -> str: ...
    @property
    def step_id(self) -> str: ...
    @property
    def tested(self) -> int: ...
    @property
    def total(self) -> int: ...


class ProgressLike(Protocol):
    @property
    def run(self) -> RunLike: ...
    @property
    def now(self) -> datetime: ...
    @property
    def provinces(self) -> Sequence[ProvinceLike]: ...
    @property
    def steps(self) -> Sequence[StepLike]: ...
    @property
    def readiness(self) -> Sequence[ReadinessLike]: ...
    @property
    def communes(self) -> Sequence[CoverageLike]: ...


class ProgressSource(Protocol):
    def progress(self) -> ProgressLike | None:
        """The run to show now (None: no run yet); raises on an unreadable store (SourceDown
        to say why)."""


class SourceDown(Exception):
    """The store cannot be read; `reason` is one of REASONS (the down-reason metric's label)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


# missing: no such store (never created by the exporter); not_a_store: something else is
# there; unreachable: the store refused or failed (PostgreSQL down, a locked file); error: a
# bug or a run the exporter cannot read.
REASONS = ("missing", "not_a_store", "unreachable", "error")
ACTIVE = ("running", "waiting")


class RunbookStoreSource:
    """The engine's state store (`open_store(url, read_only=True)`): the given run, else the
    active one, else the most recent. Opened per scrape, read-only: a SQLite file written by
    another process is read fresh, a PostgreSQL outage heals without a restart, and a store
    that does not exist is reported missing, never created."""

    def __init__(self, url: str | None, run_id: str | None = None) -> None:
        self.url, self.run_id = url, run_id

    def progress(self) -> ProgressLike | None:
        from govops.errors import InputError
        from govops.runbook.state import StateError, StoreMissing

        try:
            return self._progress()
        except StoreMissing as exc:
            raise SourceDown("missing", str(exc)) from None
        except InputError as exc:  # a store that is not one, or a run id it does not have
            raise SourceDown("not_a_store" if exc.key == "--state" else "error", str(exc)) from None
        except StateError as exc:
            raise SourceDown("unreachable", str(exc)) from None

    def _progress(self) -> ProgressLike | None:
        from govops.runbook.state import open_store

        with open_store(self.url, read_only=True) as store:
            run_id = self.run_id
            if run_id is None:
                runs = store.runs(20)
                active = [r for r in runs if r.status in ACTIVE]
                chosen = active[0] if active else (runs[0] if runs else None)
                if chosen is None:
                    return None
                run_id = chosen.id
            progress: ProgressLike = store.progress(run_id)
            return progress
